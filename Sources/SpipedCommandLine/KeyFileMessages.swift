// The wording of key-file warnings and errors shown by both programs.
import Glibc
import SpipedCrypto
import SpipedProtocol
import SpipedSystem

extension KeyFileWarning {
    /// A one-line warning about a key file that still loaded.
    public var message: String {
        switch self {
        case .shortKeyFile(let byteCount):
            return "Key file is only \(byteCount) bytes long; it should hold at least 256 bits of entropy"
        case .readableByOthers(let mode):
            return "Key file can be read or written by other users (mode \(String(mode & 0o777, radix: 8)))"
        }
    }
}

extension KeyFileWarning {
    /// The warning for the key file at `path`, with the fix.
    public func message(path: String) -> String {
        switch self {
        case .shortKeyFile:
            return "\(path): \(message)"
        case .readableByOthers(let mode):
            let who = mode & 0o007 != 0 ? (mode & 0o070 != 0 ? "its group and others" : "others") : "its group"
            return "key file \(path) can be read or written by \(who) (mode \(String(mode & 0o777, radix: 8))); fix: chmod 600 \(path)"
        }
    }
}

/// The message for a key file that could not be loaded.
public func keyLoadFailureMessage(path: String, error: SpipedProtocolError) -> String {
    switch error {
    case .keyFileNotFound(let path):
        return "Cannot open file: \(path): \(errnoDescription(ENOENT)); Error reading shared secret"
    case .keyFileUnreadable(let path, let code):
        return "Error reading file: \(path): \(errnoDescription(code)); Error reading shared secret"
    case .keyFileTooLarge(let path, let limit):
        let size = limit % (1 << 20) == 0 ? "\(limit >> 20) MiB" : "\(limit) bytes"
        let source = path == "-" ? "The key on standard input" : "Key file \(path)"
        return "\(source) is larger than \(size); Error reading shared secret"
    default:
        return "Error reading shared secret from \(path): \(error)"
    }
}

/// Loads the key file named on a command line, showing its warnings through `warnings`; on
/// failure shows why and exits with status 1 (both programs start this way).
public func loadKeyOrExit(path: String, backend: CryptoBackend, warnings: WarningSink) -> SpipedKey {
    do {
        let loaded = try SpipedKey.load(path: path, backend: backend)
        for warning in loaded.warnings { warnings.warn(warning.message) }
        return loaded.key
    } catch {
        warnings.warn(keyLoadFailureMessage(path: path, error: error))
        exit(1)
    }
}

/// Longest timeout passed on to the proxy (about 31 years): `-o inf` is accepted and means "never".
public let longestTimeoutSeconds = 1e9
