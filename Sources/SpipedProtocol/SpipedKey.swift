import Glibc
import SpipedCrypto

/// A warning about a key file that still loaded.
public enum KeyFileWarning: Equatable, Sendable {
    /// The file holds fewer than 32 bytes (byte count).
    case shortKeyFile(byteCount: Int)
    /// The file can be read or written by users other than its owner (mode bits).
    case readableByOthers(mode: UInt32)
}

/// The shared secret K = SHA256(key file contents), wiped when the last copy is released.
public struct SpipedKey: Sendable {
    /// Key files shorter than this many bytes get a `.shortKeyFile` warning (256 bits).
    public static let recommendedMinimumByteCount = 32

    /// The 32 bytes of K.
    let secret: SecretBytes

    /// Loads a key file (`-` reads standard input). Returns the key and warnings to show.
    ///
    /// The whole file is read, hashed with SHA-256 and the raw contents wiped. A missing file
    /// throws `.keyFileNotFound`; any other open or read failure throws `.keyFileUnreadable`.
    /// Group/other permission bits on a regular file and a file shorter than 32 bytes are
    /// reported as warnings, not errors (the reference accepts such files).
    public static func load(path: String, backend: CryptoBackend = .portable) throws(SpipedProtocolError) -> (key: SpipedKey, warnings: [KeyFileWarning]) {
        let readsStandardInput = path == "-"
        let descriptor: Int32
        if readsStandardInput {
            descriptor = STDIN_FILENO
        } else {
            descriptor = try openForReading(path)
        }
        defer { if !readsStandardInput { _ = close(descriptor) } }

        var warnings: [KeyFileWarning] = []
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw .keyFileUnreadable(path: path, errno: errno)
        }
        // Only a regular file has meaningful permission bits (a pipe on stdin is always 0600-ish).
        if status.st_mode & S_IFMT == S_IFREG && status.st_mode & 0o077 != 0 {
            warnings.append(.readableByOthers(mode: UInt32(status.st_mode & 0o7777)))
        }

        let contents = try readAll(descriptor, path: path)
        defer {
            SecureWipe.wipe(contents.buffer)
            contents.buffer.deallocate()
        }
        let byteCount = contents.count
        if byteCount < recommendedMinimumByteCount {
            warnings.append(.shortKeyFile(byteCount: byteCount))
        }
        let key = SpipedKey(hashing: UnsafeRawBufferPointer(rebasing: contents.buffer[0..<byteCount]), backend: backend)
        return (key, warnings)
    }

    /// A key from raw key-file contents: K = SHA256(fileContents).
    public init(fileContents: [UInt8], backend: CryptoBackend = .portable) {
        self = fileContents.withUnsafeBytes { SpipedKey(hashing: $0, backend: backend) }
    }

    /// K = SHA256(contents).
    private init(hashing contents: UnsafeRawBufferPointer, backend: CryptoBackend) {
        var hash = SHA256(backend: backend)
        hash.update(contents)
        secret = SecretBytes(hash.finalize())
    }

    /// Opens `path` read-only, retrying on EINTR; maps ENOENT to `.keyFileNotFound`.
    private static func openForReading(_ path: String) throws(SpipedProtocolError) -> Int32 {
        while true {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            if descriptor >= 0 { return descriptor }
            let code = errno
            if code == EINTR { continue }
            if code == ENOENT { throw .keyFileNotFound(path: path) }
            throw .keyFileUnreadable(path: path, errno: code)
        }
    }

    /// Reads `descriptor` to end of file into a growing buffer the caller must wipe and free.
    /// Every buffer left behind while growing is wiped before it is freed.
    private static func readAll(_ descriptor: Int32, path: String) throws(SpipedProtocolError) -> (buffer: UnsafeMutableRawBufferPointer, count: Int) {
        var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        var count = 0
        while true {
            if count == buffer.count {
                let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                larger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: count)
                SecureWipe.wipe(buffer)
                buffer.deallocate()
                buffer = larger
            }
            let result = read(descriptor, buffer.baseAddress! + count, buffer.count - count)
            if result > 0 {
                count += result
            } else if result == 0 {
                return (buffer, count)
            } else {
                let code = errno
                if code == EINTR { continue }
                SecureWipe.wipe(buffer)
                buffer.deallocate()
                throw .keyFileUnreadable(path: path, errno: code)
            }
        }
    }
}
