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
    /// Key files longer than this many bytes (1 MiB) are refused (`.keyFileTooLarge`). The
    /// reference hashes any size; a key file is normally 32 bytes, and the limit keeps a wrong
    /// path (`-k /dev/zero`, a disk image, an endless pipe on `-k -`) from filling memory.
    public static let maximumByteCount = 1 << 20

    /// The 32 bytes of K.
    let secret: SecretBytes

    /// Loads a key file (`-` reads standard input). Returns the key and warnings to show.
    ///
    /// The whole file is read into pages excluded from core dumps (`SecretRegion`), hashed with
    /// SHA-256 and the raw contents wiped; K lives in such pages too. A missing file throws
    /// `.keyFileNotFound`; any other open or read failure throws `.keyFileUnreadable`; more than
    /// `maximumByteCount` bytes throw `.keyFileTooLarge` (the excess is not read).
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

        // One byte more than the limit, to tell a file of exactly the limit from a larger one.
        let region = SecretRegion(capacity: maximumByteCount + 1)
        var byteCount = 0
        do {
            try readAll(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: region.buffer[0...maximumByteCount]),
                        count: &byteCount, path: path)
        } catch {
            region.release(usedByteCount: byteCount)
            throw error
        }
        defer { region.release(usedByteCount: byteCount) }
        guard byteCount <= maximumByteCount else {
            throw .keyFileTooLarge(path: path, maximumByteCount: maximumByteCount)
        }
        if byteCount < recommendedMinimumByteCount {
            warnings.append(.shortKeyFile(byteCount: byteCount))
        }
        let key = SpipedKey(hashing: UnsafeRawBufferPointer(rebasing: region.buffer[0..<byteCount]), backend: backend)
        return (key, warnings)
    }

    /// A key from raw key-file contents: K = SHA256(fileContents).
    public init(fileContents: [UInt8], backend: CryptoBackend = .portable) {
        self = fileContents.withUnsafeBytes { SpipedKey(hashing: $0, backend: backend) }
    }

    /// K = SHA256(contents), written straight into its `SecretBytes`.
    private init(hashing contents: UnsafeRawBufferPointer, backend: CryptoBackend) {
        var hash = SHA256(backend: backend)
        hash.update(contents)
        secret = SecretBytes(count: SHA256.digestByteCount) { hash.finalize(into: $0) }
    }

    /// True when K's memory is excluded from core dumps (`MADV_DONTDUMP`).
    public var isExcludedFromCoreDumps: Bool { secret.isExcludedFromCoreDumps }

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

    /// Reads `descriptor` into `buffer` until end of file or until `buffer` is full, keeping
    /// `count` up to date (also when it throws, so the caller wipes what was read);
    /// `count == buffer.count` means the file may hold more. Retries on EINTR.
    private static func readAll(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, count: inout Int,
                                path: String) throws(SpipedProtocolError) {
        count = 0
        while count < buffer.count {
            let result = read(descriptor, buffer.baseAddress! + count, buffer.count - count)
            if result > 0 {
                count += result
            } else if result == 0 {
                break
            } else {
                let code = errno
                if code == EINTR { continue }
                throw .keyFileUnreadable(path: path, errno: code)
            }
        }
    }
}
