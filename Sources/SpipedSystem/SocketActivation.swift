import Glibc

/// A listening socket handed over by systemd (socket activation).
public struct InheritedListener: Sendable, Equatable {
    /// Its name from `$LISTEN_FDNAMES` (`FileDescriptorName=`, by default the socket unit's
    /// name); `nil` when systemd passed no names.
    public let name: String?
    /// The descriptor, now close-on-exec and non-blocking.
    public let descriptor: FileDescriptor
    /// Its bound address (`getsockname`), `nil` if the kernel would not say.
    public let localAddress: SocketAddress?

    /// Describes an inherited listener.
    public init(name: String?, descriptor: FileDescriptor, localAddress: SocketAddress?) {
        self.name = name
        self.descriptor = descriptor
        self.localAddress = localAddress
    }
}

/// Why the descriptors systemd passed cannot be used.
public enum SocketActivationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `$LISTEN_PID` is not a process ID.
    case invalidProcessID(String)
    /// `$LISTEN_FDS` is not a positive count that fits after the first descriptor.
    case invalidDescriptorCount(String)
    /// `$LISTEN_FDNAMES` has a different number of names than `$LISTEN_FDS` descriptors.
    case nameCountMismatch(names: Int, descriptors: Int)
    /// The descriptor is not open.
    case notOpen(descriptor: Int32)
    /// The descriptor is open but not a socket.
    case notASocket(descriptor: Int32)
    /// The descriptor is a socket but not a stream socket (`SO_TYPE` is not `SOCK_STREAM`).
    case notAStreamSocket(descriptor: Int32)
    /// The descriptor is a stream socket that does not listen (`SO_ACCEPTCONN` is 0), e.g. a
    /// unit with `Accept=yes`, which passes connections instead.
    case notListening(descriptor: Int32)
    /// A system call on the descriptor failed otherwise (`fcntl`, `getsockopt`).
    case systemCallFailed(SystemError)

    /// A sentence for the log.
    public var description: String {
        switch self {
        case .invalidProcessID(let text): return "socket activation: LISTEN_PID=\(text) is not a process ID"
        case .invalidDescriptorCount(let text): return "socket activation: LISTEN_FDS=\(text) is not a positive descriptor count"
        case .nameCountMismatch(let names, let descriptors):
            return "socket activation: LISTEN_FDNAMES has \(names) names for \(descriptors) descriptors"
        case .notOpen(let fd): return "socket activation: descriptor \(fd) is not open"
        case .notASocket(let fd): return "socket activation: descriptor \(fd) is not a socket"
        case .notAStreamSocket(let fd): return "socket activation: descriptor \(fd) is not a stream socket"
        case .notListening(let fd):
            return "socket activation: descriptor \(fd) is not a listening socket (use Accept=no in the socket unit)"
        case .systemCallFailed(let error): return "socket activation: \(error)"
        }
    }
}

/// systemd's socket-activation protocol (`sd_listen_fds(3)`) without libsystemd.
///
/// systemd passes `$LISTEN_FDS` descriptors starting at 3 and sets `$LISTEN_PID` to the process
/// meant to take them (a forked child that inherits the variables must not) and, optionally,
/// `$LISTEN_FDNAMES` to their colon-separated names.
public enum SocketActivation {
    /// `SD_LISTEN_FDS_START`: the first passed descriptor.
    public static let firstPassedDescriptor: Int32 = 3
    /// The three variables of the protocol.
    public static let environmentVariables = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]

    /// The listeners systemd passed to this process, in order; empty when it passed none (no
    /// `$LISTEN_PID`, or one naming another process). Reads the process environment, then
    /// removes the three variables whatever the outcome (as `sd_listen_fds(1)` does) so children
    /// do not see them. Call it at start-up while the process is single-threaded (`unsetenv`).
    public static func inheritedListeners() throws(SocketActivationError) -> [InheritedListener] {
        var environment: [String: String] = [:]
        for name in environmentVariables {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        defer { for name in environmentVariables { unsetenv(name) } }
        return try listeners(environment: environment, processID: getpid(), firstDescriptor: firstPassedDescriptor)
    }

    /// The protocol on given inputs, for tests and for callers that read the environment
    /// themselves: the listeners described by `environment` (`LISTEN_PID`, `LISTEN_FDS`,
    /// `LISTEN_FDNAMES`) for process `processID`, numbered from `firstDescriptor`. Sets
    /// `FD_CLOEXEC` and `O_NONBLOCK` on each descriptor and checks that it is a listening stream
    /// socket. Does not change the environment. On an error no descriptor is closed.
    public static func listeners(environment: [String: String], processID: Int32, firstDescriptor: Int32) throws(SocketActivationError) -> [InheritedListener] {
        guard let pidText = environment["LISTEN_PID"] else { return [] }
        guard let pid = parseDecimal(pidText), pid > 0, pid <= Int(Int32.max) else {
            throw .invalidProcessID(pidText)
        }
        guard pid == Int(processID) else { return [] }
        guard let countText = environment["LISTEN_FDS"] else { return [] }
        guard let count = parseDecimal(countText), count > 0, count <= Int(Int32.max - firstDescriptor) else {
            throw .invalidDescriptorCount(countText)
        }
        var names: [String?] = Array(repeating: nil, count: count)
        if let namesText = environment["LISTEN_FDNAMES"] {
            let given = namesText.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard given.count == count else { throw .nameCountMismatch(names: given.count, descriptors: count) }
            names = given
        }
        var result: [InheritedListener] = []
        for index in 0..<count {
            let descriptor = FileDescriptor(rawValue: firstDescriptor + Int32(index))
            try prepare(descriptor)
            result.append(InheritedListener(name: names[index], descriptor: descriptor, localAddress: try? descriptor.localAddress()))
        }
        return result
    }

    /// Strict decimal: ASCII digits only (no sign, no spaces), at most 18 of them.
    static func parseDecimal(_ text: String) -> Int? {
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 48) }
    }

    /// Close-on-exec, non-blocking, and checked to be a listening stream socket.
    private static func prepare(_ descriptor: FileDescriptor) throws(SocketActivationError) {
        let fd = descriptor.rawValue
        let flags: Int32
        switch callingOnce({ fcntl(fd, F_GETFD) }) {
        case .success(let value): flags = value
        case .failure(let errno) where errno == .badFileDescriptor: throw .notOpen(descriptor: fd)
        case .failure(let errno): throw .systemCallFailed(SystemError("fcntl(F_GETFD)", errno))
        }
        if flags & FD_CLOEXEC == 0, case .failure(let errno) = callingOnce({ fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }) {
            throw .systemCallFailed(SystemError("fcntl(F_SETFD)", errno))
        }
        let type: Int32
        switch socketOption(fd, SO_TYPE) {
        case .success(let value): type = value
        case .failure(let errno) where errno == Errno(rawValue: ENOTSOCK): throw .notASocket(descriptor: fd)
        case .failure(let errno): throw .systemCallFailed(SystemError("getsockopt(SO_TYPE)", errno))
        }
        guard type == Int32(SOCK_STREAM.rawValue) else { throw .notAStreamSocket(descriptor: fd) }
        switch socketOption(fd, SO_ACCEPTCONN) {
        case .success(let value) where value != 0: break
        case .success: throw .notListening(descriptor: fd)
        case .failure(let errno): throw .systemCallFailed(SystemError("getsockopt(SO_ACCEPTCONN)", errno))
        }
        do {
            try descriptor.setNonBlocking()
        } catch {
            throw .systemCallFailed(error)
        }
    }

    /// `getsockopt(SOL_SOCKET, name)` of an `int` option.
    private static func socketOption(_ fd: Int32, _ name: Int32) -> Result<Int32, Errno> {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return callingOnce { getsockopt(fd, SOL_SOCKET, name, &value, &length) }.map { _ in value }
    }
}
