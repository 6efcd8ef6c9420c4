import Glibc

/// An `eventfd(2)` counter: one thread `signal()`s, another is woken by epoll or by a
/// blocking `waitAndReset()`. Used to wake event loops and helper threads.
public final class EventNotifier: @unchecked Sendable {
    /// The eventfd descriptor (register it with epoll for `.readable`).
    public let descriptor: FileDescriptor

    /// `eventfd(0, EFD_CLOEXEC [| EFD_NONBLOCK])`.
    public init(nonBlocking: Bool = true) throws(SystemError) {
        var flags = LinuxConstants.descriptorCloseOnExec
        if nonBlocking { flags |= LinuxConstants.descriptorNonBlocking }
        descriptor = FileDescriptor(rawValue: try callingOnce { system_eventfd(0, flags) }.get("eventfd"))
    }

    deinit { descriptor.close() }

    /// Adds 1 to the counter, waking a waiter. Safe from any thread.
    public func signal() {
        var one: UInt64 = 1
        _ = retryingOnInterrupt { Glibc.write(descriptor.rawValue, &one, 8) }
    }

    /// Reads and clears the counter (blocks when the notifier is blocking and the counter is 0).
    /// Returns the count of signals since the last reset (0 if none, non-blocking).
    @discardableResult
    public func waitAndReset() -> UInt64 {
        var value: UInt64 = 0
        switch retryingOnInterrupt({ Glibc.read(descriptor.rawValue, &value, 8) }) {
        case .success: return value
        case .failure: return 0
        }
    }

    /// Waits until signalled or `timeoutMilliseconds` pass (`poll(2)`); returns true if signalled.
    public func wait(timeoutMilliseconds: Int32) -> Bool {
        var entry = pollfd(fd: descriptor.rawValue, events: Int16(POLLIN), revents: 0)
        let result = poll(&entry, 1, timeoutMilliseconds)
        if result > 0 {
            waitAndReset()
            return true
        }
        return false
    }
}
