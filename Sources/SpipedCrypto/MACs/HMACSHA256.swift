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
            SecureWipe.wipe(block)
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
            SecureWipe.wipe(digest)
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

// MARK: - Two messages at once

extension HMACSHA256 {
    /// Absorbs `bytesA` into `a` and `bytesB` into `b`: the same result as `a.update(bytesA)`
    /// followed by `b.update(bytesB)`, but blocks both complete are compressed together by the
    /// backend's two-stream compression (see `SHA256.update(_:_:_:_:)`). Start `a` and `b` as
    /// copies of one keyed state and give them equal-length pieces to pair every block.
    public static func update(_ a: inout HMACSHA256, _ bytesA: UnsafeRawBufferPointer,
                              _ b: inout HMACSHA256, _ bytesB: UnsafeRawBufferPointer) {
        SHA256.update(&a.inner, bytesA, &b.inner, bytesB)
    }

    /// Writes `a`'s tag to `tagA` and `b`'s to `tagB` (32 bytes each) and wipes both states:
    /// the same result as `a.finalize(into: tagA); b.finalize(into: tagB)`, with the final
    /// inner blocks and the outer blocks compressed in pairs.
    public static func finalize(_ a: inout HMACSHA256, into tagA: UnsafeMutableRawBufferPointer,
                                _ b: inout HMACSHA256, into tagB: UnsafeMutableRawBufferPointer) {
        precondition(tagA.count >= HMACSHA256.tagByteCount && tagB.count >= HMACSHA256.tagByteCount,
                     "HMACSHA256.finalize: outputs need 32 bytes")
        var innerDigests = InlineArray<64, UInt8>(repeating: 0)
        withUnsafeMutableBytes(of: &innerDigests) { digests in
            let digestA = UnsafeMutableRawBufferPointer(rebasing: digests[0..<32])
            let digestB = UnsafeMutableRawBufferPointer(rebasing: digests[32..<64])
            // tag = H((K0 ⊕ opad) || H((K0 ⊕ ipad) || message)), for both messages side by side.
            SHA256.finalize(&a.inner, into: digestA, &b.inner, into: digestB)
            SHA256.update(&a.outer, UnsafeRawBufferPointer(digestA), &b.outer, UnsafeRawBufferPointer(digestB))
            SHA256.finalize(&a.outer, into: tagA, &b.outer, into: tagB)
            SecureWipe.wipe(digests)
        }
    }

    /// The tags of `messageA` and `messageB` under this keyed state (which is left unchanged),
    /// computed side by side: two equal-length messages cost about as much as one on SHA-NI.
    public func authenticationCodes(_ messageA: UnsafeRawBufferPointer, _ messageB: UnsafeRawBufferPointer,
                                    tagA: UnsafeMutableRawBufferPointer, tagB: UnsafeMutableRawBufferPointer) {
        var macA = self, macB = self
        HMACSHA256.update(&macA, messageA, &macB, messageB)
        HMACSHA256.finalize(&macA, into: tagA, &macB, into: tagB)
    }
}

// MARK: - Many messages at once

extension HMACSHA256 {
    /// Absorbs `byteCount` bytes from `inputs[i]` into `macs[i]`, for every i: the same result as
    /// `macs[i].update(...)` one after another, with blocks compressed in groups by the
    /// backend's multi-stream compression (see `SHA256.update(_:_:byteCount:)`). Start the MACs
    /// as copies of one keyed state and give them equal-length pieces to group every block.
    public static func update(_ macs: UnsafeMutableBufferPointer<HMACSHA256>, _ inputs: UnsafeBufferPointer<UnsafeRawPointer>,
                              byteCount: Int) {
        precondition(inputs.count == macs.count, "HMACSHA256.update: one input per MAC")
        guard let base = macs.baseAddress else { return }
        hashes(base, macs.count, outer: false).update(inputs.baseAddress!, byteCount: byteCount)
    }

    /// Writes `macs[i]`'s tag to `tags[i]` (32 bytes each) and wipes every state: the same result
    /// as `macs[i].finalize(into:)` one after another, with the final inner blocks and the outer
    /// blocks compressed in groups.
    public static func finalize(_ macs: UnsafeMutableBufferPointer<HMACSHA256>,
                                into tags: UnsafeBufferPointer<UnsafeMutableRawPointer>) {
        precondition(tags.count == macs.count, "HMACSHA256.finalize: one tag per MAC")
        guard let base = macs.baseAddress else { return }
        let count = macs.count
        withUnsafeTemporaryAllocation(byteCount: count * SHA256.digestByteCount, alignment: 16) { digests in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer.self, capacity: count) { digestOutputs in
                withUnsafeTemporaryAllocation(of: UnsafeRawPointer.self, capacity: count) { digestInputs in
                    for index in 0..<count {
                        let digest = digests.baseAddress! + index * SHA256.digestByteCount
                        digestOutputs.initializeElement(at: index, to: digest)
                        digestInputs.initializeElement(at: index, to: UnsafeRawPointer(digest))
                    }
                    // tag = H((K0 ⊕ opad) || H((K0 ⊕ ipad) || message)), for every message side by side.
                    hashes(base, count, outer: false).finalize(into: UnsafePointer(digestOutputs.baseAddress!))
                    let outer = hashes(base, count, outer: true)
                    outer.update(UnsafePointer(digestInputs.baseAddress!), byteCount: SHA256.digestByteCount)
                    outer.finalize(into: tags.baseAddress!)
                }
            }
            SecureWipe.wipe(digests)
        }
    }

    /// The tags of the `messages` (each `byteCount` bytes) under this keyed state, which is left
    /// unchanged: `tags[i]` (32 bytes) gets the tag of `messages[i]`. The messages are
    /// authenticated side by side (see `update(_:_:byteCount:)`).
    public func authenticationCodes(_ messages: UnsafeBufferPointer<UnsafeRawPointer>, byteCount: Int,
                                    tags: UnsafeBufferPointer<UnsafeMutableRawPointer>) {
        precondition(tags.count == messages.count, "HMACSHA256.authenticationCodes: one tag per message")
        withUnsafeTemporaryAllocation(of: HMACSHA256.self, capacity: messages.count) { macs in
            macs.initialize(repeating: self)
            HMACSHA256.update(macs, messages, byteCount: byteCount)
            HMACSHA256.finalize(macs, into: tags)
            // finalize has wiped every copy of the keyed state.
        }
    }

    /// Where `inner` and `outer` sit inside an `HMACSHA256` (worked out once).
    private static let innerOffset = MemoryLayout<HMACSHA256>.offset(of: \HMACSHA256.inner)!
    private static let outerOffset = MemoryLayout<HMACSHA256>.offset(of: \HMACSHA256.outer)!

    /// The inner (`outer` false) or outer hashes of `count` MACs at `base`, as one batch.
    private static func hashes(_ base: UnsafeMutablePointer<HMACSHA256>, _ count: Int, outer: Bool) -> SHA256Batch {
        SHA256Batch(base: UnsafeMutableRawPointer(base) + (outer ? outerOffset : innerOffset),
                    stride: MemoryLayout<HMACSHA256>.stride, count: count)
    }
}
