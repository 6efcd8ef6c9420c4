// BRANCH-LOCAL STUB of the proxy helper's agreed API, only so the cli branch's main.swift glue
// compiles before SpipedProxy lands. Deleted when the real types are merged. Nothing here works.
import SpipedCrypto
import SpipedProtocol
import SpipedSystem

public enum ProxyLogLevel: Sendable { case warning, error, info }
public enum ProxyError: Error, Sendable { case stub }
public struct ProxyConfiguration: Sendable {
    public enum Mode: Sendable { case encrypt, decrypt }
    public var mode: Mode; public var source: AddressSpec; public var target: AddressSpec
    public var key: SpipedKey; public var handshake: HandshakeOptions; public var backend: CryptoBackend
    public var maxConnections: Int = 100; public var timeoutSeconds: Double = 5
    public var resolveIntervalSeconds: Double? = 60
    public var keepAlive: Bool = true; public var bindAddress: AddressSpec? = nil; public var waitForDNS: Bool = false
    public var eventLoopCount: Int = 1; public var log: @Sendable (ProxyLogLevel, String) -> Void = { _, _ in }
    public init(mode: Mode, source: AddressSpec, target: AddressSpec, key: SpipedKey, handshake: HandshakeOptions, backend: CryptoBackend) {
        self.mode = mode; self.source = source; self.target = target; self.key = key; self.handshake = handshake; self.backend = backend
    }
}
public final class Proxy {
    public init(configuration: ProxyConfiguration) throws(ProxyError) { fatalError("stub") }
    public func run() throws(ProxyError) { fatalError("stub") }
}
public enum SpipeClient {
    public static func run(target: AddressSpec, key: SpipedKey, handshake: HandshakeOptions, backend: CryptoBackend,
                           keepAlive: Bool, timeoutSeconds: Double, bindAddress: AddressSpec?) throws(ProxyError) { fatalError("stub") }
}
