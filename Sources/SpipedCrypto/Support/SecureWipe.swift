import Glibc

/// Zeroing of secret material that the optimizer may not remove as a dead store.
///
/// Uses glibc's `explicit_bzero(3)`, which exists for exactly this purpose: the compiler
/// cannot see through the library call, and glibc itself ends it with a compiler barrier.
public enum SecureWipe {
    /// Overwrites the bytes with zeros in a way the optimizer does not remove.
    public static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let start = buffer.baseAddress, buffer.count > 0 else { return }
        explicit_bzero(start, buffer.count)
    }

    /// Overwrites the array's elements with zeros (its count is unchanged).
    ///
    /// Only this array's storage is wiped: if the storage was shared with another copy, Swift
    /// first makes a private copy and the other copy keeps its bytes. Wipe the last copy.
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { wipe($0) }
    }

    /// Zeroes `count` 64-bit words at `words` (big-number scratch space).
    static func wipe(_ words: UnsafeMutablePointer<UInt64>, count: Int) {
        wipe(UnsafeMutableRawBufferPointer(start: words, count: count * MemoryLayout<UInt64>.stride))
    }
}
