import SpipedCrypto
import SpipedProtocol
import SpipedSystem
import Synchronization

/// A small stock of Diffie-Hellman key pairs made ahead of time by a low-priority thread, so
/// the modular exponentiation for our own public value is off the connection's critical path.
/// Each pair is handed out once (forward secrecy is kept). When the stock is empty the
/// handshake makes its own pair.
final class DHKeyPairPool: Sendable {
    private let pairs = Mutex<[DHKeyPair]>([])
    private let capacity: Int
    /// Supplies the Montgomery multiplication for 2^x mod p.
    private let backend: CryptoBackend
    /// Wakes the filler thread (blocking eventfd): signalled when the stock runs low or on stop.
    private let refillRequest: EventNotifier
    private let stopping = Atomic<Bool>(false)

    /// A pool holding up to `capacity` pairs, computed with `backend`'s arithmetic.
    init(capacity: Int, backend: CryptoBackend = .portable) throws(SystemError) {
        self.capacity = max(1, capacity)
        self.backend = backend
        refillRequest = try EventNotifier(nonBlocking: false)
    }

    /// Takes a pair if one is ready; asks for a refill once the stock is half gone.
    func take() -> DHKeyPair? {
        let (pair, remaining) = pairs.withLock { stock in (stock.popLast(), stock.count) }
        if remaining == capacity / 2 { refillRequest.signal() }
        return pair
    }

    /// Number of pairs ready (for tests).
    var count: Int { pairs.withLock { $0.count } }

    /// The filler thread's body: keeps the stock full until `stop()`.
    func fill() {
        SystemThread.lowerCallingThreadPriority()
        while !stopping.load(ordering: .relaxed) {
            if count >= capacity {
                refillRequest.waitAndReset()
                continue
            }
            guard let pair = try? DHKeyPair.generate(backend: backend) else {
                // No randomness for now: handshakes will report it themselves; try again later.
                _ = refillRequest.wait(timeoutMilliseconds: 1000)
                continue
            }
            pairs.withLock { $0.append(pair) }
        }
    }

    /// Makes `fill()` return.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        refillRequest.signal()
    }
}
