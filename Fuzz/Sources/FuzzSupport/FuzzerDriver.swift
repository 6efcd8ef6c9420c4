/// The libFuzzer entry point every fuzz target calls from its `main`.
///
/// libFuzzer normally supplies `main` and calls `LLVMFuzzerTestOneInput`; SwiftPM instead links
/// each executable's own `<module>_main` as `main`, so the target's `main` passes argc/argv to
/// `LLVMFuzzerRunDriver`, which parses libFuzzer's flags and runs `callback` on every input.

/// libFuzzer's `int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*cb)(const uint8_t *, size_t))`.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The type of a fuzz target's per-input function: it gets the input bytes and returns 0
/// (libFuzzer reserves other values). It traps (`fatalError`/`precondition`) on any finding.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer with the process's arguments and `callback`; returns its exit status.
public func runFuzzer(
    argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, callback: FuzzCallback
) -> CInt {
    var argumentCount = argc
    var argumentVector = argv
    return LLVMFuzzerRunDriver(&argumentCount, &argumentVector, callback)
}

/// Copies libFuzzer's input into an array (an empty input may come with a nil pointer).
public func inputBytes(_ data: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
    guard let data, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: count))
}
