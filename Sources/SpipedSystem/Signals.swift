import Glibc

/// The signals the spiped daemon handles itself: `SIGTERM` and `SIGINT` (drain and stop) and
/// `SIGHUP` (reload).
public enum TerminationSignals {
    private static func makeSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        return set
    }

    /// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (`pthread_sigmask`); threads created
    /// afterwards inherit the mask, so the signals stay pending for a `SignalReader`.
    public static func blockInCallingThread() {
        var set = makeSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Undoes `blockInCallingThread` (for tests and for `run()` returning).
    public static func unblockInCallingThread() {
        var set = makeSet()
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Sets `SIGPIPE` to `SIG_IGN`: a write to a closed socket then fails with `EPIPE`
    /// instead of killing the process.
    public static func ignoreBrokenPipe() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// A non-blocking `signalfd(2)` for SIGTERM, SIGINT and SIGHUP (block them first).
    public static func makeReader() throws(SystemError) -> SignalReader {
        var set = makeSet()
        let flags = LinuxConstants.descriptorNonBlocking | LinuxConstants.descriptorCloseOnExec
        let fd = try callingOnce { system_signalfd(-1, &set, flags) }.get("signalfd")
        return SignalReader(descriptor: FileDescriptor(rawValue: fd))
    }
}

/// A `signalfd` descriptor: readable while a blocked signal is pending.
public final class SignalReader {
    /// The signalfd descriptor (register it with epoll for `.readable`).
    public let descriptor: FileDescriptor

    init(descriptor: FileDescriptor) { self.descriptor = descriptor }

    deinit { descriptor.close() }

    /// Reads one pending signal number, or `nil` if none is pending.
    public func next() -> Int32? {
        // struct signalfd_siginfo is 128 bytes; `uint32_t ssi_signo` comes first.
        var info = [UInt8](repeating: 0, count: LinuxConstants.signalInfoByteCount)
        let size = info.count
        let result = info.withUnsafeMutableBytes { raw in
            retryingOnInterrupt { read(descriptor.rawValue, raw.baseAddress, size) }
        }
        switch result {
        case .success(let count) where count == size:
            return Int32(bitPattern: info.withUnsafeBytes { $0.load(as: UInt32.self) })
        default:
            return nil
        }
    }
}
