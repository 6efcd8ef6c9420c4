import SpipedCrypto
import SpipedProtocol
import SpipedSystem

/// How serious a message from the proxy is.
public enum ProxyLogLevel: Sendable {
    /// Details for debugging (backend choices, each connection's steps).
    case debug
    /// Routine information (each connection's end, at `--log-level info`).
    case info
    /// Life-cycle events: start-up, reload, shutdown. Shown unless only errors are wanted.
    case notice
    /// Something went wrong with one connection, or a limit was reached; the proxy continues.
    case warning
    /// Something went wrong with the proxy as a whole.
    case error
}

/// Everything `spiped` needs to run one proxy; field comments name the command-line option.
public struct ProxyConfiguration: Sendable {
    /// Which way the proxy transforms traffic.
    public enum Mode: Sendable {
        /// `-e`: plaintext in, encrypted out (the client role of the handshake).
        case encrypt
        /// `-d`: encrypted in, plaintext out (the server role of the handshake).
        case decrypt
    }

    /// `-e` or `-d`.
    public var mode: Mode
    /// `-s`: the address to accept connections on.
    public var source: AddressSpec
    /// `-t`: the address to connect each accepted connection to.
    public var target: AddressSpec
    /// `-k`: the shared key, already loaded.
    public var key: SpipedKey
    /// `-f` / `-g`.
    public var handshake: HandshakeOptions
    /// The crypto implementation (chosen by the caller).
    public var backend: CryptoBackend
    /// `-n`: most simultaneous connections; 0 = unlimited. Default 100.
    public var maxConnections: Int
    /// `-o`: seconds allowed for connecting to the target plus the handshake. Default 5.
    public var timeoutSeconds: Double
    /// `-r`: seconds between re-resolutions of a target host name (default 60); `nil` = `-R`.
    public var resolveIntervalSeconds: Double?
    /// SO_KEEPALIVE on every TCP socket, unless `-j`.
    public var keepAlive: Bool
    /// `-b`: local address of outgoing sockets.
    public var bindAddress: AddressSpec?
    /// `-D`: keep retrying name resolution until it works instead of failing.
    public var waitForDNS: Bool
    /// Event-loop threads; default: the CPUs this process may run on (its affinity mask).
    public var eventLoopCount: Int
    /// Where warnings and information go (default: standard error).
    public var log: @Sendable (ProxyLogLevel, String) -> Void

    /// A configuration with spiped's defaults for everything not given.
    public init(mode: Mode, source: AddressSpec, target: AddressSpec, key: SpipedKey,
                handshake: HandshakeOptions, backend: CryptoBackend) {
        self.mode = mode
        self.source = source
        self.target = target
        self.key = key
        self.handshake = handshake
        self.backend = backend
        maxConnections = 100
        timeoutSeconds = 5
        resolveIntervalSeconds = 60
        keepAlive = true
        bindAddress = nil
        waitForDNS = false
        eventLoopCount = SystemLimits.usableProcessorCount
        log = ProxyConfiguration.logToStandardError
    }

    /// The default log sink: one line per message on standard error.
    public static let logToStandardError: @Sendable (ProxyLogLevel, String) -> Void = { level, message in
        let prefix: String
        switch level {
        case .debug, .info, .notice: prefix = "spiped: "
        case .warning: prefix = "spiped: warning: "
        case .error: prefix = "spiped: error: "
        }
        let line = Array((prefix + message + "\n").utf8)
        line.withUnsafeBytes { try? FileDescriptor.standardError.writeAll($0) }
    }
}
