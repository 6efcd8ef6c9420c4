import Glibc

/// A resolved socket address (`struct sockaddr_in`, `sockaddr_in6` or `sockaddr_un`), kept as
/// its raw bytes so it is a plain `Sendable` value.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// The `sockaddr` bytes, `socklen_t` long.
    public let bytes: [UInt8]

    /// Copies `length` bytes of a C `sockaddr`.
    public init(_ address: UnsafePointer<sockaddr>, length: socklen_t) {
        bytes = Array(UnsafeRawBufferPointer(start: address, count: Int(length)))
    }

    /// A Unix-domain address for `path`; `nil` when the path does not fit in `sun_path`.
    public init?(unixPath path: String) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !pathBytes.isEmpty, pathBytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        // Length up to and including the terminating NUL, as `SUN_LEN` computes it.
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + pathBytes.count + 1
        bytes = withUnsafeBytes(of: &address) { Array($0.prefix(length)) }
    }

    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`).
    public var family: Int32 {
        bytes.withUnsafeBytes { Int32($0.load(fromByteOffset: 0, as: sa_family_t.self)) }
    }

    /// True for `AF_INET` and `AF_INET6` (TCP sockets get TCP_NODELAY and keep-alive).
    public var isInternet: Bool { family == AF_INET || family == AF_INET6 }

    /// The path of a Unix-domain address.
    public var unixPath: String? {
        guard family == AF_UNIX else { return nil }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let pathBytes = bytes[offset...].prefix { $0 != 0 }
        return String(decoding: pathBytes, as: UTF8.self)
    }

    /// The port of an internet address.
    public var port: UInt16? {
        guard isInternet else { return nil }
        // sin_port and sin6_port sit at the same offset (2), in network byte order.
        return UInt16(bytes[2]) << 8 | UInt16(bytes[3])
    }

    /// Calls `body` with a `sockaddr` pointer and length, for `bind`/`connect`.
    public func withSockaddr<Value>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> Value) throws(SystemError) -> Value {
        var storage = sockaddr_storage()
        let length = socklen_t(bytes.count)
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        return try withUnsafePointer(to: &storage) { pointer throws(SystemError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(SystemError) in
                try body(address, length)
            }
        }
    }

    /// `1.2.3.4:80`, `[::1]:80` or the Unix path.
    public var description: String {
        switch family {
        case AF_UNIX:
            return unixPath ?? "(unix)"
        case AF_INET, AF_INET6:
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            let isV6 = family == AF_INET6
            // The address starts at sin_addr (offset 4) or sin6_addr (offset 8).
            let offset = isV6 ? 8 : 4
            bytes.withUnsafeBytes { raw in
                _ = inet_ntop(family, raw.baseAddress! + offset, &text, socklen_t(text.count))
            }
            let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return isV6 ? "[\(host)]:\(port ?? 0)" : "\(host):\(port ?? 0)"
        default:
            return "(address family \(family))"
        }
    }
}
