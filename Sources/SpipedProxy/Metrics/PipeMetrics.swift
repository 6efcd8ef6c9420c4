import Synchronization

/// Why a handshake failed, as the `reason` label of `spiped_handshake_failures_total`.
public enum HandshakeFailureReason: Int, CaseIterable, Sendable {
    /// The peer's MAC did not verify: a different key, or the peer does not speak spiped.
    case authentication
    /// `-g`: the peer asked for a handshake without forward secrecy (`-f`).
    case forwardSecrecyRequired
    /// The peer closed the connection (or reset it) before the handshake finished; on an
    /// encrypt pipe this is how a server with a different key refuses.
    case peerClosed
    /// The handshake did not finish within `-o` seconds.
    case timeout
    /// Anything else (a socket error, out of resources).
    case other

    /// The label value: `authentication`, `forward_secrecy_required`, `peer_closed`,
    /// `timeout`, `other`.
    public var label: String {
        switch self {
        case .authentication: return "authentication"
        case .forwardSecrecyRequired: return "forward_secrecy_required"
        case .peerClosed: return "peer_closed"
        case .timeout: return "timeout"
        case .other: return "other"
        }
    }
}

/// Which way payload bytes went through a pipe, as the `direction` label of
/// `spiped_bytes_total`. Named after the pipe's own ends, so the same label means the same
/// thing on encrypt and decrypt pipes.
public enum ByteDirection: Int, CaseIterable, Sendable {
    /// From the client that connected to the source (`-s`) towards the target (`-t`).
    case sourceToTarget
    /// From the target back to the client.
    case targetToSource

    /// The label value: `source_to_target` or `target_to_source`.
    public var label: String {
        switch self {
        case .sourceToTarget: return "source_to_target"
        case .targetToSource: return "target_to_source"
        }
    }
}

/// Why a connection ended, as the `cause` label of `spiped_connections_closed_total`.
public enum ConnectionEndCause: Int, CaseIterable, Sendable {
    /// Both sides finished normally (each half closed by its writer).
    case closed
    /// The connect to the target failed (refused, unreachable, or timed out).
    case targetConnectFailed
    /// The handshake failed (see `spiped_handshake_failures_total` for why).
    case handshakeFailed
    /// The `-o` timeout expired before the connection was set up.
    case timeout
    /// A peer reset the connection after set-up.
    case reset
    /// An encrypted stream was damaged or cut inside a packet (failed MAC, truncation).
    case protocolError
    /// The proxy was stopping and closed the connection (drain deadline).
    case shutdown
    /// Anything else.
    case other

    /// The label value: `closed`, `target_connect_failed`, `handshake_failed`, `timeout`,
    /// `reset`, `protocol_error`, `shutdown`, `other`.
    public var label: String {
        switch self {
        case .closed: return "closed"
        case .targetConnectFailed: return "target_connect_failed"
        case .handshakeFailed: return "handshake_failed"
        case .timeout: return "timeout"
        case .reset: return "reset"
        case .protocolError: return "protocol_error"
        case .shutdown: return "shutdown"
        case .other: return "other"
        }
    }
}

/// The counters of one pipe. Event-loop threads update them with relaxed atomic operations
/// (no lock, no allocation); the metrics thread reads them the same way. Counters only grow;
/// values read together are each exact but not one consistent snapshot.
public final class PipeMetrics: Sendable {
    /// Upper bounds of the handshake-duration histogram's buckets, in nanoseconds
    /// (1 ms ... 5 s); a last, unbounded bucket (`+Inf`) follows.
    public static let handshakeBucketBoundsNanoseconds: [UInt64] = [
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
        100_000_000, 250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000,
    ]
    /// The bucket bounds as Prometheus `le` label values, in seconds.
    public static let handshakeBucketLabels = [
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
    ]

    private let open = Atomic<Int>(0)
    private let opened = Atomic<UInt64>(0)
    private let listening = Atomic<Bool>(false)
    private let targetConnectFailures = Atomic<UInt64>(0)
    private let handshakeFailures: InlineArray<5, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    private let ended: InlineArray<8, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    private let bytes: InlineArray<2, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    /// Observations per bucket, not cumulative (one increment per handshake); the last is `+Inf`.
    private let handshakeBuckets: InlineArray<13, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    private let handshakeNanoseconds = Atomic<UInt64>(0)
    private let poolSize = Atomic<Int>(0)
    private let poolHits = Atomic<UInt64>(0)
    private let poolMisses = Atomic<UInt64>(0)
    private let poolDiscarded = Atomic<UInt64>(0)

    /// Counters at zero, not listening.
    public init() {}

    // MARK: Updates (event-loop threads)

    /// A connection was accepted: open +1, total +1.
    public func connectionOpened() {
        open.wrappingAdd(1, ordering: .relaxed)
        opened.wrappingAdd(1, ordering: .relaxed)
    }

    /// A connection ended (once per `connectionOpened`): open -1, and counted under `cause`.
    public func connectionClosed(_ cause: ConnectionEndCause = .closed) {
        open.wrappingSubtract(1, ordering: .relaxed)
        ended[cause.rawValue].wrappingAdd(1, ordering: .relaxed)
    }

    /// A handshake failed for `reason`.
    public func handshakeFailed(_ reason: HandshakeFailureReason) {
        handshakeFailures[reason.rawValue].wrappingAdd(1, ordering: .relaxed)
    }

    /// A handshake finished after `durationNanoseconds` (recorded in the histogram).
    public func handshakeSucceeded(durationNanoseconds: UInt64) {
        handshakeBuckets[PipeMetrics.bucketIndex(nanoseconds: durationNanoseconds)].wrappingAdd(1, ordering: .relaxed)
        handshakeNanoseconds.wrappingAdd(durationNanoseconds, ordering: .relaxed)
    }

    /// Connecting to the target failed (refused, unreachable, timed out).
    public func targetConnectFailed() {
        targetConnectFailures.wrappingAdd(1, ordering: .relaxed)
    }

    /// `count` payload bytes were forwarded in `direction`.
    public func addBytes(_ count: Int, direction: ByteDirection) {
        bytes[direction.rawValue].wrappingAdd(UInt64(truncatingIfNeeded: max(0, count)), ordering: .relaxed)
    }

    /// Whether the pipe's listening socket is open (for `/healthz` and `spiped_pipe_listening`).
    public func setListening(_ isListening: Bool) {
        listening.store(isListening, ordering: .relaxed)
    }

    /// Encrypt pipes with `--pool`: the pool now holds `size` ready connections.
    public func setPoolSize(_ size: Int) {
        poolSize.store(size, ordering: .relaxed)
    }

    /// Encrypt pipes with `--pool`: an accepted connection took a pooled connection.
    public func poolHit() {
        poolHits.wrappingAdd(1, ordering: .relaxed)
    }

    /// Encrypt pipes with `--pool`: an accepted connection found the pool empty.
    public func poolMissed() {
        poolMisses.wrappingAdd(1, ordering: .relaxed)
    }

    /// Encrypt pipes with `--pool`: a pooled connection was closed unused (too old, or its
    /// server closed it).
    public func poolConnectionDiscarded() {
        poolDiscarded.wrappingAdd(1, ordering: .relaxed)
    }

    // MARK: Reads (metrics thread)

    /// Connections open now.
    public var connectionsOpen: Int { open.load(ordering: .relaxed) }
    /// Connections accepted since start.
    public var connectionsTotal: UInt64 { opened.load(ordering: .relaxed) }
    /// Whether the listening socket is open.
    public var isListening: Bool { listening.load(ordering: .relaxed) }
    /// Failed target connects since start.
    public var targetConnectFailureCount: UInt64 { targetConnectFailures.load(ordering: .relaxed) }
    /// Handshakes failed for `reason` since start.
    public func handshakeFailureCount(_ reason: HandshakeFailureReason) -> UInt64 {
        handshakeFailures[reason.rawValue].load(ordering: .relaxed)
    }
    /// Connections ended for `cause` since start.
    public func connectionsClosedCount(_ cause: ConnectionEndCause) -> UInt64 {
        ended[cause.rawValue].load(ordering: .relaxed)
    }
    /// Payload bytes forwarded in `direction` since start.
    public func byteCount(_ direction: ByteDirection) -> UInt64 {
        bytes[direction.rawValue].load(ordering: .relaxed)
    }
    /// Ready connections in the pool now.
    public var poolConnections: Int { poolSize.load(ordering: .relaxed) }
    /// Pool hits since start.
    public var poolHitCount: UInt64 { poolHits.load(ordering: .relaxed) }
    /// Pool misses since start.
    public var poolMissCount: UInt64 { poolMisses.load(ordering: .relaxed) }
    /// Pooled connections discarded since start.
    public var poolDiscardedCount: UInt64 { poolDiscarded.load(ordering: .relaxed) }

    /// The handshake-duration histogram now: cumulative counts per bucket of
    /// `handshakeBucketLabels` (the last, `+Inf`, equals `count`), and the sum in nanoseconds.
    public var handshakeDurations: (cumulativeCounts: [UInt64], count: UInt64, sumNanoseconds: UInt64) {
        var cumulative: [UInt64] = []
        cumulative.reserveCapacity(handshakeBuckets.count)
        var running: UInt64 = 0
        for index in handshakeBuckets.indices {
            running &+= handshakeBuckets[index].load(ordering: .relaxed)
            cumulative.append(running)
        }
        return (cumulative, running, handshakeNanoseconds.load(ordering: .relaxed))
    }

    /// The bucket of a duration: the first whose bound is ≥ it (Prometheus's `le`), else `+Inf`.
    static func bucketIndex(nanoseconds: UInt64) -> Int {
        let bounds = handshakeBucketBoundsNanoseconds
        for index in bounds.indices where nanoseconds <= bounds[index] { return index }
        return bounds.count
    }
}
