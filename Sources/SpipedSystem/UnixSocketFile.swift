// Binding a listening Unix-domain socket to a path safely: a socket file left by a dead process
// is replaced, but nothing else at the path is ever removed, and at exit the file is removed
// only while the path still names the socket this process created.
import Glibc

/// Why a Unix socket could not be bound to its path.
public enum UnixSocketBindError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed; `bind: Address already in use` when a live socket holds the path.
    case system(SystemError)
    /// The path names a file that is not a socket (path, what it is); it was left untouched.
    case notASocket(path: String, kind: FileKind)

    /// A sentence for users (without the path for `.system`: the caller names the address).
    public var description: String {
        switch self {
        case .system(let failure): return failure.description
        case .notASocket(let path, let kind): return "\(path): \(kind) is in the way; refusing to replace it"
        }
    }
}

/// A socket file this process bound: its path and the inode `bind` created there.
public struct UnixSocketFile: Hashable, Sendable {
    /// The socket's path, as bound.
    public let path: String
    /// Device and inode of the socket file right after `bind`.
    public let identity: FileIdentity

    /// Binds `socket` to the Unix address `address`.
    ///
    /// When the path is taken (`EADDRINUSE`), `lstat` decides: a socket file on which nothing
    /// accepts (connecting is refused) is stale, so it is unlinked — after checking again that
    /// the path still names that very inode — and the bind is retried once. A live socket
    /// throws the original `EADDRINUSE`; any other kind of file (regular file, FIFO, symbolic
    /// link, device, directory) throws `.notASocket` and is left as it was.
    public static func bind(_ socket: FileDescriptor, to address: SocketAddress) throws(UnixSocketBindError) -> UnixSocketFile {
        guard let path = address.unixPath else { throw .system(SystemError("bind", .invalidArgument)) }
        do throws(SystemError) {
            try socket.bind(to: address)
        } catch where error.errno == .addressInUse {
            try removeIfStale(path: path, address: address, bindFailure: error)
            do throws(SystemError) {
                try socket.bind(to: address)
            } catch {
                throw .system(error)
            }
        } catch {
            throw .system(error)
        }
        switch FileStatus.ofLink(atPath: path) {
        case .success(let status): return UnixSocketFile(path: path, identity: status.identity)
        case .failure(let errno): throw .system(SystemError("lstat", errno))
        }
    }

    /// Removes the stale socket file at `path`, or throws why it must stay.
    private static func removeIfStale(path: String, address: SocketAddress, bindFailure: SystemError) throws(UnixSocketBindError) {
        let before: FileStatus
        switch FileStatus.ofLink(atPath: path) {
        case .success(let status): before = status
        case .failure(.noSuchFileOrDirectory): return   // gone since bind: just retry
        case .failure(let errno): throw .system(SystemError("lstat", errno))
        }
        guard before.kind == .socket else { throw .notASocket(path: path, kind: before.kind) }
        guard nothingAccepts(on: address) else { throw .system(bindFailure) }
        // Unlink only the inode that was found dead, not one a new owner bound meanwhile.
        guard case .success(let now) = FileStatus.ofLink(atPath: path) else { return }
        guard now.kind == .socket, now.identity == before.identity else { throw .system(bindFailure) }
        do {
            try unlinkFile(path)
        } catch where error.errno == .noSuchFileOrDirectory {
            return
        } catch {
            throw .system(error)
        }
    }

    /// True when connecting to `address` is refused: no process listens on that socket file.
    private static func nothingAccepts(on address: SocketAddress) -> Bool {
        guard let probe = try? FileDescriptor.streamSocket(family: AF_UNIX) else { return false }
        defer { probe.close() }
        if case .failure(let errno) = probe.connectResult(to: address) { return errno == .connectionRefused }
        return false
    }

    /// Unlinks the path if it still names the socket this process bound (same device and
    /// inode); a file that another process has put there since is left alone. Call it before
    /// closing the bound socket: the open socket keeps the inode, so its number cannot have
    /// been given to a newer file. Returns whether the file was removed.
    @discardableResult
    public func removeIfStillOurs() -> Bool {
        guard case .success(let status) = FileStatus.ofLink(atPath: path),
              status.kind == .socket, status.identity == identity else { return false }
        return (try? unlinkFile(path)) != nil
    }
}
