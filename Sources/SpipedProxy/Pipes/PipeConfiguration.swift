import SpipedCrypto
import SpipedProtocol
import SpipedSystem

/// One key a decrypt pipe accepts and where its holders are sent; an encrypt pipe has one.
public struct PipeRoute: Sendable {
    /// The shared key (already loaded).
    public var key: SpipedKey
    /// Where connections authenticated with `key` go.
    public var target: AddressSpec
    /// Where the key came from, for messages (a file path, or "-" for standard input).
    public var keyDescription: String

    /// A route from `key` to `target`.
    public init(key: SpipedKey, target: AddressSpec, keyDescription: String = "key") {
        self.key = key
        self.target = target
        self.keyDescription = keyDescription
    }
}

/// Everything one pipe needs: what one spiped command line describes (mode, source, target,
/// key, `-f`/`-g`, `-n`, `-o`, `-r`/`-R`, `-j`, `-b`), with several keys or routes possible
/// on a decrypt pipe. Field comments name the command-line option.
public struct PipeConfiguration: Sendable {
    /// The pipe's name in logs (and metrics): a configuration section, or the source as written.
    public var name: String
    /// `-e` or `-d`.
    public var mode: ProxyConfiguration.Mode
    /// `-s`: the address to accept connections on.
    public var source: AddressSpec
    /// `-k` and `-t`: the keys accepted and the target of each. An encrypt pipe has exactly
    /// one route; a decrypt pipe one or more (several keys for rotation, or routing by key).
    public var routes: [PipeRoute]
    /// `-f` / `-g`.
    public var handshake: HandshakeOptions
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
    /// `-D`: keep retrying name resolution of the target until it works instead of failing.
    public var waitForDNS: Bool
    /// `--pool` (encrypt pipes): connections to the target kept connected and handshaken
    /// ahead of time, each taken by one client and never reused (0: none).
    public var poolSize: Int
    /// `--pool-max-age`: seconds after which an unused pooled connection is replaced.
    public var poolMaxAgeSeconds: Double
    /// `--socket-mode`: permission bits of a Unix-socket source (nil: as the umask gives).
    public var socketMode: UInt32?
    /// `--socket-group`: group of a Unix-socket source (nil: the process's).
    public var socketGroup: UInt32?

    /// A pipe with spiped's defaults for everything not given.
    public init(name: String, mode: ProxyConfiguration.Mode, source: AddressSpec, routes: [PipeRoute],
                handshake: HandshakeOptions = HandshakeOptions()) {
        self.name = name
        self.mode = mode
        self.source = source
        self.routes = routes
        self.handshake = handshake
        maxConnections = 100
        timeoutSeconds = 5
        resolveIntervalSeconds = 60
        keepAlive = true
        bindAddress = nil
        waitForDNS = false
        socketMode = nil
        socketGroup = nil
        poolSize = 0
        poolMaxAgeSeconds = 8
    }

    /// Checks what the engine cannot work with.
    func validate() throws(ProxyError) {
        guard !routes.isEmpty else { throw .invalidConfiguration("pipe \(name) has no key") }
        if mode == .encrypt && routes.count != 1 { throw .invalidConfiguration("encrypt pipe \(name) needs exactly one key and target") }
        guard maxConnections >= 0 else { throw .invalidConfiguration("connection limit must not be negative") }
        guard timeoutSeconds > 0 else { throw .invalidConfiguration("timeout must be positive") }
        guard poolSize >= 0, poolSize == 0 || mode == .encrypt else { throw .invalidConfiguration("a pool is for encrypt pipes only") }
        guard poolMaxAgeSeconds > 0 else { throw .invalidConfiguration("the pool's maximum age must be positive") }
    }
}
