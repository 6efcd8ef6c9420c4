// How the parser reads files and lists directories: through a small protocol, so unit tests
// and the fuzz target run on an in-memory tree and only the disk implementation touches the
// kernel (open/fstat/read and opendir/readdir from Glibc).
import Glibc
import SpipedSystem

/// Why a file could not be read or a directory listed.
public enum ConfigurationReadError: Error, Equatable, Sendable {
    /// No such file or directory.
    case notFound
    /// A directory where a file was expected.
    case isDirectory
    /// The file is larger than the limit (bytes).
    case tooLarge(limit: Int)
    /// Any other failure (errno).
    case system(errno: Int32)

    /// A short explanation (`No such file or directory`).
    public var message: String {
        switch self {
        case .notFound: return errnoDescription(ENOENT)
        case .isDirectory: return errnoDescription(EISDIR)
        case .tooLarge(let limit): return "file is larger than \(limit) bytes"
        case .system(let code): return errnoDescription(code)
        }
    }
}

/// Read access to configuration files.
public protocol ConfigurationFileSystem: Sendable {
    /// The whole contents of the file at `path`; throws `.tooLarge` rather than read more than
    /// `maximumByteCount` bytes.
    func readFile(atPath path: String, maximumByteCount: Int) throws(ConfigurationReadError) -> [UInt8]
    /// The names in the directory at `path` (without `.` and `..`), in any order.
    func directoryEntries(atPath path: String) throws(ConfigurationReadError) -> [String]
    /// A name for the file that is the same for every path leading to it (used to detect
    /// include cycles); the path itself when there is nothing better.
    func identity(ofPath path: String) -> String
}

/// The real file system.
public struct DiskConfigurationFileSystem: ConfigurationFileSystem {
    /// Creates the accessor (it has no state).
    public init() {}

    /// Reads with open/fstat/read, retrying on EINTR; refuses directories and files over the limit.
    public func readFile(atPath path: String, maximumByteCount: Int) throws(ConfigurationReadError) -> [UInt8] {
        guard !path.utf8.contains(0) else { throw .notFound }
        var descriptor: Int32
        repeat { descriptor = open(path, O_RDONLY | O_CLOEXEC) } while descriptor < 0 && errno == EINTR
        guard descriptor >= 0 else { throw Self.error(errno) }
        defer { _ = close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw Self.error(errno) }
        if status.st_mode & S_IFMT == S_IFDIR { throw .isDirectory }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { return contents }
            if count < 0 {
                if errno == EINTR { continue }
                throw Self.error(errno)
            }
            contents += chunk[0..<count]
            if contents.count > maximumByteCount { throw .tooLarge(limit: maximumByteCount) }
        }
    }

    /// Lists with opendir/readdir.
    public func directoryEntries(atPath path: String) throws(ConfigurationReadError) -> [String] {
        guard !path.utf8.contains(0) else { throw .notFound }
        guard let directory = opendir(path) else { throw Self.error(errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                if errno != 0 { throw Self.error(errno) }
                return names
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
    }

    /// The `realpath` of the file (symbolic links and `..` resolved), or the path unchanged.
    public func identity(ofPath path: String) -> String {
        guard !path.utf8.contains(0), let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Maps errno to the typed error.
    private static func error(_ code: Int32) -> ConfigurationReadError {
        switch code {
        case ENOENT: return .notFound
        case EISDIR: return .isDirectory
        default: return .system(errno: code)
        }
    }
}

/// A tree of files held in memory, keyed by path (for tests and fuzzing). Directories exist
/// implicitly: `/a/b` exists as a directory when some file's path starts with `/a/b/`.
public struct InMemoryConfigurationFileSystem: ConfigurationFileSystem {
    /// The files, by path.
    public var files: [String: [UInt8]]

    /// Creates a tree from byte contents.
    public init(files: [String: [UInt8]]) { self.files = files }

    /// Creates a tree from text contents.
    public init(texts: [String: String]) {
        files = texts.mapValues { Array($0.utf8) }
    }

    /// The file's bytes; `.isDirectory` for a directory prefix, `.notFound` otherwise.
    public func readFile(atPath path: String, maximumByteCount: Int) throws(ConfigurationReadError) -> [UInt8] {
        if let contents = files[path] {
            if contents.count > maximumByteCount { throw .tooLarge(limit: maximumByteCount) }
            return contents
        }
        let prefix = path.hasSuffix("/") ? path : path + "/"
        if files.keys.contains(where: { $0.hasPrefix(prefix) }) { throw .isDirectory }
        throw .notFound
    }

    /// The first path components after `path/` of every file below it.
    public func directoryEntries(atPath path: String) throws(ConfigurationReadError) -> [String] {
        if files[path] != nil { throw .system(errno: ENOTDIR) }
        let prefix = path.hasSuffix("/") ? path : path + "/"
        var names: Set<String> = []
        for file in files.keys where file.hasPrefix(prefix) {
            let rest = file.dropFirst(prefix.count)
            if let name = rest.split(separator: "/", omittingEmptySubsequences: false).first, !name.isEmpty {
                names.insert(String(name))
            }
        }
        if names.isEmpty { throw .notFound }
        return Array(names)
    }

    /// The path itself (the tree has no links).
    public func identity(ofPath path: String) -> String { path }
}
