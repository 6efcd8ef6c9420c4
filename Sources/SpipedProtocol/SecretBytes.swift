import Glibc
import SpipedCrypto

/// Memory for key material: whole pages of their own, excluded from core dumps
/// (`madvise(MADV_DONTDUMP)`), wiped and returned to the kernel by `release()`.
///
/// The pages are an anonymous private mapping, not heap memory, so the exclusion covers the
/// secret and nothing else, and no other allocation ever lands on them after release. The
/// mapping is reserved for `capacity` bytes but the kernel backs only the pages that are
/// touched, so a large capacity (the key-file read buffer) costs address space, not memory.
/// If the kernel refuses the mapping, heap memory is used instead (`isExcludedFromCoreDumps`
/// is then false); the process-wide `PR_SET_DUMPABLE` of the programs still applies.
struct SecretRegion {
    /// The usable bytes (at least the requested capacity; a whole number of pages when mapped).
    let buffer: UnsafeMutableRawBufferPointer
    /// True when the pages are an anonymous mapping marked `MADV_DONTDUMP`.
    let isExcludedFromCoreDumps: Bool
    /// True when `buffer` is an mmap'd region (else heap memory).
    private let isMapped: Bool

    /// Reserves at least `capacity` bytes (rounded up to whole pages), zero-filled.
    init(capacity: Int) {
        precondition(capacity > 0, "a secret region holds at least one byte")
        let pageSize = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)
        let byteCount = (capacity + pageSize - 1) / pageSize * pageSize
        let start = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        if let start, start != UnsafeMutableRawPointer(bitPattern: -1) {   // MAP_FAILED
            buffer = UnsafeMutableRawBufferPointer(start: start, count: byteCount)
            isMapped = true
            // Older kernels (before 3.4) lack MADV_DONTDUMP; the secret is still wiped.
            isExcludedFromCoreDumps = madvise(start, byteCount, MADV_DONTDUMP) == 0
        } else {
            buffer = .allocate(byteCount: capacity, alignment: 16)
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            isMapped = false
            isExcludedFromCoreDumps = false
        }
    }

    /// Wipes the first `usedByteCount` bytes (the rest were never written) and frees the region.
    func release(usedByteCount: Int) {
        SecureWipe.wipe(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(usedByteCount, buffer.count)]))
        if isMapped {
            _ = munmap(buffer.baseAddress, buffer.count)
        } else {
            buffer.deallocate()
        }
    }
}

/// Secret bytes in a `SecretRegion` of their own: kept out of core dumps, overwritten with
/// zeros when the last reference goes away.
///
/// The bytes are written once at initialization and never changed afterwards (only `deinit`
/// touches them again), which is what makes sharing the box across threads safe.
final class SecretBytes: @unchecked Sendable {
    private let region: SecretRegion
    /// How many bytes the secret has.
    let count: Int

    /// A secret of `count` bytes written by `initialize`, which gets exactly `count` zeroed bytes.
    init(count: Int, initialize: (UnsafeMutableRawBufferPointer) -> Void) {
        region = SecretRegion(capacity: count)
        self.count = count
        initialize(UnsafeMutableRawBufferPointer(rebasing: region.buffer[0..<count]))
    }

    deinit {
        region.release(usedByteCount: count)
    }

    /// True when the secret's pages are excluded from core dumps.
    var isExcludedFromCoreDumps: Bool { region.isExcludedFromCoreDumps }

    /// Calls `body` with the secret (valid only during the call; do not copy it out).
    func withUnsafeBytes<Result, Failure: Error>(_ body: (UnsafeRawBufferPointer) throws(Failure) -> Result) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(rebasing: region.buffer[0..<count]))
    }

    /// A copy of the secret in an ordinary array, for tests that compare keys. The copy is not
    /// wiped and not excluded from core dumps: production code uses `withUnsafeBytes`.
    var bytes: [UInt8] { withUnsafeBytes { [UInt8]($0) } }
}
