// A pid file that is safe to write as root and that marks one running instance: opened without
// following a symbolic link, locked for the life of the process so that a second instance with
// the same pid file refuses to start, and removed at a clean exit only if it is still ours.
import Glibc

/// Why a pid file could not be taken.
public enum PidFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path is a symbolic link; it is not followed (path).
    case symbolicLink(path: String)
    /// The path is a regular file with more than one name (a hard link); it is not written (path).
    case hardLinked(path: String)
    /// Another process holds the lock: an instance with this pid file runs (path, the pid the
    /// file holds, if it could be read).
    case lockedByRunningProcess(path: String, pid: Int32?)
    /// The file could not be opened, locked or written (path, errno).
    case unwritable(path: String, errno: Int32)

    /// A sentence for users.
    public var description: String {
        switch self {
        case .symbolicLink(let path):
            return "pid file \(path) is a symbolic link; refusing to follow it"
        case .hardLinked(let path):
            return "pid file \(path) has more than one hard link; refusing to write it"
        case .lockedByRunningProcess(let path, let pid?):
            return "pid file \(path) is locked by running process \(pid)"
        case .lockedByRunningProcess(let path, nil):
            return "pid file \(path) is locked by another running process"
        case .unwritable(let path, let code):
            return "Cannot write pid file \(path): \(errnoDescription(code))"
        }
    }
}

/// A pid file this process holds: it contains `getpid()` in decimal without a newline (as the
/// reference writes it) and stays locked (`flock(LOCK_EX)`) until `remove()` or the end of the
/// process. There is no `deinit`: dropping the object keeps the descriptor, and so the lock.
///
/// A path that names something other than a regular file (such as `/dev/null`) gets the pid
/// written as the reference would, but is neither locked nor ever removed.
public final class PidFile {
    /// The path given to `create`.
    public let path: String
    /// The locked descriptor, or nil for a non-regular file (and after `remove()`).
    private var descriptor: FileDescriptor?
    /// Device and inode of the file written (nil for a non-regular file).
    private let identity: FileIdentity?

    private init(path: String, descriptor: FileDescriptor?, identity: FileIdentity?) {
        self.path = path
        self.descriptor = descriptor
        self.identity = identity
    }

    /// Opens `path` (created mode 0644; `O_NOFOLLOW`, `O_CLOEXEC`), takes an exclusive
    /// non-blocking lock on it, and only then truncates it and writes `getpid()`.
    ///
    /// Throws `.symbolicLink` for a symbolic link, `.hardLinked` for a regular file with
    /// several names, and `.lockedByRunningProcess` when another process holds the lock
    /// (that is, another instance with this pid file runs). If the file is removed or
    /// replaced between the open and the lock, it is opened again (a few times at most).
    public static func create(path: String) throws(PidFileError) -> PidFile {
        for _ in 0..<3 {
            let flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK
            let opened = retryingOnInterrupt { open(path, flags, 0o644) }
            let descriptor: FileDescriptor
            switch opened {
            case .success(let raw): descriptor = FileDescriptor(rawValue: raw)
            case .failure(let errno):
                if errno.rawValue == ELOOP, case .success(let status) = FileStatus.ofLink(atPath: path),
                   status.kind == .symbolicLink {
                    throw .symbolicLink(path: path)
                }
                throw .unwritable(path: path, errno: errno.rawValue)
            }
            let status: FileStatus
            switch FileStatus.of(descriptor) {
            case .success(let value): status = value
            case .failure(let errno):
                descriptor.close()
                throw .unwritable(path: path, errno: errno.rawValue)
            }
            guard status.kind == .regularFile else {
                // E.g. -p /dev/null: write as the reference does; nothing to lock or remove.
                defer { descriptor.close() }
                try write(pidTo: descriptor, path: path, truncate: false)
                return PidFile(path: path, descriptor: nil, identity: nil)
            }
            guard status.linkCount <= 1 else {
                descriptor.close()
                throw .hardLinked(path: path)
            }
            if case .failure(let errno) = retryingOnInterrupt({ flock(descriptor.rawValue, LOCK_EX | LOCK_NB) }) {
                let holder = errno == .wouldBlock ? readPid(from: descriptor) : nil
                descriptor.close()
                if errno == .wouldBlock { throw .lockedByRunningProcess(path: path, pid: holder) }
                throw .unwritable(path: path, errno: errno.rawValue)
            }
            // The holder we waited for may have removed the file after our open: then the lock
            // is on a file nobody can find. Start again on whatever the path names now.
            guard case .success(let current) = FileStatus.ofLink(atPath: path), current.identity == status.identity else {
                descriptor.close()
                continue
            }
            do throws(PidFileError) {
                try write(pidTo: descriptor, path: path, truncate: true)
            } catch {
                descriptor.close()
                throw error
            }
            return PidFile(path: path, descriptor: descriptor, identity: status.identity)
        }
        throw .unwritable(path: path, errno: EAGAIN)
    }

    /// Unlinks the file if the path still names the file this process wrote, then closes it
    /// (releasing the lock). Does nothing the second time, or for a non-regular file. An unlink
    /// that fails (e.g. the directory is not writable after `-u`) is ignored.
    public func remove() {
        guard let descriptor, let identity else { return }
        if case .success(let status) = FileStatus.ofLink(atPath: path), status.identity == identity {
            _ = unlink(path)
        }
        descriptor.close()
        self.descriptor = nil
    }

    /// Writes `getpid()` in decimal, after truncating the file when `truncate` (the descriptor
    /// was just opened, so a regular file is written from offset 0).
    private static func write(pidTo descriptor: FileDescriptor, path: String, truncate: Bool) throws(PidFileError) {
        if truncate, case .failure(let errno) = retryingOnInterrupt({ ftruncate(descriptor.rawValue, 0) }) {
            throw .unwritable(path: path, errno: errno.rawValue)
        }
        let bytes = Array("\(getpid())".utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                descriptor.writeResult(UnsafeRawBufferPointer(rebasing: raw[written...]))
            }
            switch result {
            case .success(let count) where count > 0: written += count
            case .success: throw .unwritable(path: path, errno: EIO)
            case .failure(let errno): throw .unwritable(path: path, errno: errno.rawValue)
            }
        }
    }

    /// The decimal pid at the start of the file, if there is one.
    private static func readPid(from descriptor: FileDescriptor) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 24)
        let count = buffer.withUnsafeMutableBytes { raw in
            retryingOnInterrupt { pread(descriptor.rawValue, raw.baseAddress, raw.count, 0) }
        }
        guard case .success(let length) = count, length > 0 else { return nil }
        let text = String(decoding: buffer[..<length], as: UTF8.self).split(whereSeparator: { $0 == "\n" }).first ?? ""
        guard let pid = Int32(text), pid > 0 else { return nil }
        return pid
    }
}
