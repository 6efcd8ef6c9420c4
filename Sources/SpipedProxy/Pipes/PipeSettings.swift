import SpipedCrypto
import SpipedProtocol
import SpipedSystem

/// An immutable snapshot of one pipe's settings: keys, targets, limits. Each connection takes
/// the snapshot current when it is accepted and keeps it for its whole life, so a reload (which
/// swaps in a new snapshot) changes new connections only and never touches open ones.
final class PipeSettings: Sendable {
    /// The pipe's name, for logs.
    let name: String
    let mode: ProxyConfiguration.Mode
    /// The keys accepted (decrypt) or used (encrypt, one), in configuration order.
    let keys: [SpipedKey]
    /// The target of each key: `targets[i]` serves holders of `keys[i]` (books are shared
    /// between keys with the same target).
    let targets: [TargetAddressBook]
    let handshake: HandshakeOptions
    /// `-n` (0 = no limit).
    let maxConnections: Int
    /// `-o` in nanoseconds.
    let timeoutNanoseconds: UInt64
    let keepAlive: Bool
    /// `-b`, resolved.
    let bindAddresses: [SocketAddress]
    let backend: CryptoBackend
    /// `--pool`: pooled connections this pipe keeps ready (spread over the loops).
    let poolSize: Int
    /// `--pool-max-age` in nanoseconds.
    let poolMaxAgeNanoseconds: UInt64
    /// The pipe's counters (kept across reloads by name), if metrics are on.
    let metrics: PipeMetrics?
    /// Distinct target books with their `-r` interval (for the re-resolution thread).
    let refreshedTargets: [(book: TargetAddressBook, intervalSeconds: Double)]

    /// At the connection limit a decrypt pipe drops its oldest connection that has not
    /// authenticated yet to admit a new one (see `EventLoop.evictUnauthenticated`).
    var evictsUnauthenticatedAtLimit: Bool { mode == .decrypt && maxConnections > 0 }

    /// Resolves the targets and bind address of `configuration` (a target that does not
    /// resolve yet is allowed with `waitForDNS`; its book starts empty). Books of `previous`
    /// settings are reused for unchanged targets, so their resolved addresses carry over.
    init(_ configuration: PipeConfiguration, backend: CryptoBackend, log: ProxyLog, metrics registry: MetricsRegistry? = nil,
         reusing previous: PipeSettings? = nil) throws(ProxyError) {
        try configuration.validate()
        metrics = registry?.metrics(forPipe: configuration.name, mode: configuration.mode)
        poolSize = configuration.poolSize
        poolMaxAgeNanoseconds = UInt64(min(configuration.poolMaxAgeSeconds, 1e9) * 1_000_000_000)
        name = configuration.name
        mode = configuration.mode
        keys = configuration.routes.map(\.key)
        handshake = configuration.handshake
        maxConnections = configuration.maxConnections
        timeoutNanoseconds = UInt64(min(configuration.timeoutSeconds, 1e9) * 1_000_000_000)
        keepAlive = configuration.keepAlive
        self.backend = backend
        if let bind = configuration.bindAddress {
            do {
                bindAddresses = try AddressResolver.resolve(bind, passive: true)
            } catch {
                throw .addressResolutionFailed(error)
            }
        } else {
            bindAddresses = []
        }
        var books: [String: TargetAddressBook] = [:]
        var targets: [TargetAddressBook] = []
        var refreshed: [(book: TargetAddressBook, intervalSeconds: Double)] = []
        let pipeName = configuration.name
        for route in configuration.routes {
            let text = route.target.displayText
            if let book = books[text] {
                targets.append(book)
                continue
            }
            let book: TargetAddressBook
            if let reused = previous?.targets.first(where: { $0.target == route.target }) {
                book = reused
                book.refresh(logFailure: false)
            } else {
                var initial: [SocketAddress] = []
                do {
                    initial = try AddressResolver.resolve(route.target)
                } catch {
                    if !configuration.waitForDNS { throw .addressResolutionFailed(error) }
                }
                do {
                    book = try TargetAddressBook(target: route.target, initial: initial) { level, message in
                        log.log(level, "\(pipeName): \(message)")
                    }
                } catch {
                    throw .system(error)
                }
            }
            books[text] = book
            targets.append(book)
            if let interval = configuration.resolveIntervalSeconds, AddressResolver.needsPeriodicResolution(route.target) {
                refreshed.append((book, min(interval, 1e9)))
            }
        }
        self.targets = targets
        refreshedTargets = refreshed
    }

    /// Settings for `spipe`'s one connection (no listener, no re-resolution).
    init(spipeTarget book: TargetAddressBook, key: SpipedKey, handshake: HandshakeOptions, backend: CryptoBackend,
         keepAlive: Bool, timeoutSeconds: Double, bindAddresses: [SocketAddress]) {
        name = "spipe"
        mode = .encrypt
        keys = [key]
        targets = [book]
        self.handshake = handshake
        maxConnections = 0
        timeoutNanoseconds = UInt64(min(timeoutSeconds, 1e9) * 1_000_000_000)
        self.keepAlive = keepAlive
        self.bindAddresses = bindAddresses
        self.backend = backend
        refreshedTargets = []
        metrics = nil
        poolSize = 0
        poolMaxAgeNanoseconds = 0
    }

    /// A one-line description for the start-up and reload logs.
    var summary: String {
        let direction = mode == .encrypt ? "encrypt" : "decrypt"
        let targetText = Array(Set(targets.map { $0.target.displayText })).sorted().joined(separator: ", ")
        var parts = ["\(direction) -> \(targetText)"]
        if keys.count > 1 { parts.append("\(keys.count) keys") }
        parts.append("max-connections \(maxConnections == 0 ? "unlimited" : String(maxConnections))")
        parts.append("timeout \(Double(timeoutNanoseconds) / 1e9) s")
        if handshake.fast { parts.append("fast") }
        if handshake.requireForwardSecrecy { parts.append("require-forward-secrecy") }
        if poolSize > 0 { parts.append("pool \(poolSize) (max age \(Double(poolMaxAgeNanoseconds) / 1e9) s)") }
        return parts.joined(separator: ", ")
    }
}
