/// The block functions one implementation family provides (portable or hardware).
///
/// Every high-level type (`SHA256`, `HMACSHA256`, `AES256Key`, ...) takes a backend at
/// construction and keeps its function pointers, so the choice is made once per key or hash,
/// never per block. `CryptoBackend.portable` is always available; the
/// `SpipedCryptoAccelerated` product supplies a hardware backend after checking the CPU and
/// running known-answer self-tests (the single dispatch point is
/// `CryptoBackendSelection.best()` there).
public struct CryptoBackend: Sendable {
    /// Which family of code a backend is.
    public enum Kind: String, Sendable {
        /// Pure Swift, constant-time, runs everywhere.
        case portable
        /// CPU instructions (AES-NI, SHA-NI).
        case hardware
    }

    /// A SHA-256 compression function: folds `blockCount` 64-byte blocks starting at `blocks`
    /// into the eight big-endian-order state words at `state`.
    ///
    /// A plain function pointer (`@convention(c)`), not a closure: every `SHA256` keeps its
    /// backend's functions and an HMAC keyed state is copied per message, so a closure context
    /// would cost a retain and a release per copy. Pass a `func` or a closure literal that
    /// captures nothing, e.g. `{ SHA256Portable.compress($0, $1, $2) }`.
    public typealias SHA256CompressFunction = @convention(c) (
        _ state: UnsafeMutablePointer<UInt32>, _ blocks: UnsafeRawPointer, _ blockCount: Int) -> Void
    /// A two-stream SHA-256 compression function: folds `blockCount` blocks from `blocksA` into
    /// `stateA` and `blockCount` blocks from `blocksB` into `stateB`, with the same result as two
    /// one-stream calls. The states must not overlap. A plain function pointer, as above.
    public typealias SHA256Compress2Function = @convention(c) (
        _ stateA: UnsafeMutablePointer<UInt32>, _ blocksA: UnsafeRawPointer,
        _ stateB: UnsafeMutablePointer<UInt32>, _ blocksB: UnsafeRawPointer, _ blockCount: Int) -> Void
    /// A multi-stream SHA-256 compression function of some width (its `lanes`): for each stream
    /// s in 0..<`streamCount` (1...lanes), folds `blockCount` 64-byte blocks starting at
    /// `blocks[s]` into the eight state words at `states[s]`, with the same results as
    /// `streamCount` one-stream calls. The states must not overlap one another (block inputs
    /// may). A plain function pointer, as above.
    public typealias SHA256CompressManyFunction = @convention(c) (
        _ states: UnsafePointer<UnsafeMutablePointer<UInt32>>, _ blocks: UnsafePointer<UnsafeRawPointer>,
        _ streamCount: Int, _ blockCount: Int) -> Void

    /// Which family this is.
    public let kind: Kind
    /// The SHA-256 compression function.
    public let sha256Compress: SHA256CompressFunction
    /// The two-stream compression, or nil when the backend has none: then two-stream work runs
    /// `sha256Compress` once per stream. A backend whose hardware can interleave two streams
    /// (SHA-NI) provides one running at up to twice the speed of one stream.
    public let sha256Compress2: SHA256Compress2Function?
    /// The multi-stream compression, or nil when the backend has none: then batches of hashes
    /// run in pairs (`sha256Compress2`) and singles. Used by the batch `SHA256.update`/`finalize`
    /// (and so by batch HMAC and packet sealing) for groups of `sha256Lanes` streams.
    public let sha256CompressMany: SHA256CompressManyFunction?
    /// How many streams one `sha256CompressMany` call takes at most (0 when it is nil).
    public let sha256Lanes: Int
    /// The AES-256 implementation.
    public let aes256: AES256Engine
    /// Montgomery multiply/square for group-14 Diffie-Hellman; nil means the portable code.
    public let montgomery2048: Montgomery2048Engine?

    /// Creates a backend from its parts (used by the accelerated product and by tests).
    /// `sha256CompressMany` comes with its width `sha256Lanes` (at least 2 when it is given).
    public init(kind: Kind, sha256Compress: SHA256CompressFunction, sha256Compress2: SHA256Compress2Function? = nil,
                sha256CompressMany: SHA256CompressManyFunction? = nil, sha256Lanes: Int = 0,
                aes256: AES256Engine, montgomery2048: Montgomery2048Engine? = nil) {
        precondition(sha256CompressMany == nil || sha256Lanes >= 2, "CryptoBackend: a multi-stream compression needs its width")
        self.kind = kind
        self.sha256Compress = sha256Compress
        self.sha256Compress2 = sha256Compress2
        self.sha256CompressMany = sha256CompressMany
        self.sha256Lanes = sha256CompressMany == nil ? 0 : sha256Lanes
        self.aes256 = aes256
        self.montgomery2048 = montgomery2048
    }
}

/// One AES-256 implementation: key expansion, single-block encryption and CTR keystream.
/// The key schedule format is private to the engine; callers only hand back the storage it filled.
public struct AES256Engine: Sendable {
    /// Bytes of schedule storage `expandKey` fills (16-byte aligned storage is provided).
    public let scheduleByteCount: Int
    /// Expands the 32-byte key at `key` into `schedule`.
    public let expandKey: @Sendable (_ key: UnsafeRawPointer, _ schedule: UnsafeMutableRawPointer) -> Void
    /// Encrypts one 16-byte block (`input` and `output` may alias).
    public let encryptBlock: @Sendable (_ schedule: UnsafeRawPointer, _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer) -> Void
    /// CTR mode: XORs `count` bytes of keystream into `output = input ^ keystream` (may alias).
    /// The first counter block is the 128-bit big-endian value `counterHigh << 64 | counterLow`,
    /// incremented as a 128-bit integer for each following block. A partial final block uses
    /// the leading bytes of its keystream block.
    public let ctrXor: @Sendable (_ schedule: UnsafeRawPointer, _ counterHigh: UInt64, _ counterLow: UInt64,
                                  _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ count: Int) -> Void

    /// Creates an engine from its functions.
    public init(
        scheduleByteCount: Int,
        expandKey: @escaping @Sendable (_ key: UnsafeRawPointer, _ schedule: UnsafeMutableRawPointer) -> Void,
        encryptBlock: @escaping @Sendable (_ schedule: UnsafeRawPointer, _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer) -> Void,
        ctrXor: @escaping @Sendable (_ schedule: UnsafeRawPointer, _ counterHigh: UInt64, _ counterLow: UInt64,
                                     _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ count: Int) -> Void
    ) {
        self.scheduleByteCount = scheduleByteCount
        self.expandKey = expandKey
        self.encryptBlock = encryptBlock
        self.ctrXor = ctrXor
    }
}
