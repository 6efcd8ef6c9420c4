import SpipedProtocol
import SpipedSystem

/// Bytes that could not be written yet to one socket. Allocated only when a write falls
/// short and freed as soon as it drains, so an idle connection holds no buffer at all.
struct PendingOutput {
    private var bytes: [UInt8]
    private var start = 0

    init(_ remainder: UnsafeRawBufferPointer) { bytes = Array(remainder) }

    /// The bytes still to write.
    func withUnwritten<Value>(_ body: (UnsafeRawBufferPointer) -> Value) -> Value {
        bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start...])) }
    }

    mutating func append(_ more: UnsafeRawBufferPointer) { bytes.append(contentsOf: more) }

    /// Marks `count` bytes written; true when nothing is left.
    mutating func consume(_ count: Int) -> Bool {
        start += count
        return start == bytes.count
    }
}

/// One proxied connection pair, owned by one event loop.
///
/// The two sockets are named by what they carry: `plaintext` (the application side) and
/// `encrypted` (the spiped side). With `-e` the accepted socket is plaintext and the target
/// socket encrypted; with `-d` the reverse.
final class Connection {
    /// Where the pair is in its life. Setup phases are bounded by one deadline (`-o`).
    enum Phase {
        /// Connecting to the target (`-e`: before the handshake; `-d`: after it).
        case connectingTarget
        /// Running the spiped handshake on the encrypted socket.
        case handshaking
        /// (Encrypt pipes with `--pool`) connected and handshaken ahead of time, waiting for a
        /// client; data the server sends meanwhile stays in the socket until a client takes it.
        case pooled
        /// Moving data both ways.
        case piping
        /// Closed; the slot is free.
        case closed
    }

    /// Index in the loop's connection table.
    let slot: Int
    /// Distinguishes this connection from earlier ones in the same slot (stale epoll events);
    /// 31 bits (see `EventLoop.generationMask`).
    let generation: UInt32
    /// The pipe it was accepted on (nil for `spipe`'s connection).
    let pipe: Pipe?
    /// The pipe's settings when it was accepted: this connection keeps them for its whole life.
    let settings: PipeSettings
    /// The accepting peer, for log messages (set when a client takes a pooled connection).
    var peerDescription: String
    /// When it was accepted (monotonic nanoseconds).
    let acceptedAt: UInt64
    /// When the setup phases must be over (monotonic nanoseconds).
    let deadline: UInt64

    var phase: Phase
    var plaintext: FileDescriptor?
    var encrypted: FileDescriptor?

    // Readiness remembered from edge-triggered epoll events; cleared on EAGAIN or a short read.
    var plaintextReadable = false
    var plaintextWritable = false
    var encryptedReadable = false
    var encryptedWritable = false
    // The peer's FIN (or an error) was reported (EPOLLRDHUP/HUP/ERR): no further edge will
    // come, so a short read no longer proves the socket drained; read on until 0 or EAGAIN.
    var plaintextPeerClosed = false
    var encryptedPeerClosed = false

    var handshake: Handshake?
    /// Handshake bytes read so far (the handshake reads exactly `handshakeInputByteCount`).
    var handshakeBytesReceived = 0
    var sealer: PacketSealer?
    var opener: PacketOpener?

    /// Sealed packets waiting for the encrypted socket; while set, plaintext is not read.
    var pendingToEncrypted: PendingOutput?
    /// Opened plaintext waiting for the plaintext socket; while set, ciphertext is not read.
    var pendingToPlaintext: PendingOutput?
    /// End of file was read on the plaintext socket and forwarded as `shutdown(SHUT_WR)`.
    var plaintextInputEnded = false
    /// End of file was read on the encrypted socket and forwarded as `shutdown(SHUT_WR)`.
    var encryptedInputEnded = false

    /// The target: the only one of an encrypt pipe, or (decrypt) the one routed to by the key
    /// the client authenticated with; nil until known.
    var targetBook: TargetAddressBook?
    /// Target addresses being tried, and the next one to try.
    var targetAddresses: [SocketAddress] = []
    var nextTargetAddress = 0
    var lastConnectError: SystemError?

    /// The encrypted stream ended in the middle of a packet: once the verified packets before
    /// it are delivered, the plaintext side is reset (not closed with a FIN), so the receiver
    /// cannot take the cut stream for a complete one.
    var encryptedInputTruncated = false

    /// When the handshake started (monotonic nanoseconds), for its duration metric.
    var handshakeStartedAt: UInt64 = 0
    /// Payload bytes from the client at the source towards the target, and back.
    var bytesSourceToTarget = 0
    var bytesTargetToSource = 0

    /// Made ahead of time for the pipe's pool (`--pool`) and not yet taken by a client: it holds
    /// no `-n` reservation, and its end is the pool's business.
    var isPoolMember = false
    /// When it became ready in the pool (monotonic nanoseconds), for `--pool-max-age`.
    var pooledAt: UInt64 = 0

    /// Already in the loop's list of connections to revisit (more input was left unread).
    var isQueuedForAnotherTurn = false

    /// True while a decrypt connection's peer has not proved it holds a key (the handshake
    /// has not verified its MAC): such connections may be evicted at the connection limit.
    var isUnauthenticated: Bool {
        settings.mode == .decrypt && phase == .handshaking && !(handshake?.isComplete ?? false)
    }

    init(slot: Int, generation: UInt32, pipe: Pipe?, settings: PipeSettings, peerDescription: String,
         acceptedAt: UInt64, phase: Phase) {
        self.slot = slot
        self.generation = generation
        self.pipe = pipe
        self.settings = settings
        self.peerDescription = peerDescription
        self.acceptedAt = acceptedAt
        deadline = acceptedAt &+ settings.timeoutNanoseconds
        self.phase = phase
    }
}

/// How a connection ended, when it did not end normally.
enum ConnectionEnd: Error {
    /// The peer reset or vanished (ECONNRESET, ENOTCONN, EPIPE): an ordinary close, not logged.
    case reset
    /// A real failure, logged as a warning with the peer's address.
    case failed(ProxyError)
    /// Dropped unauthenticated at the connection limit to admit a newer connection.
    case evicted
}
