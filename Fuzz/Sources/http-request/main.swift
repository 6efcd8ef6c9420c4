// Fuzz target: the metrics server's HTTP/1.1 request-head parser, on arbitrary byte streams
// cut into arbitrary chunks, under the default limits and under small fuzzed ones.
import FuzzSupport
import SpipedProxy

/// A head written back in the canonical form (CRLF lines, `Name: value`).
private func render(_ head: HTTPRequestHead) -> [UInt8] {
    var text = "\(head.method) \(head.target) HTTP/1.\(head.minorVersion)\r\n"
    for field in head.headers { text += "\(field.name): \(field.value)\r\n" }
    return Array((text + "\r\n").utf8)
}

/// Feeds `bytes` in chunks whose sizes come from `sizes` (cycled, each taken mod 17; a 0 feeds
/// an empty chunk, then one byte) and returns the final state and the total bytes consumed.
private func parseInChunks(_ bytes: [UInt8], sizes: [UInt8], limits: HTTPRequestLimits) -> (HTTPRequestParseState, Int) {
    var parser = HTTPRequestParser(limits: limits)
    var offset = 0, consumed = 0, step = 0
    while offset < bytes.count {
        var size = sizes.isEmpty ? 1 : Int(sizes[step % sizes.count]) % 17
        step += 1
        if size == 0 {
            let before = parser.state
            if parser.consume(bytes[offset..<offset]) != (before, 0) { fuzzFailure("an empty chunk changed the parser") }
            size = 1
        }
        let end = min(bytes.count, offset + size)
        let result = parser.consume(bytes[offset..<end])
        if result.consumed > end - offset { fuzzFailure("consumed \(result.consumed) of a \(end - offset)-byte chunk") }
        if result.state == .incomplete && result.consumed != end - offset { fuzzFailure("incomplete but left bytes unconsumed") }
        consumed += result.consumed
        offset = end
        if step > 1_000_000 { fuzzFailure("chunk loop does not end") }
    }
    return (parser.state, consumed)
}

private func isToken(_ text: String) -> Bool {
    !text.isEmpty && text.utf8.allSatisfy { byte in
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
            || "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}

/// Every documented bound and character rule holds for a completed head.
private func checkHead(_ head: HTTPRequestHead, limits: HTTPRequestLimits, headBytes: Int) {
    if headBytes > limits.maximumHeadBytes { fuzzFailure("head of \(headBytes) bytes over the limit \(limits.maximumHeadBytes)") }
    if head.headers.count > limits.maximumHeaderCount { fuzzFailure("\(head.headers.count) headers over the limit") }
    if !isToken(head.method) { fuzzFailure("method \(head.method.debugDescription) is not a token") }
    if head.target.isEmpty || head.target.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7f }) {
        fuzzFailure("target \(head.target.debugDescription) has forbidden bytes")
    }
    if !(0...9).contains(head.minorVersion) { fuzzFailure("minor version \(head.minorVersion)") }
    // The request line: method SP target SP HTTP/1.x (the target is ASCII, so byte counts hold).
    if head.method.utf8.count + head.target.utf8.count + 10 > limits.maximumLineBytes {
        fuzzFailure("request line longer than \(limits.maximumLineBytes)")
    }
    for field in head.headers {
        if !isToken(field.name) { fuzzFailure("header name \(field.name.debugDescription) is not a token") }
        if field.value.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7f }) {
            fuzzFailure("header value \(field.value.debugDescription) has a control character")
        }
        if let first = field.value.unicodeScalars.first, first == " " || first == "\t" { fuzzFailure("value not trimmed") }
        if let last = field.value.unicodeScalars.last, last == " " || last == "\t" { fuzzFailure("value not trimmed") }
    }
    if head.minorVersion >= 1 && head.values(forHeader: "host").count != 1 { fuzzFailure("HTTP/1.1 head without exactly one Host") }
    // The path: no query or fragment left, and an origin-form target keeps its own prefix.
    let path = head.path
    if path.contains("?") || path.contains("#") { fuzzFailure("path \(path.debugDescription) keeps a query or fragment") }
    if head.target.hasPrefix("/") && !head.target.hasPrefix(path) { fuzzFailure("path \(path.debugDescription) is not a prefix of its target") }
    if head.target.contains("://") && !head.target.hasPrefix("/") && !path.hasPrefix("/") {
        fuzzFailure("absolute-form path \(path.debugDescription) does not start with /")
    }
}

/// Input layout: byte 0 bit 0 set: small limits from bytes 1-3 (head 1...512, line 1...256,
/// headers 0...8); then one byte n and n chunk sizes; the rest is the byte stream.
/// Checks: no crash or hang; the outcome and the consumed count are the same for the whole
/// stream at once, byte by byte and in fuzzed chunks; a completed head obeys every limit and
/// character rule and ends with a line feed; re-parsing exactly the consumed bytes, and the
/// head's canonical rendering, give the same head; a failure consumed at most one byte past
/// the head limit; the response to a head is a well-formed HTTP/1.1 response.
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzedInput(inputBytes(data, count))
    var limits = HTTPRequestLimits()
    if input.bool() {
        limits = HTTPRequestLimits(maximumHeadBytes: input.number(in: 1...512), maximumLineBytes: input.number(in: 1...256),
                                   maximumHeaderCount: input.number(in: 0...8))
    }
    let sizes = input.take(Int(input.byte() % 8))
    let stream = input.rest()

    var whole = HTTPRequestParser(limits: limits)
    let (state, consumed) = whole.consume(stream)
    if state != whole.state { fuzzFailure("returned state differs from the parser's state") }
    let (byteState, byteConsumed) = parseInChunks(stream, sizes: [1], limits: limits)
    let (chunkState, chunkConsumed) = parseInChunks(stream, sizes: sizes, limits: limits)
    if byteState != state || byteConsumed != consumed {
        fuzzFailure("byte by byte: \(byteState) after \(byteConsumed), at once: \(state) after \(consumed)")
    }
    if chunkState != state || chunkConsumed != consumed {
        fuzzFailure("in chunks \(sizes): \(chunkState) after \(chunkConsumed), at once: \(state) after \(consumed)")
    }
    if whole.consume(stream).consumed != 0 && state != .incomplete { fuzzFailure("a finished parser consumed more") }

    switch state {
    case .incomplete:
        if consumed != stream.count || consumed > limits.maximumHeadBytes { fuzzFailure("incomplete after \(consumed) of \(stream.count) bytes") }
    case .failed:
        if consumed > limits.maximumHeadBytes + 1 { fuzzFailure("failed only after \(consumed) bytes") }
    case .complete(let head):
        if whole.headByteCount != consumed { fuzzFailure("headByteCount \(whole.headByteCount) != consumed \(consumed)") }
        if stream[consumed - 1] != 10 { fuzzFailure("a head ends with a line feed") }
        checkHead(head, limits: limits, headBytes: consumed)
        var prefix = HTTPRequestParser(limits: limits)
        if prefix.consume(stream[..<consumed]).state != state { fuzzFailure("the consumed prefix alone parses differently") }
        var canonical = HTTPRequestParser(limits: HTTPRequestLimits(maximumHeadBytes: 1 << 20, maximumLineBytes: 1 << 20, maximumHeaderCount: 1 << 10))
        let rendered = render(head)
        if canonical.consume(rendered).state != state { fuzzFailure("canonical rendering \(hex(rendered)) parses differently") }
        let response = MetricsHTTPResponse.answer(head, registry: registry).serialized
        if !response.starts(with: "HTTP/1.1 ".utf8) { fuzzFailure("response does not start with a status line") }
    }
    return 0
}

/// A registry with one listening pipe, so `/metrics` and `/healthz` render real text.
private let registry: MetricsRegistry = {
    let registry = MetricsRegistry(version: "fuzz")
    let pipe = registry.metrics(forPipe: "p", mode: .encrypt)
    pipe.setListening(true)
    pipe.connectionOpened()
    return registry
}()

/// The executable's entry point (SwiftPM links `http_request_main` as `main`).
@_cdecl("http_request_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
