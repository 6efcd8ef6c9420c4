import Glibc

/// Where benchmark results go so the optimizer cannot prove them unused and delete the work.
///
/// Every measured operation feeds a byte of its output into `blackHole(_:)`. The accumulated
/// byte is written to `/dev/null` at exit (`flushBlackHole()`), an effect the compiler must
/// keep, so every computation that contributed to it must run.
nonisolated(unsafe) private var blackHoleAccumulator: UInt8 = 0

/// Folds one byte of a result into the accumulator.
@inline(never)
func blackHole(_ byte: UInt8) {
    blackHoleAccumulator = blackHoleAccumulator &+ byte
}

/// Folds the first byte of a buffer into the accumulator.
@inline(never)
func blackHole(_ bytes: UnsafeRawBufferPointer) {
    if let first = bytes.first { blackHole(first) }
}

/// Writes the accumulator to `/dev/null`; call once before exiting.
func flushBlackHole() {
    let descriptor = open("/dev/null", O_WRONLY)
    guard descriptor >= 0 else { return }
    var value = blackHoleAccumulator
    _ = write(descriptor, &value, 1)
    close(descriptor)
}
