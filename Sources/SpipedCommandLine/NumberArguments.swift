// Numeric option arguments, read exactly as spiped 1.6 reads them: the whole word must be a
// number (leading blanks allowed, nothing after it). Counts use C's strtoull with base 0 (so
// `0x10` and `010` work, and a leading minus wraps around as in C); durations use strtod (so
// `1.5`, `1e3`, `inf`, `0x10` work) and must lie in [0, +inf] (NaN passes this check, as in the
// reference, and is refused later by the caller's own rule).
import Glibc

/// Why a numeric argument was refused.
enum NumberArgumentError: Error, Equatable, Sendable {
    /// Not a number, or trailing characters (C's EINVAL).
    case invalid
    /// A number outside the accepted range (C's ERANGE).
    case outOfRange
}

/// Number parsing with C semantics.
enum NumberArguments {
    /// An unsigned count (`-n`): strtoull base 0 over the whole word.
    static func unsignedCount(_ text: String) -> Result<UInt64, NumberArgumentError> {
        text.withCString { start -> Result<UInt64, NumberArgumentError> in
            var end: UnsafeMutablePointer<CChar>?
            errno = 0
            let value = strtoull(start, &end, 0)
            let code = errno
            guard let end, end != UnsafeMutablePointer(mutating: start), end.pointee == 0 else { return .failure(.invalid) }
            if code == ERANGE { return .failure(.outOfRange) }
            return .success(UInt64(value))
        }
    }

    /// A non-negative duration in seconds (`-o`, `-r`): strtod over the whole word, then a
    /// range check against [0, +inf] that NaN passes.
    static func duration(_ text: String) -> Result<Double, NumberArgumentError> {
        text.withCString { start -> Result<Double, NumberArgumentError> in
            var end: UnsafeMutablePointer<CChar>?
            errno = 0
            let value = strtod(start, &end)
            let code = errno
            guard let end, end != UnsafeMutablePointer(mutating: start), end.pointee == 0 else { return .failure(.invalid) }
            // strtod reports overflow (1e400) and underflow (1e-400) as ERANGE.
            if code == ERANGE { return .failure(.outOfRange) }
            if value < 0 { return .failure(.outOfRange) }
            return .success(value)
        }
    }

    /// A permission mode in octal (`--socket-mode`): one to four octal digits, with or without
    /// a leading `0` (`660`, `0660`), at most `0777` (set-id and sticky bits mean nothing on a
    /// socket). `.invalid` for anything else, `.outOfRange` above 0777.
    static func permissionMode(_ text: String) -> Result<UInt32, NumberArgumentError> {
        let digits = Array(text.utf8)
        guard (1...4).contains(digits.count), digits.allSatisfy({ (0x30...0x37).contains($0) }) else { return .failure(.invalid) }
        let value = digits.reduce(UInt32(0)) { $0 * 8 + UInt32($1 - 0x30) }
        return value <= 0o777 ? .success(value) : .failure(.outOfRange)
    }
}
