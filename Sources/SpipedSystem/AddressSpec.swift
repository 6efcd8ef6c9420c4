// Socket addresses as written on spiped's command line (`-s`, `-t`, `-b`), parsed without any
// name resolution. Host names are kept as text for getaddrinfo; literals are checked with
// inet_pton so a typo is refused at start-up rather than at the first connection.
import Glibc

/// A socket address as written on spiped's command line, before any name resolution.
public enum AddressSpec: Equatable, Sendable, CustomStringConvertible {
    /// `/absolute/path`: a Unix-domain stream socket.
    case unix(path: String)
    /// `host.name:port`: resolved with getaddrinfo (A and AAAA).
    case hostName(String, port: UInt16)
    /// `[v4.ad.dr]:port`.
    case ipv4(String, port: UInt16)
    /// `[v6::addr]:port`.
    case ipv6(String, port: UInt16)

    /// Longest Unix socket path that fits `sockaddr_un.sun_path` with its terminating NUL.
    public static let maximumUnixPathByteCount = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Parses the command-line form of `-s` and `-t`; throws a typed error naming what is wrong.
    ///
    /// The forms are those of spiped 1.6: a text starting with `/` is a Unix socket path;
    /// otherwise the text is split at its *last* colon into host and port. A host in square
    /// brackets must be an IPv4 or IPv6 literal (checked with `inet_pton`) and its port a
    /// decimal number in 1...65535. Any other host is a name for getaddrinfo (which also takes
    /// unbracketed literals, as in `127.0.0.1:80` or `::1:80`); its port may be a decimal
    /// number in 1...65535 or a TCP service name from the services database (`http`).
    public static func parse(_ text: String) throws(AddressSpecError) -> AddressSpec {
        try parse(text, allowPortZero: false)
    }

    /// Parses the argument of `-b` (bind address of outgoing connections).
    ///
    /// Accepts everything `parse` accepts, plus port 0 and the port-less forms spiped 1.6.3+
    /// accepts, which all mean "let the kernel choose the port": `1.2.3.4`, `host.name`,
    /// `[1.2.3.4]`, `[::1]` and a bare IPv6 literal such as `::1` or `fe80::2`.
    public static func parseBindAddress(_ text: String) throws(AddressSpecError) -> AddressSpec {
        if text.hasPrefix("/") { return try parse(text, allowPortZero: true) }
        // `[literal]` with nothing after the bracket.
        if text.hasPrefix("["), text.hasSuffix("]"), text.count >= 2 {
            return try bracketedLiteral(String(text.dropFirst().dropLast()), port: 0)
        }
        let colonCount = text.count(where: { $0 == ":" })
        // No colon at all: a host name or IPv4 literal without a port.
        if colonCount == 0 {
            if text.isEmpty { throw .malformed(text) }
            // `[1.2.3.4` (no closing bracket) is a broken literal, not a host name.
            if text.hasPrefix("[") { throw .invalidAddressLiteral(text) }
            return isIPv4Literal(text) ? .ipv4(text, port: 0) : .hostName(text, port: 0)
        }
        // Several colons and no brackets: a bare IPv6 literal without a port (if it is one).
        if colonCount > 1, !text.hasPrefix("["), isIPv6Literal(text) {
            return .ipv6(text, port: 0)
        }
        return try parse(text, allowPortZero: true)
    }

    /// The text form of the address as spiped prints and accepts it (`[::1]:8025`).
    public var description: String {
        switch self {
        case .unix(let path): return path
        case .hostName(let host, let port): return "\(host):\(port)"
        case .ipv4(let address, let port): return "[\(address)]:\(port)"
        case .ipv6(let address, let port): return "[\(address)]:\(port)"
        }
    }

    // MARK: - Parsing helpers

    /// The shared parser; `allowPortZero` is true only for bind addresses.
    private static func parse(_ text: String, allowPortZero: Bool) throws(AddressSpecError) -> AddressSpec {
        if text.isEmpty { throw .malformed(text) }
        if text.hasPrefix("/") {
            guard text.utf8.count <= maximumUnixPathByteCount, !text.utf8.contains(0) else {
                throw .malformed(text)
            }
            return .unix(path: text)
        }
        // Split at the last colon, like the reference: `::1:80` is host `::1`, port `80`.
        guard let colon = text.lastIndex(of: ":") else { throw .missingPort(text) }
        let host = String(text[..<colon])
        let portText = String(text[text.index(after: colon)...])
        if host.hasPrefix("[") {
            guard host.count >= 2, host.hasSuffix("]") else { throw .invalidAddressLiteral(host) }
            let port = try decimalPort(portText, allowZero: allowPortZero)
            return try bracketedLiteral(String(host.dropFirst().dropLast()), port: port)
        }
        guard !host.isEmpty, !host.utf8.contains(0) else { throw .malformed(text) }
        let port = try hostNamePort(portText, allowZero: allowPortZero)
        return .hostName(host, port: port)
    }

    /// Classifies the text inside `[...]` as an IPv4 or IPv6 literal (or refuses it).
    private static func bracketedLiteral(_ literal: String, port: UInt16) throws(AddressSpecError) -> AddressSpec {
        if isIPv4Literal(literal) { return .ipv4(literal, port: port) }
        if isIPv6Literal(literal) { return .ipv6(literal, port: port) }
        throw .invalidAddressLiteral(literal)
    }

    /// True when `inet_pton(AF_INET)` accepts the text (dotted quad, four parts).
    static func isIPv4Literal(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    /// True when `inet_pton(AF_INET6)` accepts the text (no zone index such as `%lo`).
    static func isIPv6Literal(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    /// A port after a bracketed literal: decimal only, like the reference (`0x50` and service
    /// names are refused); leading blanks and a `+` sign are tolerated as strtol does.
    private static func decimalPort(_ text: String, allowZero: Bool) throws(AddressSpecError) -> UInt16 {
        var digits = Substring(text).drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\u{0B}" || $0 == "\u{0C}" || $0 == "\r" })
        if digits.hasPrefix("+") { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw .invalidPort(text)
        }
        // Strip leading zeros so long runs of them do not overflow (`080` is port 80).
        let significant = digits.drop(while: { $0 == "0" })
        guard significant.count <= 5, let value = significant.isEmpty ? 0 : Int(significant),
              value <= Int(UInt16.max), allowZero || value != 0 else {
            throw .invalidPort(text)
        }
        return UInt16(value)
    }

    /// A port after a host name: a decimal number, or a TCP service name (`getservbyname`).
    private static func hostNamePort(_ text: String, allowZero: Bool) throws(AddressSpecError) -> UInt16 {
        if let first = text.utf8.first, first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") {
            return try decimalPort(text, allowZero: allowZero)
        }
        guard !text.isEmpty, !text.utf8.contains(0), let entry = getservbyname(text, "tcp") else {
            throw .invalidPort(text)
        }
        // `s_port` holds the port in network byte order in its low 16 bits.
        let port = UInt16(bigEndian: UInt16(truncatingIfNeeded: entry.pointee.s_port))
        guard allowZero || port != 0 else { throw .invalidPort(text) }
        return port
    }
}

/// Why an address could not be parsed.
public enum AddressSpecError: Error, Equatable, Sendable {
    /// No `:port` after the host.
    case missingPort(String)
    /// Port not a number in 1...65535 (0 is refused, as the reference does, except for `-b`),
    /// or an unknown service name.
    case invalidPort(String)
    /// Bracketed literal is not a valid IPv4/IPv6 address.
    case invalidAddressLiteral(String)
    /// Empty text, an empty host name, or a Unix path that is too long for `sun_path`.
    case malformed(String)

    /// A one-line explanation for error messages (`spiped: <message>`).
    public var message: String {
        switch self {
        case .missingPort(let text): return "Address must contain port number: \(text)"
        case .invalidPort(let text): return "Invalid port number: \(text)"
        case .invalidAddressLiteral(let text): return "Error parsing IP address: \(text)"
        case .malformed(let text):
            if text.hasPrefix("/") { return "Invalid Unix socket path (too long?): \(text)" }
            return "Invalid socket address: \"\(text)\""
        }
    }
}
