import SpipedCrypto
import SpipedProtocol
import SpipedSystem
import Synchronization

/// State shared by the engine's event loops: the pipes they serve, the key-pair pool, the log
/// and the stop flag. Everything mutable in it is atomic or behind a mutex.
///
/// The pipe list is versioned: a reload publishes a new list and wakes every loop, and each
/// loop brings its listener registrations in line with it (`EventLoop.syncListeners`).
final class EngineContext: Sendable {
    let log: ProxyLog
    let keyPairPool: DHKeyPairPool?
    let backend: CryptoBackend
    /// Signalled when stopping begins and when a loop finishes, to wake the control thread.
    let controlNotifier: EventNotifier?

    /// The pipes being served (retired pipes stay listed until every loop dropped them).
    private let pipeList = Mutex<[Pipe]>([])
    /// Bumped on every change of `pipeList`.
    private let pipeListVersion = Atomic<Int>(0)
    /// Set once when the engine should stop accepting and wind down.
    private let stopRequested = Atomic<Bool>(false)
    /// The event loops, set once before any of them starts (used to wake them all).
    private let loops = Mutex<[EventLoop]>([])
    /// Loops that have returned from `run()`.
    private let finishedLoopCount = Atomic<Int>(0)

    init(log: ProxyLog, keyPairPool: DHKeyPairPool?, backend: CryptoBackend, controlNotifier: EventNotifier?) {
        self.log = log
        self.keyPairPool = keyPairPool
        self.backend = backend
        self.controlNotifier = controlNotifier
    }

    func register(loops newLoops: [EventLoop]) {
        loops.withLock { $0 = newLoops }
    }

    var allLoops: [EventLoop] { loops.withLock { $0 } }

    // MARK: - Pipes

    /// The pipe list and its version.
    var pipes: (list: [Pipe], version: Int) {
        pipeList.withLock { ($0, pipeListVersion.load(ordering: .acquiring)) }
    }


    /// Publishes a new pipe list and wakes every loop to apply it.
    func publish(pipes: [Pipe]) {
        pipeList.withLock { list in
            list = pipes
            pipeListVersion.add(1, ordering: .releasing)
        }
        wakeAllLoops()
    }

    /// Whether the engine has listeners at all (`spipe` has none: its loop ends with its
    /// connection).
    var hasPipes: Bool { pipeList.withLock { !$0.isEmpty } }

    // MARK: - Stopping

    var isStopping: Bool { stopRequested.load(ordering: .acquiring) }

    /// Asks every loop to stop accepting and to finish once its connections are done.
    func beginStopping() {
        stopRequested.store(true, ordering: .releasing)
        wakeAllLoops()
        controlNotifier?.signal()
    }

    func wakeAllLoops() {
        for loop in allLoops { loop.wake() }
    }

    /// Called by a loop as `run()` returns.
    func loopFinished() {
        finishedLoopCount.add(1, ordering: .releasing)
        controlNotifier?.signal()
    }

    var finishedLoops: Int { finishedLoopCount.load(ordering: .acquiring) }

    /// Connections open across every pipe.
    var openConnectionCount: Int { pipes.list.reduce(0) { $0 + $1.openConnectionCount } }
}
