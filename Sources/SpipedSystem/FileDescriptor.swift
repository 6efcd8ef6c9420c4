import Glibc

/// An open file descriptor (a C `int`). A value type: closing is explicit, never automatic.
///
/// Each system call comes in two layers (after apple/swift-system): an internal function
/// returning `Result<_, Errno>` for hot paths that branch on `EAGAIN` without throwing, and a
/// public `throws(SystemError)` wrapper. `EINTR` is retried in `retryingOnInterrupt` only.
public struct FileDescriptor: RawRepresentable, Hashable, Sendable {
    /// The C file descriptor number.
    public let rawValue: Int32

    /// Wraps a C file descriptor number.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// File descriptor 0 (`STDIN_FILENO`).
    public static let standardInput = FileDescriptor(rawValue: 0)
    /// File descriptor 1 (`STDOUT_FILENO`).
    public static let standardOutput = FileDescriptor(rawValue: 1)
    /// File descriptor 2 (`STDERR_FILENO`).
    public static let standardError = FileDescriptor(rawValue: 2)

    /// `close(2)`. Not retried on `EINTR`: on Linux the descriptor is released even then.
    public func close() {
        _ = Glibc.close(rawValue)
    }

    /// `read(2)` into `buffer`; returns the count read (0 = end of file) or the error.
    /// `EAGAIN` comes back as `.failure(.wouldBlock)`.
    public func readResult(into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> {
        retryingOnInterrupt { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// `write(2)` from `buffer`; returns the count written or the error.
    public func writeResult(_ buffer: UnsafeRawBufferPointer) -> Result<Int, Errno> {
        retryingOnInterrupt { Glibc.write(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// `readv(2)`: scatters one read over several buffers.
    public func readvResult(_ buffers: [UnsafeMutableRawBufferPointer]) -> Result<Int, Errno> {
        var vectors = buffers.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
        let count = Int32(vectors.count)
        return vectors.withUnsafeMutableBufferPointer { pointer in
            retryingOnInterrupt { Glibc.readv(rawValue, pointer.baseAddress, count) }
        }
    }

    /// `writev(2)`: gathers several buffers into one write.
    public func writevResult(_ buffers: [UnsafeRawBufferPointer]) -> Result<Int, Errno> {
        var vectors = buffers.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        let count = Int32(vectors.count)
        return vectors.withUnsafeMutableBufferPointer { pointer in
            retryingOnInterrupt { Glibc.writev(rawValue, pointer.baseAddress, count) }
        }
    }

    /// `read(2)`, throwing; returns 0 at end of file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        try readResult(into: buffer).get("read")
    }

    /// `write(2)`, throwing; returns the count written (may be short).
    public func write(_ buffer: UnsafeRawBufferPointer) throws(SystemError) -> Int {
        try writeResult(buffer).get("write")
    }

    /// Writes all of `buffer`, looping over short writes (for blocking descriptors).
    public func writeAll(_ buffer: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < buffer.count {
            offset += try write(UnsafeRawBufferPointer(rebasing: buffer[offset...]))
        }
    }

    /// `readv(2)`, throwing.
    public func readv(_ buffers: [UnsafeMutableRawBufferPointer]) throws(SystemError) -> Int {
        try readvResult(buffers).get("readv")
    }

    /// `writev(2)`, throwing.
    public func writev(_ buffers: [UnsafeRawBufferPointer]) throws(SystemError) -> Int {
        try writevResult(buffers).get("writev")
    }

    /// Sets or clears `O_NONBLOCK` (`fcntl(F_SETFL)`).
    public func setNonBlocking(_ enabled: Bool = true) throws(SystemError) {
        let flags = try retryingOnInterrupt { fcntl(rawValue, F_GETFL) }.get("fcntl(F_GETFL)")
        let wanted = enabled ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags {
            _ = try retryingOnInterrupt { fcntl(rawValue, F_SETFL, wanted) }.get("fcntl(F_SETFL)")
        }
    }
}
