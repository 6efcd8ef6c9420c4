// Fuzz target: key-file loading. Arbitrary contents (and sizes beyond libFuzzer's input size)
// are written to a temporary file with fuzzer-chosen permissions and loaded with
// `SpipedKey.load(path:)`; the warnings must be exactly those the rules give, and the loaded
// key must be the one `SpipedKey(fileContents:)` makes from the same bytes.
import FuzzSupport
import Glibc
import ProtocolFuzzing
import SpipedProtocol

/// True when two keys are the same K: a -f handshake between them completes.
private func sameKey(_ first: SpipedKey, _ second: SpipedKey) -> Bool {
    do {
        let fast = HandshakeOptions(fast: true)
        let client = try Handshake(role: .client, key: first, options: fast, nonce: [UInt8](repeating: 1, count: 32))
        let server = try Handshake(role: .server, key: second, options: fast, nonce: [UInt8](repeating: 2, count: 32))
        for _ in 0..<3 {
            for (sender, receiver) in [(client, server), (server, client)] {
                let bytes = [UInt8](sender.pendingOutput)
                sender.consumeOutput(bytes.count)
                if !bytes.isEmpty { _ = try exchange(bytes, into: receiver) }
            }
        }
        return client.isComplete && server.isComplete
    } catch {
        return false
    }
}

private func exchange(_ bytes: [UInt8], into receiver: Handshake) throws(SpipedProtocolError) -> Int {
    let result: Result<Int, SpipedProtocolError> = bytes.withUnsafeBytes { buffer in
        do throws(SpipedProtocolError) { return .success(try receiver.receive(buffer)) } catch { return .failure(error) }
    }
    return try result.get()
}

/// Input layout: 2 bytes of mode bits (low 9 bits: the file's permission bits; bits 9-12: the
/// contents are repeated 1 + n·1000 times when bit 13 is set), then the contents.
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzedInput(inputBytes(data, count))
    let options = input.integer(byteCount: 2)
    let mode = mode_t(options & 0o777) | 0o400          // the owner can always read it
    let piece = input.rest()
    var contents = piece
    if options & (1 << 13) != 0 {
        let repeats = 1 + Int((options >> 9) & 15) * 1000
        contents = Array([[UInt8]](repeating: piece, count: repeats).joined())
    }

    var template = Array("/tmp/spiped-fuzz-key-XXXXXX".utf8CString)
    let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard descriptor >= 0 else { fuzzFailure("mkstemp failed: errno \(errno)") }
    let path = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    defer { unlink(path) }
    var written = 0
    while written < contents.count {
        let result = contents[written...].withUnsafeBytes { write(descriptor, $0.baseAddress!, $0.count) }
        guard result > 0 else { fuzzFailure("write failed: errno \(errno)") }
        written += result
    }
    fchmod(descriptor, mode)
    close(descriptor)

    let loaded: (key: SpipedKey, warnings: [KeyFileWarning])
    do {
        loaded = try SpipedKey.load(path: path)
    } catch {
        fuzzFailure("loading a readable \(contents.count)-byte key file failed: \(error)")
    }
    var expectedWarnings: [KeyFileWarning] = []
    if contents.count < 32 { expectedWarnings.append(.shortKeyFile(byteCount: contents.count)) }
    if mode & 0o077 != 0 { expectedWarnings.append(.readableByOthers(mode: UInt32(mode))) }
    // The same warnings, in any order.
    if loaded.warnings.count != expectedWarnings.count || !expectedWarnings.allSatisfy(loaded.warnings.contains) {
        fuzzFailure("mode \(String(mode, radix: 8)), \(contents.count) bytes: warnings \(loaded.warnings), expected \(expectedWarnings)")
    }
    if !sameKey(loaded.key, SpipedKey(fileContents: contents)) {
        fuzzFailure("the key loaded from a \(contents.count)-byte file differs from SpipedKey(fileContents:)")
    }
    // A different file (one byte appended) must give a different key.
    if sameKey(loaded.key, SpipedKey(fileContents: contents + [0])) {
        fuzzFailure("appending a byte to the key file did not change the key")
    }
    return 0
}

/// The executable's entry point (SwiftPM links `key_file_main` as `main`).
@_cdecl("key_file_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
