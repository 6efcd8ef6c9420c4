import SpipedSystem
import Synchronization

/// The proxy's log: event loops hand it lines and never wait for them to be written.
///
/// Lines go into a bounded in-memory queue; one writer thread ("spiped-log") passes them to
/// the sink (standard error, syslog, a test's closure), so a stalled stderr pipe or a slow
/// syslog blocks only that thread, never an event loop. When the queue is full, lines are
/// dropped and counted, and the writer reports how many were lost.
///
/// Failures of individual connections (`connectionFailed`) are aggregated per pipe and cause:
/// the first one in a window is written at once, the others of the same window are counted and
/// summarised in one line when the window ends ("… 502 more in the last 10 s"), so a flood of
/// strangers writes a few lines, not one per connect.
public final class ProxyLog: Sendable {
    /// Lines that may wait in the queue; beyond this, lines are dropped (and counted).
    static let queueCapacity = 4096
    /// Length of an aggregation window for repeated connection failures.
    static let aggregationWindowNanoseconds: UInt64 = 10_000_000_000

    private struct Line {
        var level: ProxyLogLevel
        var text: String
    }

    /// Counts of one (pipe, cause) failure in the current window.
    private struct FailureWindow {
        var startedAt: UInt64
        var suppressed: Int
        var lastDetail: String
    }

    private struct State {
        var queue: [Line] = []
        var dropped = 0
        var windows: [String: FailureWindow] = [:]
        var stopping = false
    }

    private let sink: @Sendable (ProxyLogLevel, String) -> Void
    /// Lines below this level are not logged (`--log-level`).
    public let minimumLevel: ProxyLogLevel
    private let state = Mutex(State())
    private let wakeup: EventNotifier?
    private let writer = Mutex<SystemThread?>(nil)
    /// True while the writer thread runs (lines are queued instead of written directly).
    private let writerRunning = Atomic<Bool>(false)
    /// Windows shorter than the default, for tests.
    private let windowNanoseconds: UInt64

    /// A log that writes through `sink` on its own thread (started by `start()`; before that,
    /// and if the thread cannot be started, lines are written synchronously).
    public init(minimumLevel: ProxyLogLevel = .warning, aggregationWindowSeconds: Double = 10,
                sink: @escaping @Sendable (ProxyLogLevel, String) -> Void) {
        self.sink = sink
        self.minimumLevel = minimumLevel
        windowNanoseconds = UInt64(max(aggregationWindowSeconds, 0.001) * 1_000_000_000)
        wakeup = try? EventNotifier()
    }

    /// Whether a line of `level` would be written.
    public func isEnabled(_ level: ProxyLogLevel) -> Bool {
        // Life-cycle lines are part of the default (warning) output; only `error` hides them.
        if level == .notice { return minimumLevel != .error }
        return level >= minimumLevel
    }

    /// Starts the writer thread (idempotent). Lines logged before were written directly.
    public func start() {
        writer.withLock { thread in
            guard thread == nil, wakeup != nil else { return }
            thread = try? SystemThread(name: "spiped-log") { [self] in self.runWriter() }
            if thread != nil { writerRunning.store(true, ordering: .releasing) }
        }
    }

    /// Writes everything queued, summarises open windows, and stops the writer thread.
    public func stop() {
        let thread = writer.withLock { thread -> SystemThread? in
            defer { thread = nil }
            return thread
        }
        guard let thread else { return }
        state.withLock { $0.stopping = true }
        wakeup?.signal()
        thread.join()
        writerRunning.store(false, ordering: .releasing)
        state.withLock { $0.stopping = false }
    }

    /// Logs one line (never blocks on the sink once the writer runs).
    public func log(_ level: ProxyLogLevel, _ text: String) {
        guard isEnabled(level) else { return }
        let queued = state.withLock { state -> Bool in
            guard writerRunning.load(ordering: .acquiring), !state.stopping else { return false }
            if state.queue.count >= ProxyLog.queueCapacity {
                state.dropped += 1
            } else {
                state.queue.append(Line(level: level, text: text))
            }
            return true
        }
        if queued { wakeup?.signal() } else { sink(level, text) }
    }

    /// Logs a failed connection, aggregated: `key` names the pipe and cause (lines with the same
    /// key share a window), `text` is the full line for the first occurrence, `summary` what
    /// the later ones are called in the count line.
    func connectionFailed(key: String, level: ProxyLogLevel = .warning, text: String, summary: String) {
        guard isEnabled(level) else { return }
        let now = MonotonicClock.nanoseconds
        let windowLength = windowNanoseconds
        // (log this line, the summary of the window it closes)
        let (first, closedSummary) = state.withLock { state -> (Bool, String?) in
            if var window = state.windows[key] {
                if now &- window.startedAt < windowLength {
                    window.suppressed += 1
                    window.lastDetail = summary
                    state.windows[key] = window
                    return (false, nil)
                }
                // The window ended and the writer has not closed it yet: close it here.
                state.windows[key] = FailureWindow(startedAt: now, suppressed: 0, lastDetail: summary)
                return (true, window.suppressed > 0 ? ProxyLog.summaryText(window, now: now) : nil)
            }
            state.windows[key] = FailureWindow(startedAt: now, suppressed: 0, lastDetail: summary)
            return (true, nil)
        }
        if let closedSummary { log(.warning, closedSummary) }
        if first { log(level, text) }
    }

    /// "what: N more in the last S s" for a window that ends at `now`.
    private static func summaryText(_ window: FailureWindow, now: UInt64) -> String {
        let seconds = Int((Double(now &- window.startedAt) / 1e9).rounded())
        return "\(window.lastDetail): \(window.suppressed) more in the last \(max(seconds, 1)) s"
    }

    // MARK: - Writer thread

    private func runWriter() {
        while true {
            _ = wakeup?.wait(timeoutMilliseconds: 1000)
            let now = MonotonicClock.nanoseconds
            let (lines, dropped, stopping) = state.withLock { state -> ([Line], Int, Bool) in
                let lines = state.queue
                state.queue.removeAll(keepingCapacity: true)
                let dropped = state.dropped
                state.dropped = 0
                // Close the windows that ended: a count line for each with suppressed failures.
                var summaries: [Line] = []
                for (key, window) in state.windows where state.stopping || now &- window.startedAt >= windowNanoseconds {
                    if window.suppressed > 0 {
                        summaries.append(Line(level: .warning, text: ProxyLog.summaryText(window, now: now)))
                    }
                    state.windows[key] = nil
                }
                return (lines + summaries, dropped, state.stopping)
            }
            for line in lines { sink(line.level, line.text) }
            if dropped > 0 { sink(.warning, "log: \(dropped) messages dropped (output too slow)") }
            if stopping {
                let rest = state.withLock { state -> [Line] in
                    defer { state.queue.removeAll() }
                    return state.queue
                }
                for line in rest { sink(line.level, line.text) }
                return
            }
        }
    }
}

extension ProxyLogLevel: Comparable {
    private var rank: Int {
        switch self {
        case .debug: return 0
        case .info: return 1
        case .notice: return 2
        case .warning: return 3
        case .error: return 4
        }
    }

    /// Less severe first: debug < info < notice < warning < error.
    public static func < (lhs: ProxyLogLevel, rhs: ProxyLogLevel) -> Bool { lhs.rank < rhs.rank }
}
