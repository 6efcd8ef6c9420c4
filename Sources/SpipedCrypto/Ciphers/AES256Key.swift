import Glibc

/// An expanded AES-256 key; the schedule is wiped when the key is released.
///
/// The schedule storage is allocated once (16-byte aligned) and filled by the backend's
/// engine; every call afterwards only reads it, so one key may be used from several threads
/// at once. No call allocates on the heap.
public final class AES256Key: @unchecked Sendable {
    /// Bytes in an AES-256 key.
    public static let keyByteCount = 32
    /// Bytes in an AES block.
    public static let blockByteCount = 16

    /// The engine's round keys, in its own private format.
    private let schedule: UnsafeMutableRawPointer
    /// Size of `schedule`, for wiping.
    private let scheduleByteCount: Int
    /// The engine that filled `schedule` (its closures are kept, never looked up again).
    private let engine: AES256Engine

    /// Expands a 32-byte key with `backend`'s AES engine; throws `invalidKeyLength` otherwise.
    public convenience init(key: [UInt8], backend: CryptoBackend = .portable) throws(CryptoError) {
        // `withUnsafeBytes` cannot forward a typed error, so check the length outside it.
        guard key.count == Self.keyByteCount else {
            throw .invalidKeyLength(expected: Self.keyByteCount, actual: key.count)
        }
        self.init(checkedKey: key, engine: backend.aes256)
    }

    /// Expands a 32-byte key with `backend`'s AES engine; throws `invalidKeyLength` otherwise.
    public init(key: UnsafeRawBufferPointer, backend: CryptoBackend = .portable) throws(CryptoError) {
        guard key.count == Self.keyByteCount, let base = key.baseAddress else {
            throw .invalidKeyLength(expected: Self.keyByteCount, actual: key.count)
        }
        engine = backend.aes256
        scheduleByteCount = engine.scheduleByteCount
        schedule = UnsafeMutableRawPointer.allocate(byteCount: scheduleByteCount, alignment: 16)
        engine.expandKey(base, schedule)
    }

    /// Shared body of the array initializer once the length is known to be right.
    private init(checkedKey key: [UInt8], engine: AES256Engine) {
        self.engine = engine
        scheduleByteCount = engine.scheduleByteCount
        schedule = UnsafeMutableRawPointer.allocate(byteCount: scheduleByteCount, alignment: 16)
        key.withUnsafeBytes { engine.expandKey($0.baseAddress!, schedule) }
    }

    deinit {
        Self.wipe(schedule, byteCount: scheduleByteCount)
        schedule.deallocate()
    }

    /// Encrypts one 16-byte block from `input` to `output` (they may be the same address).
    public func encryptBlock(_ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer) {
        engine.encryptBlock(schedule, input, output)
    }

    /// Standard CTR mode (NIST SP 800-38A §6.5, RFC 3686): the keystream is the encryption of
    /// `initialCounterBlock` (16 bytes), then of that block plus 1, plus 2, ..., each read as a
    /// 128-bit big-endian integer (wrapping modulo 2^128). Writes `input ^ keystream` to the
    /// first `input.count` bytes of `output`, which must be at least as long (the buffers may be
    /// the same memory). The last block may be partial.
    public func ctrXor(initialCounterBlock: [UInt8], input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) {
        precondition(initialCounterBlock.count == Self.blockByteCount, "AES-CTR counter block must be 16 bytes")
        precondition(output.count >= input.count, "AES-CTR output buffer is shorter than the input")
        guard let source = input.baseAddress, let destination = output.baseAddress, input.count > 0 else { return }
        let (high, low) = initialCounterBlock.withUnsafeBytes { block in
            (UInt64(bigEndian: block.loadUnaligned(as: UInt64.self)),
             UInt64(bigEndian: block.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
        engine.ctrXor(schedule, high, low, source, destination, input.count)
    }

    /// spiped's packet encryption: CTR mode where the counter block of the i-th 16-byte block
    /// (i from 0) is `be64(packetNumber) || be64(i)`. Writes `count` bytes of
    /// `input ^ keystream` to `output` (which may equal `input`).
    ///
    /// This is exactly the 128-bit counter starting at `packetNumber << 64`: the low half would
    /// only carry into `packetNumber` after 2^64 blocks, and a spiped packet is 1028 bytes
    /// (65 blocks), so the two layouts never differ.
    public func spipedCTRXor(packetNumber: UInt64, input: UnsafeRawPointer, output: UnsafeMutableRawPointer, count: Int) {
        engine.ctrXor(schedule, packetNumber, 0, input, output, count)
    }

    /// Zeroes `byteCount` bytes with glibc's `explicit_bzero`, which the compiler may not
    /// remove even when the memory is freed right after.
    static func wipe(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        explicit_bzero(pointer, byteCount)
    }
}
