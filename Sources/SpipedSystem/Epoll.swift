import Glibc

/// Readiness bits of an epoll registration or event (`EPOLLIN`, ...; values from <sys/epoll.h>).
public struct EpollEvents: OptionSet, Sendable {
    /// The `epoll_event.events` bits.
    public let rawValue: UInt32
    /// Wraps `epoll_event.events` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `EPOLLIN`: readable (data, end of file, or a pending connection).
    public static let readable = EpollEvents(rawValue: 0x001)
    /// `EPOLLOUT`: writable (also: a non-blocking connect finished).
    public static let writable = EpollEvents(rawValue: 0x004)
    /// `EPOLLERR`: an error is pending (always reported).
    public static let error = EpollEvents(rawValue: 0x008)
    /// `EPOLLHUP`: both halves are closed (always reported).
    public static let hangUp = EpollEvents(rawValue: 0x010)
    /// `EPOLLRDHUP`: the peer shut down its writing half.
    public static let peerClosedWriting = EpollEvents(rawValue: 0x2000)
    /// `EPOLLEXCLUSIVE`: wake only one of the epoll instances waiting on this file
    /// (for a listening socket shared by several event loops).
    public static let exclusive = EpollEvents(rawValue: 1 << 28)
    /// `EPOLLET`: edge-triggered; report changes only, not continuing readiness.
    public static let edgeTriggered = EpollEvents(rawValue: 1 << 31)
}

/// One readiness report: the registration's token and what happened.
public struct EpollEvent: Sendable {
    /// The 64-bit token given at registration (`epoll_data.u64`).
    public var token: UInt64
    /// What is ready.
    public var events: EpollEvents
}

/// An epoll instance (`epoll_create1(EPOLL_CLOEXEC)`). Owned and closed by one thread.
public final class Epoll {
    /// The epoll file descriptor.
    public let descriptor: FileDescriptor
    /// Room for `capacity` packed `struct epoll_event`s.
    private let buffer: UnsafeMutableRawBufferPointer
    private let capacity: Int

    /// Creates an epoll instance that returns up to `maximumEvents` per `wait`.
    public init(maximumEvents: Int = 256) throws(SystemError) {
        descriptor = FileDescriptor(rawValue: try callingOnce { system_epoll_create1(LinuxConstants.epollCloseOnExec) }.get("epoll_create1"))
        capacity = maximumEvents
        buffer = .allocate(byteCount: maximumEvents * LinuxConstants.epollEventByteCount, alignment: 8)
    }

    deinit {
        descriptor.close()
        buffer.deallocate()
    }

    private func control(_ operation: Int32, _ fd: FileDescriptor, _ events: EpollEvents, _ token: UInt64) -> Result<Int32, Errno> {
        // struct epoll_event { uint32_t events; uint64_t data; }, packed on x86-64 (12 bytes),
        // naturally aligned elsewhere (16): room for the larger, offsets from LinuxConstants.
        var event: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &event) { raw in
            raw.storeBytes(of: events.rawValue, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: token, toByteOffset: LinuxConstants.epollEventDataOffset, as: UInt64.self)
            return callingOnce { system_epoll_ctl(descriptor.rawValue, operation, fd.rawValue, raw.baseAddress) }
        }
    }

    /// `EPOLL_CTL_ADD`: watch `fd` for `events`, reporting `token`.
    /// Fails with `EPERM` for files that cannot be polled (regular files).
    public func addResult(_ fd: FileDescriptor, events: EpollEvents, token: UInt64) -> Result<Int32, Errno> {
        control(LinuxConstants.epollControlAdd, fd, events, token)
    }

    /// `EPOLL_CTL_ADD`, throwing.
    public func add(_ fd: FileDescriptor, events: EpollEvents, token: UInt64) throws(SystemError) {
        _ = try addResult(fd, events: events, token: token).get("epoll_ctl(ADD)")
    }

    /// `EPOLL_CTL_MOD`: change the watched events (not allowed with `.exclusive`).
    public func modify(_ fd: FileDescriptor, events: EpollEvents, token: UInt64) throws(SystemError) {
        _ = try control(LinuxConstants.epollControlModify, fd, events, token).get("epoll_ctl(MOD)")
    }

    /// `EPOLL_CTL_DEL`: stop watching `fd` (closing the last descriptor of a file does this too).
    public func remove(_ fd: FileDescriptor) throws(SystemError) {
        _ = try control(LinuxConstants.epollControlDelete, fd, [], 0).get("epoll_ctl(DEL)")
    }

    /// `epoll_wait`: waits up to `timeoutMilliseconds` (-1 = forever, 0 = poll) and calls
    /// `handle` for each event. Returns the number of events. `EINTR` returns 0 events.
    @discardableResult
    public func wait(timeoutMilliseconds: Int32, _ handle: (EpollEvent) -> Void) throws(SystemError) -> Int {
        let count = callingOnce { system_epoll_wait(descriptor.rawValue, buffer.baseAddress, Int32(capacity), timeoutMilliseconds) }
        switch count {
        case .failure(let errno) where errno == .interrupted:
            return 0
        case .failure(let errno):
            throw SystemError("epoll_wait", errno)
        case .success(let count):
            for index in 0..<Int(count) {
                let offset = index * LinuxConstants.epollEventByteCount
                let events = buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                let token = buffer.loadUnaligned(fromByteOffset: offset + LinuxConstants.epollEventDataOffset, as: UInt64.self)
                handle(EpollEvent(token: token, events: EpollEvents(rawValue: events)))
            }
            return Int(count)
        }
    }
}
