// Fuzz target: the command-line address parser (`-s`, `-t`) on arbitrary text.
import FuzzSupport
import Glibc
import SpipedSystem

/// The text form of a parsed address, written here from the documented syntax (not the
/// parser's own rendering): `/path`, `host:port`, `[v4]:port`, `[v6]:port`.
private func render(_ address: AddressSpec) -> String {
    switch address {
    case .unix(let path): return path
    case .hostName(let host, let port): return "\(host):\(port)"
    case .ipv4(let literal, let port), .ipv6(let literal, let port): return "[\(literal)]:\(port)"
    }
}

/// True when inet_pton accepts `text` for `family`.
private func isLiteral(_ text: String, family: Int32) -> Bool {
    var storage = in6_addr()
    return inet_pton(family, text, &storage) == 1
}

/// The input bytes, decoded as UTF-8 (invalid sequences become U+FFFD), are one address.
/// Checks: no crash or hang; a parsed address obeys its case's rules (absolute path; port
/// 1...65535; bracketed literals valid for inet_pton; no empty host); and parsing the
/// address's own text form gives the same address back.
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = inputBytes(data, count)
    // A command-line argument is a C string: it cannot contain NUL.
    guard !bytes.contains(0) else { return 0 }
    let text = String(decoding: bytes, as: UTF8.self)
    let address: AddressSpec
    do {
        address = try AddressSpec.parse(text)
    } catch {
        return 0
    }
    switch address {
    case .unix(let path):
        if !path.hasPrefix("/") || !text.hasPrefix("/") { fuzzFailure("unix address \(path) from \(text) is not absolute") }
    case .hostName(let host, let port):
        if host.isEmpty || port == 0 { fuzzFailure("host name address with empty host or port 0 from \(text)") }
        if text.hasPrefix("/") { fuzzFailure("a text starting with / parsed as a host name") }
    case .ipv4(let literal, let port):
        if !isLiteral(literal, family: AF_INET) || port == 0 { fuzzFailure("invalid IPv4 literal or port from \(text)") }
    case .ipv6(let literal, let port):
        if !isLiteral(literal, family: AF_INET6) || port == 0 { fuzzFailure("invalid IPv6 literal or port from \(text)") }
    }
    let again: AddressSpec
    do {
        again = try AddressSpec.parse(render(address))
    } catch {
        fuzzFailure("\(text) parsed as \(address), but its text form \(render(address)) is refused: \(error)")
    }
    if again != address { fuzzFailure("\(text) parsed as \(address), its text form \(render(address)) as \(again)") }
    return 0
}

/// The executable's entry point (SwiftPM links `address_parse_main` as `main`).
@_cdecl("address_parse_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
