import Glibc

/// Randomness from the kernel's getrandom(2), and nothing else.
///
/// Layers (after apple/swift-system): `getrandomSystemCall` is the raw call, `fill(_:using:)`
/// decides retries (EINTR, short reads) in one place and takes the raw call as a parameter so
/// tests can inject failures, and the public `fill` throws. A failure is reported as
/// `CryptoError.randomnessUnavailable(errno:)`; there is deliberately no fallback source.
public enum SystemRandom {
    /// Fills the buffer from getrandom(2), retrying on EINTR and short reads; throws if the kernel cannot.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) {
        try fill(buffer, using: getrandomSystemCall).get()
    }

    /// `count` random bytes from getrandom(2).
    public static func bytes(_ count: Int) throws(CryptoError) -> [UInt8] {
        precondition(count >= 0, "negative byte count")
        var result = [UInt8](repeating: 0, count: count)
        // withUnsafeMutableBytes rethrows untyped errors, so carry the typed result out instead.
        let outcome = result.withUnsafeMutableBytes { fill($0, using: getrandomSystemCall) }
        try outcome.get()
        return result
    }

    /// What one raw read returned: a byte count, or the errno of a failure.
    enum ReadOutcome: Equatable {
        /// This many bytes were written at the start of the requested range.
        case read(Int)
        /// The call failed with this errno.
        case failed(errno: Int32)
    }

    /// The retry loop: asks `read` for the bytes still missing until the buffer is full.
    /// EINTR and short reads are retried; any other failure, or a zero-byte read (which would
    /// otherwise spin forever), ends the loop with `randomnessUnavailable`.
    static func fill(
        _ buffer: UnsafeMutableRawBufferPointer,
        using read: (_ start: UnsafeMutableRawPointer, _ count: Int) -> ReadOutcome
    ) -> Result<Void, CryptoError> {
        guard let start = buffer.baseAddress else { return .success(()) }
        var filled = 0
        while filled < buffer.count {
            let wanted = buffer.count - filled
            switch read(start + filled, wanted) {
            case .read(let count) where count > 0 && count <= wanted:
                filled += count
            case .read:
                return .failure(.randomnessUnavailable(errno: EIO))
            case .failed(errno: EINTR):
                continue
            case .failed(let code):
                return .failure(.randomnessUnavailable(errno: code))
            }
        }
        return .success(())
    }

    /// getrandom(2) with flags 0, through glibc's `getentropy` (2.25 and later), which makes
    /// exactly that system call: it blocks until the kernel pool is initialised, then reads from
    /// the same source as /dev/urandom. `getentropy` fills at most 256 bytes per call, so a
    /// longer request is answered as a short read and the retry loop asks again. (Swift's Glibc
    /// module lacks <sys/random.h>, and `getentropy` is linked directly, so it works in a
    /// statically linked binary too, where a dlsym lookup would find nothing.)
    static func getrandomSystemCall(_ start: UnsafeMutableRawPointer, _ count: Int) -> ReadOutcome {
        let chunk = min(count, maximumEntropyRequest)
        return getentropy(start, chunk) == 0 ? .read(chunk) : .failed(errno: errno)
    }

    /// The most `getentropy` returns in one call (it fails with EIO above this).
    static let maximumEntropyRequest = 256
}

/// Where random bytes come from: `RandomSource.system` (the kernel, through `SystemRandom`) in
/// every production path; tests pass a scripted source to reach the failure paths that a healthy
/// kernel never takes.
public struct RandomSource: Sendable {
    /// Fills the whole buffer or throws.
    private let fillBuffer: @Sendable (UnsafeMutableRawBufferPointer) throws(CryptoError) -> Void

    /// A source that fills each buffer with `fill` (which must fill it completely, or throw).
    public init(_ fill: @escaping @Sendable (UnsafeMutableRawBufferPointer) throws(CryptoError) -> Void) {
        fillBuffer = fill
    }

    /// The kernel's randomness: `SystemRandom.fill` (getrandom(2)).
    public static let system = RandomSource { buffer throws(CryptoError) in try SystemRandom.fill(buffer) }

    /// Fills `buffer` with random bytes.
    public func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) {
        try fillBuffer(buffer)
    }

    /// `count` random bytes.
    public func bytes(_ count: Int) throws(CryptoError) -> [UInt8] {
        precondition(count >= 0, "negative byte count")
        var result = [UInt8](repeating: 0, count: count)
        // withUnsafeMutableBytes rethrows untyped errors, so carry the typed result out instead.
        let outcome = result.withUnsafeMutableBytes { buffer in
            Result { () throws(CryptoError) in try fill(buffer) }
        }
        if case .failure = outcome { SecureWipe.wipe(&result) }   // a partial fill is still secret
        try outcome.get()
        return result
    }
}
