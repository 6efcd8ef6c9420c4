// What a path or a descriptor names, from lstat(2)/fstat(2): its kind and its identity (device
// and inode), so that a file can be removed later only if the path still names the same one.
import Glibc

/// Which file a path named: `st_dev` and `st_ino`. Two paths (or one path at two moments) with
/// equal identities name the same file.
public struct FileIdentity: Hashable, Sendable, CustomStringConvertible {
    /// `st_dev`: the device holding the file.
    public let device: UInt64
    /// `st_ino`: the file's inode number on that device.
    public let inode: UInt64

    /// An identity from its two numbers.
    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// `device 2049, inode 1234`.
    public var description: String { "device \(device), inode \(inode)" }
}

/// The type of a file (the `S_IFMT` bits of `st_mode`).
public enum FileKind: Hashable, Sendable, CustomStringConvertible {
    /// `S_IFSOCK`: a Unix-domain socket.
    case socket
    /// `S_IFREG`.
    case regularFile
    /// `S_IFDIR`.
    case directory
    /// `S_IFLNK` (only `lstat` reports it).
    case symbolicLink
    /// `S_IFIFO`: a named pipe.
    case fifo
    /// `S_IFCHR`, such as /dev/null.
    case characterDevice
    /// `S_IFBLK`.
    case blockDevice
    /// Any other `S_IFMT` value.
    case other(UInt32)

    /// The kind of a `st_mode`.
    public init(mode: UInt32) {
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFSOCK): self = .socket
        case UInt32(S_IFREG): self = .regularFile
        case UInt32(S_IFDIR): self = .directory
        case UInt32(S_IFLNK): self = .symbolicLink
        case UInt32(S_IFIFO): self = .fifo
        case UInt32(S_IFCHR): self = .characterDevice
        case UInt32(S_IFBLK): self = .blockDevice
        case let bits: self = .other(bits)
        }
    }

    /// The kind with an article, for messages: `a regular file`, `a FIFO`, ...
    public var description: String {
        switch self {
        case .socket: return "a socket"
        case .regularFile: return "a regular file"
        case .directory: return "a directory"
        case .symbolicLink: return "a symbolic link"
        case .fifo: return "a FIFO"
        case .characterDevice: return "a character device"
        case .blockDevice: return "a block device"
        case .other(let bits): return "a file of type 0o\(String(bits, radix: 8))"
        }
    }
}

/// The parts of a `struct stat` this project uses.
public struct FileStatus: Hashable, Sendable {
    /// The file's type.
    public let kind: FileKind
    /// Device and inode.
    public let identity: FileIdentity
    /// `st_nlink`: how many directory entries name the file.
    public let linkCount: UInt64

    init(_ status: stat) {
        kind = FileKind(mode: UInt32(status.st_mode))
        identity = FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
        linkCount = UInt64(status.st_nlink)
    }

    /// `lstat(2)`: the file `path` names, not following a final symbolic link.
    public static func ofLink(atPath path: String) -> Result<FileStatus, Errno> {
        var status = stat()
        return retryingOnInterrupt { lstat(path, &status) }.map { _ in FileStatus(status) }
    }

    /// `fstat(2)`: the file an open descriptor refers to.
    public static func of(_ descriptor: FileDescriptor) -> Result<FileStatus, Errno> {
        var status = stat()
        return retryingOnInterrupt { fstat(descriptor.rawValue, &status) }.map { _ in FileStatus(status) }
    }
}
