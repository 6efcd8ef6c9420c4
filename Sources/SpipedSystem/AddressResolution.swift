import Glibc

/// A name lookup that failed: the address as written and `gai_strerror`'s text.
public struct AddressResolutionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The address that was looked up, as the user wrote it.
    public let address: String
    /// Why it failed (`gai_strerror`, or "no addresses").
    public let reason: String
    /// The `getaddrinfo` return code (`EAI_*`), 0 when it succeeded with nothing usable.
    public let code: Int32

    /// `"cannot resolve host.example:80: Name or service not known"`.
    public var description: String { "cannot resolve \(address): \(reason)" }
}

/// Turns an `AddressSpec` into socket addresses with `getaddrinfo(3)`.
public enum AddressResolver {
    /// Resolves `spec` to stream-socket addresses, in `getaddrinfo`'s order (duplicates removed).
    /// Unix paths need no lookup. `passive` asks for addresses to bind (`AI_PASSIVE`).
    public static func resolve(_ spec: AddressSpec, passive: Bool = false) throws(AddressResolutionError) -> [SocketAddress] {
        switch spec {
        case .unix(let path):
            guard let address = SocketAddress(unixPath: path) else {
                throw AddressResolutionError(address: path, reason: "socket path too long", code: 0)
            }
            return [address]
        case .hostName(let host, let port):
            return try lookUp(host: host, port: port, flags: passive ? AI_PASSIVE : 0, family: AF_UNSPEC, written: "\(host):\(port)")
        case .ipv4(let literal, let port):
            return try lookUp(host: literal, port: port, flags: AI_NUMERICHOST | (passive ? AI_PASSIVE : 0), family: AF_INET, written: "[\(literal)]:\(port)")
        case .ipv6(let literal, let port):
            return try lookUp(host: literal, port: port, flags: AI_NUMERICHOST | (passive ? AI_PASSIVE : 0), family: AF_INET6, written: "[\(literal)]:\(port)")
        }
    }

    /// True when `spec` names a host that can resolve differently over time (worth re-resolving).
    public static func needsPeriodicResolution(_ spec: AddressSpec) -> Bool {
        if case .hostName = spec { return true }
        return false
    }

    private static func lookUp(host: String, port: UInt16, flags: Int32, family: Int32, written: String) throws(AddressResolutionError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = flags | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, String(port), &hints, &list)
        guard code == 0 else {
            let reason = code == EAI_SYSTEM ? Errno.current.description : String(cString: gai_strerror(code))
            throw AddressResolutionError(address: written, reason: reason, code: code)
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry = list
        while let current = entry {
            if let address = current.pointee.ai_addr {
                let resolved = SocketAddress(address, length: current.pointee.ai_addrlen)
                if !addresses.contains(resolved) { addresses.append(resolved) }
            }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else {
            throw AddressResolutionError(address: written, reason: "no addresses", code: 0)
        }
        return addresses
    }
}
