// TEMPORARY API SURFACE — each helper replaces the declarations it owns with a real
// implementation in its own files and deletes them from here. Nothing here is done.

// ---- Digests (helper: sha) ----
/// SHA-256 (FIPS 180-4), incremental.
public struct SHA256: Sendable {
    public static let digestByteCount = 32
    public static let blockByteCount = 64
    public init(backend: CryptoBackend = .portable) { fatalError("stub") }
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { fatalError("stub") }
    public mutating func update(_ bytes: [UInt8]) { fatalError("stub") }
    /// Writes the 32-byte digest to `output` (must hold 32 bytes); the hash must not be used afterwards.
    public mutating func finalize(into output: UnsafeMutableRawBufferPointer) { fatalError("stub") }
    public mutating func finalize() -> [UInt8] { fatalError("stub") }
    public static func hash(_ bytes: [UInt8], backend: CryptoBackend = .portable) -> [UInt8] { fatalError("stub") }
}

// ---- MACs (helper: sha) ----
/// HMAC-SHA256 (RFC 2104). A keyed state is prepared once and copied cheaply per message.
public struct HMACSHA256: Sendable {
    public static let tagByteCount = 32
    public init(key: UnsafeRawBufferPointer, backend: CryptoBackend = .portable) { fatalError("stub") }
    public init(key: [UInt8], backend: CryptoBackend = .portable) { fatalError("stub") }
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { fatalError("stub") }
    public mutating func update(_ bytes: [UInt8]) { fatalError("stub") }
    public mutating func finalize(into output: UnsafeMutableRawBufferPointer) { fatalError("stub") }
    public mutating func finalize() -> [UInt8] { fatalError("stub") }
    /// Overwrites all key-dependent state with zeros.
    public mutating func wipe() { fatalError("stub") }
    public static func authenticationCode(key: [UInt8], message: [UInt8], backend: CryptoBackend = .portable) -> [UInt8] { fatalError("stub") }
}

// ---- KDFs (helper: sha) ----
public enum PBKDF2 {
    /// PBKDF2-HMAC-SHA256 (RFC 8018).
    public static func sha256(password: [UInt8], salt: [UInt8], iterations: Int, outputByteCount: Int,
                              backend: CryptoBackend = .portable) throws(CryptoError) -> [UInt8] { fatalError("stub") }
}
public enum HKDF {
    /// HKDF-Extract with SHA-256 (RFC 5869).
    public static func extract(salt: [UInt8], inputKeyMaterial: [UInt8], backend: CryptoBackend = .portable) -> [UInt8] { fatalError("stub") }
    /// HKDF-Expand with SHA-256; outputByteCount <= 255 * 32.
    public static func expand(pseudoRandomKey: [UInt8], info: [UInt8], outputByteCount: Int,
                              backend: CryptoBackend = .portable) throws(CryptoError) -> [UInt8] { fatalError("stub") }
}

// ---- Ciphers (helper: aes) ----
/// An expanded AES-256 key; the schedule is wiped when the key is released.
public final class AES256Key: @unchecked Sendable {
    public init(key: [UInt8], backend: CryptoBackend = .portable) throws(CryptoError) { fatalError("stub") }
    public init(key: UnsafeRawBufferPointer, backend: CryptoBackend = .portable) throws(CryptoError) { fatalError("stub") }
    /// Encrypts one 16-byte block.
    public func encryptBlock(_ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer) { fatalError("stub") }
    /// Standard CTR (SP 800-38A / RFC 3686): 16-byte initial counter block, 128-bit big-endian increment.
    public func ctrXor(initialCounterBlock: [UInt8], input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) { fatalError("stub") }
    /// spiped's CTR layout: counter block `be64(packetNumber) || be64(blockIndex)`, block index from 0.
    public func spipedCTRXor(packetNumber: UInt64, input: UnsafeRawPointer, output: UnsafeMutableRawPointer, count: Int) { fatalError("stub") }
}

extension CryptoBackend {
    /// Pure-Swift constant-time backend (bitsliced AES, portable SHA-256).
    public static var portable: CryptoBackend { fatalError("stub") }
}
