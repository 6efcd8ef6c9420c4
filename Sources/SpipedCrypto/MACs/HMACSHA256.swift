/// HMAC-SHA256 (RFC 2104, FIPS 198-1). A keyed state is prepared once and copied cheaply per message.
///
/// The keyed state is two SHA-256 states: `inner` has absorbed the block `K0 ⊕ ipad` and
/// `outer` the block `K0 ⊕ opad`, where `K0` is the key zero-padded to 64 bytes (or, for keys
/// longer than 64 bytes, SHA-256 of the key, zero-padded). Both live inline, so copying a keyed
/// `HMACSHA256` to authenticate another message costs a struct copy, not a rekey.
public struct HMACSHA256: Sendable {
    /// Bytes in a tag (256 bits).
    public static let tagByteCount = 32

    /// SHA-256 after absorbing `K0 ⊕ ipad`; absorbs the message.
    private var inner: SHA256
    /// SHA-256 after absorbing `K0 ⊕ opad`; absorbs the inner digest at the end.
    private var outer: SHA256

    /// Prepares the keyed state for `key` (any length).
    public init(key: UnsafeRawBufferPointer, backend: CryptoBackend = .portable) {
        var inner = SHA256(backend: backend)
        var outer = SHA256(backend: backend)
        var keyBlock = InlineArray<64, UInt8>(repeating: 0)
        withUnsafeMutableBytes(of: &keyBlock) { block in
            if key.count > SHA256.blockByteCount {
                // RFC 2104 §2: keys longer than the block size are replaced by their hash.
                var keyHash = SHA256(backend: backend)
                keyHash.update(key)
                keyHash.finalize(into: block)
            } else if key.count > 0 {
                block.copyMemory(from: key)
            }
            for index in 0..<SHA256.blockByteCount { block[index] ^= 0x36 }          // K0 ⊕ ipad
            inner.update(UnsafeRawBufferPointer(block))
            for index in 0..<SHA256.blockByteCount { block[index] ^= 0x36 ^ 0x5c }   // now K0 ⊕ opad
            outer.update(UnsafeRawBufferPointer(block))
            SHA256.zeroize(block)
        }
        self.inner = inner
        self.outer = outer
    }

    /// Prepares the keyed state for `key` (any length).
    public init(key: [UInt8], backend: CryptoBackend = .portable) {
        self = key.withUnsafeBytes { HMACSHA256(key: $0, backend: backend) }
    }

    /// Absorbs message bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        inner.update(bytes)
    }

    /// Absorbs message bytes.
    public mutating func update(_ bytes: [UInt8]) {
        inner.update(bytes)
    }

    /// Writes the 32-byte tag to `output` (must hold 32 bytes) and wipes the state; copy the
    /// keyed state before finalizing if the key is needed again.
    public mutating func finalize(into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= HMACSHA256.tagByteCount, "HMACSHA256.finalize: output needs 32 bytes")
        var innerDigest = InlineArray<32, UInt8>(repeating: 0)
        withUnsafeMutableBytes(of: &innerDigest) { digest in
            // tag = H((K0 ⊕ opad) || H((K0 ⊕ ipad) || message))
            inner.finalize(into: digest)
            outer.update(UnsafeRawBufferPointer(digest))
            outer.finalize(into: output)
            SHA256.zeroize(digest)
        }
    }

    /// Returns the 32-byte tag and wipes the state (see `finalize(into:)`).
    public mutating func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: HMACSHA256.tagByteCount) { buffer, initializedCount in
            finalize(into: UnsafeMutableRawBufferPointer(buffer))
            initializedCount = HMACSHA256.tagByteCount
        }
    }

    /// Overwrites all key-dependent state with zeros.
    public mutating func wipe() {
        inner.wipe()
        outer.wipe()
    }

    /// HMAC-SHA256 of `message` under `key`, computed with `backend`.
    public static func authenticationCode(key: [UInt8], message: [UInt8], backend: CryptoBackend = .portable) -> [UInt8] {
        var mac = HMACSHA256(key: key, backend: backend)
        mac.update(message)
        return mac.finalize()
    }
}
