import Synchronization

/// The pipes whose counters are exported, by name. The list changes only at start-up and on
/// reload (under a mutex); the counters themselves are atomics that event loops update without
/// touching the registry. A pipe keeps its counters across reloads as long as it keeps its name.
public final class MetricsRegistry: Sendable {
    /// One exported pipe.
    public struct Pipe: Sendable {
        /// The pipe's name (its configuration section, or its source for a command-line pipe).
        public let name: String
        /// `-e` or `-d` (the `mode` label; pool metrics exist for encrypt pipes only).
        public let mode: ProxyConfiguration.Mode
        /// Its counters.
        public let metrics: PipeMetrics
    }

    /// The `version` label of `spiped_build_info`.
    public let version: String
    private let pipeList = Mutex<[Pipe]>([])

    /// An empty registry; `version` is what `spiped --version` reports (e.g. `1.6.4`).
    public init(version: String) {
        self.version = version
    }

    /// The counters of the pipe `name`, created (at zero, not listening) if it is new. A pipe
    /// that changed mode on reload keeps its counters under its new mode.
    public func metrics(forPipe name: String, mode: ProxyConfiguration.Mode) -> PipeMetrics {
        pipeList.withLock { pipes in
            if let index = pipes.firstIndex(where: { $0.name == name }) {
                let existing = pipes[index]
                if existing.mode != mode { pipes[index] = Pipe(name: name, mode: mode, metrics: existing.metrics) }
                return existing.metrics
            }
            let created = PipeMetrics()
            pipes.append(Pipe(name: name, mode: mode, metrics: created))
            return created
        }
    }

    /// Drops every pipe not named in `names` (after a reload removed it); the rest keep their
    /// counters and order.
    public func retain(pipes names: some Sequence<String>) {
        let kept = Set(names)
        pipeList.withLock { pipes in pipes.removeAll { !kept.contains($0.name) } }
    }

    /// The exported pipes now, in the order they were first registered.
    public var pipes: [Pipe] {
        pipeList.withLock { $0 }
    }

    /// The names of the pipes whose listening socket is not open. When every pipe listens (and
    /// there is at least one), the service is healthy.
    public var pipesNotListening: [String] {
        pipes.filter { !$0.metrics.isListening }.map(\.name)
    }
}
