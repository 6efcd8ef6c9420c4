import SpipedSystem
import Synchronization

/// Limits of the metrics server: it faces whoever can reach its address.
public struct MetricsServerSettings: Sendable, Equatable {
    /// Most clients served at once; accepting one more closes the oldest.
    public var maximumClients: Int
    /// Milliseconds a client has to send its whole request head (from accept), and again to
    /// take the response.
    public var requestTimeoutMilliseconds: Int
    /// Bounds of a request head.
    public var requestLimits: HTTPRequestLimits

    /// 32 clients, 5 seconds, the parser's default limits.
    public init(maximumClients: Int = 32, requestTimeoutMilliseconds: Int = 5000, requestLimits: HTTPRequestLimits = HTTPRequestLimits()) {
        self.maximumClients = max(1, maximumClients)
        self.requestTimeoutMilliseconds = max(1, requestTimeoutMilliseconds)
        self.requestLimits = requestLimits
    }
}

/// A small HTTP/1.1 server for `GET /metrics` and `GET /healthz` (see
/// `MetricsHTTPResponse.answer`), on its own thread with its own epoll. It reads the counters'
/// atomics and the registry's pipe list, and nothing else of the proxy, so it never blocks or
/// slows an event loop. Each response closes its connection.
public final class MetricsServer: Sendable {
    /// The address it listens on (with the port the kernel chose for port 0).
    public let localAddress: SocketAddress
    private let loop: MetricsServerLoop
    private let thread: SystemThread
    private let stopped = Atomic<Bool>(false)

    /// Binds and listens on `address` (non-blocking, `SO_REUSEADDR`) and starts the server's
    /// thread. Errors (address in use, no permission) are thrown here, before anything runs.
    /// Which address to use is the caller's choice; loopback keeps the counters private.
    public init(address: SocketAddress, registry: MetricsRegistry, settings: MetricsServerSettings = MetricsServerSettings()) throws(SystemError) {
        let listener = try FileDescriptor.streamSocket(family: address.family)
        let loop: MetricsServerLoop
        do {
            if address.isInternet { try listener.setReuseAddress() }
            try listener.bind(to: address)
            try listener.listen(backlog: 64)
            localAddress = try listener.localAddress()
            loop = try MetricsServerLoop(listener: listener, registry: registry, settings: settings)
        } catch {
            listener.close()
            throw error
        }
        self.loop = loop
        do {
            thread = try SystemThread(name: "spiped-metrics") { loop.run() }
        } catch {
            listener.close()
            throw error
        }
    }

    /// Stops serving: closes the listener and every client, and joins the thread. Idempotent.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.stopNotifier.signal()
        thread.join()
    }

    deinit { stop() }
}

/// The metrics server's state, owned by its thread once `run` starts.
final class MetricsServerLoop: @unchecked Sendable {
    private enum Phase {
        /// Reading the request head.
        case reading
        /// Writing the response.
        case writing
        /// Response sent and our half shut down: discarding input until the client closes,
        /// so unread bytes do not turn our close into a reset that loses the response.
        case draining
    }

    private final class Client {
        let descriptor: FileDescriptor
        var parser: HTTPRequestParser
        var phase = Phase.reading
        var output: [UInt8] = []
        var written = 0
        var deadline: UInt64
        var discarded = 0

        init(descriptor: FileDescriptor, limits: HTTPRequestLimits, deadline: UInt64) {
            self.descriptor = descriptor
            parser = HTTPRequestParser(limits: limits)
            self.deadline = deadline
        }
    }

    private static let listenerToken: UInt64 = 0
    private static let stopToken: UInt64 = 1
    /// Bytes a draining client may still send before it is closed anyway.
    private static let drainLimit = 65536
    /// Longest wait for a client to close after its response.
    private static let drainNanoseconds: UInt64 = 1_000_000_000
    /// Pause before accepting again after running out of descriptors or memory.
    private static let acceptPauseNanoseconds: UInt64 = 100_000_000

    let stopNotifier: EventNotifier
    private let listener: FileDescriptor
    private let registry: MetricsRegistry
    private let settings: MetricsServerSettings
    private let epoll: Epoll
    private var clients: [UInt64: Client] = [:]
    /// Client tokens, oldest first.
    private var acceptOrder: [UInt64] = []
    private var nextToken: UInt64 = 2
    private var acceptPausedUntil: UInt64?
    private var readBuffer = [UInt8](repeating: 0, count: 4096)

    init(listener: FileDescriptor, registry: MetricsRegistry, settings: MetricsServerSettings) throws(SystemError) {
        self.listener = listener
        self.registry = registry
        self.settings = settings
        stopNotifier = try EventNotifier()
        epoll = try Epoll(maximumEvents: 64)
        try epoll.add(listener, events: .readable, token: MetricsServerLoop.listenerToken)
        try epoll.add(stopNotifier.descriptor, events: .readable, token: MetricsServerLoop.stopToken)
    }

    private var timeoutNanoseconds: UInt64 { UInt64(settings.requestTimeoutMilliseconds) * 1_000_000 }

    /// Serves until `stopNotifier` is signalled, then closes everything.
    func run() {
        SystemThread.lowerCallingThreadPriority()
        var stopping = false
        while !stopping {
            let now = MonotonicClock.nanoseconds
            var nearest = acceptPausedUntil
            for client in clients.values { nearest = min(nearest ?? client.deadline, client.deadline) }
            let wait: Int32 = nearest.map { deadline in
                deadline <= now ? 0 : Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            } ?? -1
            do {
                try epoll.wait(timeoutMilliseconds: wait) { event in
                    switch event.token {
                    case MetricsServerLoop.stopToken: stopping = true
                    case MetricsServerLoop.listenerToken: acceptClients()
                    default: serve(event.token)
                    }
                }
            } catch {
                break  // epoll itself failed (not EINTR): nothing sensible is left to do
            }
            expire(now: MonotonicClock.nanoseconds)
        }
        for token in acceptOrder { clients[token]?.descriptor.close() }
        clients = [:]
        acceptOrder = []
        listener.close()
    }

    private func acceptClients() {
        for _ in 0..<64 {
            switch listener.acceptResult() {
            case .success(let (descriptor, _)):
                if clients.count >= settings.maximumClients, let oldest = acceptOrder.first { close(oldest) }
                let token = nextToken
                nextToken += 1
                let client = Client(descriptor: descriptor, limits: settings.requestLimits,
                                    deadline: MonotonicClock.nanoseconds + timeoutNanoseconds)
                guard case .success = epoll.addResult(descriptor, events: .readable, token: token) else {
                    descriptor.close()
                    continue
                }
                clients[token] = client
                acceptOrder.append(token)
            case .failure(let errno) where errno == .wouldBlock:
                return
            case .failure(let errno) where errno == .tooManyOpenFiles || errno == .tooManyOpenFilesInSystem
                || errno == .noBufferSpace || errno == .outOfMemory:
                // The listener stays readable; stop watching it for a while instead of spinning.
                try? epoll.remove(listener)
                acceptPausedUntil = MonotonicClock.nanoseconds + MetricsServerLoop.acceptPauseNanoseconds
                return
            case .failure:
                continue  // this connection failed (aborted, network error); try the next
            }
        }
    }

    private func expire(now: UInt64) {
        if let until = acceptPausedUntil, until <= now {
            acceptPausedUntil = nil
            try? epoll.add(listener, events: .readable, token: MetricsServerLoop.listenerToken)
        }
        for token in acceptOrder where clients[token].map({ $0.deadline <= now }) ?? false {
            close(token)
        }
    }

    private func close(_ token: UInt64) {
        guard let client = clients.removeValue(forKey: token) else { return }
        acceptOrder.removeAll { $0 == token }
        client.descriptor.close()  // also removes it from the epoll set
    }

    private func serve(_ token: UInt64) {
        guard let client = clients[token] else { return }
        switch client.phase {
        case .reading: read(token, client)
        case .writing: write(token, client)
        case .draining: drain(token, client)
        }
    }

    private func read(_ token: UInt64, _ client: Client) {
        while true {
            let result = readBuffer.withUnsafeMutableBytes { client.descriptor.readResult(into: $0) }
            switch result {
            case .success(0):
                return close(token)  // closed before a whole head: nothing to answer
            case .success(let count):
                let (state, _) = client.parser.consume(readBuffer[0..<count])
                switch state {
                case .incomplete: continue
                case .complete(let head): return respond(token, client, MetricsHTTPResponse.answer(head, registry: registry))
                case .failed(let error): return respond(token, client, .refusal(error))
                }
            case .failure(let errno) where errno == .wouldBlock:
                return
            case .failure:
                return close(token)
            }
        }
    }

    private func respond(_ token: UInt64, _ client: Client, _ response: MetricsHTTPResponse) {
        client.output = response.serialized
        client.written = 0
        client.phase = .writing
        client.deadline = MonotonicClock.nanoseconds + timeoutNanoseconds
        write(token, client)
        if client.phase == .writing, clients[token] != nil {
            // The socket buffer is full: wait for room.
            if (try? epoll.modify(client.descriptor, events: .writable, token: token)) == nil { close(token) }
        }
    }

    private func write(_ token: UInt64, _ client: Client) {
        while client.written < client.output.count {
            let result = client.output.withUnsafeBytes { raw in
                client.descriptor.writeResult(UnsafeRawBufferPointer(rebasing: raw[client.written...]))
            }
            switch result {
            case .success(let count): client.written += count
            case .failure(let errno) where errno == .wouldBlock: return
            case .failure: return close(token)
            }
        }
        client.output = []
        client.phase = .draining
        client.deadline = MonotonicClock.nanoseconds + min(timeoutNanoseconds, MetricsServerLoop.drainNanoseconds)
        _ = client.descriptor.shutdownResult(.write)
        if (try? epoll.modify(client.descriptor, events: .readable, token: token)) == nil { return close(token) }
        drain(token, client)
    }

    private func drain(_ token: UInt64, _ client: Client) {
        while true {
            let result = readBuffer.withUnsafeMutableBytes { client.descriptor.readResult(into: $0) }
            switch result {
            case .success(0):
                return close(token)
            case .success(let count):
                client.discarded += count
                if client.discarded > MetricsServerLoop.drainLimit { return close(token) }
            case .failure(let errno) where errno == .wouldBlock:
                return
            case .failure:
                return close(token)
            }
        }
    }
}
