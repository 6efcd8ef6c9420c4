// TEMPORARY API SURFACE — the command-line helper implements `parse`. Nothing here is done.

/// A socket address as written on spiped's command line, before any name resolution.
public enum AddressSpec: Equatable, Sendable {
    /// `/absolute/path`: a Unix-domain stream socket.
    case unix(path: String)
    /// `host.name:port`: resolved with getaddrinfo (A and AAAA).
    case hostName(String, port: UInt16)
    /// `[v4.ad.dr]:port`.
    case ipv4(String, port: UInt16)
    /// `[v6::addr]:port`.
    case ipv6(String, port: UInt16)

    /// Parses the command-line form; throws a typed error naming what is wrong.
    public static func parse(_ text: String) throws(AddressSpecError) -> AddressSpec { fatalError("stub") }
}

/// Why an address could not be parsed.
public enum AddressSpecError: Error, Equatable, Sendable {
    /// No `:port` after the host.
    case missingPort(String)
    /// Port not a number in 1...65535 (0 too is refused? decided by implementer).
    case invalidPort(String)
    /// Bracketed literal is not a valid IPv4/IPv6 address.
    case invalidAddressLiteral(String)
    /// A path that is not absolute, or empty text.
    case malformed(String)
}
