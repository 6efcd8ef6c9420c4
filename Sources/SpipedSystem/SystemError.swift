/// A failed system call: which operation and the `errno` it returned.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C function that failed, e.g. `"connect"`.
    public let operation: String
    /// Why it failed.
    public let errno: Errno

    /// Creates an error for `operation` failing with `errno`.
    public init(_ operation: String, _ errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    /// `"connect: Connection refused"`.
    public var description: String { "\(operation): \(errno)" }
}

extension Result where Failure == Errno {
    /// Converts to a typed throw with the operation's name (the public `throws` layer).
    @inline(__always)
    func get(_ operation: String) throws(SystemError) -> Success {
        switch self {
        case .success(let value): return value
        case .failure(let errno): throw SystemError(operation, errno)
        }
    }
}
