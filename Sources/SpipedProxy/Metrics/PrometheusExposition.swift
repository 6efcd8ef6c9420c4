/// Prometheus's text exposition format, version 0.0.4, for a `MetricsRegistry`.
///
/// Every family has `# HELP` and `# TYPE` lines, even with no pipes; every per-pipe sample has
/// the labels `pipe` and `mode` first. Counters end in `_total`, durations are in seconds.
public enum PrometheusExposition {
    /// The `Content-Type` of the rendered text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The exposition of every pipe in `registry`, read now (atomics only; no lock is held
    /// while reading counters).
    public static func render(_ registry: MetricsRegistry) -> String {
        let pipes = registry.pipes
        var text = ""
        text.reserveCapacity(1024 + pipes.count * 4096)

        family(&text, "spiped_build_info", "gauge", "Always 1; the version label names this spiped build.")
        text += "spiped_build_info{version=\"\(escapeLabelValue(registry.version))\"} 1\n"

        let labels = pipes.map { "pipe=\"\(escapeLabelValue($0.name))\",mode=\"\($0.mode == .encrypt ? "encrypt" : "decrypt")\"" }
        func perPipe(_ name: String, _ type: String, _ help: String, _ value: (PipeMetrics) -> String) {
            family(&text, name, type, help)
            for (pipe, label) in zip(pipes, labels) {
                text += "\(name){\(label)} \(value(pipe.metrics))\n"
            }
        }

        perPipe("spiped_pipe_listening", "gauge", "Whether the pipe's listening socket is open (1) or not (0).") {
            $0.isListening ? "1" : "0"
        }
        perPipe("spiped_connections_open", "gauge", "Connections open now.") { String($0.connectionsOpen) }
        perPipe("spiped_connections_total", "counter", "Connections accepted.") { String($0.connectionsTotal) }

        family(&text, "spiped_connections_closed_total", "counter", "Connections ended, by cause.")
        for (pipe, label) in zip(pipes, labels) {
            for cause in ConnectionEndCause.allCases {
                text += "spiped_connections_closed_total{\(label),cause=\"\(cause.label)\"} \(pipe.metrics.connectionsClosedCount(cause))\n"
            }
        }

        family(&text, "spiped_handshake_failures_total", "counter",
               "Handshakes that failed, by reason (authentication: a different key or not a spiped peer).")
        for (pipe, label) in zip(pipes, labels) {
            for reason in HandshakeFailureReason.allCases {
                text += "spiped_handshake_failures_total{\(label),reason=\"\(reason.label)\"} \(pipe.metrics.handshakeFailureCount(reason))\n"
            }
        }

        perPipe("spiped_target_connect_failures_total", "counter", "Connections to the target that failed.") {
            String($0.targetConnectFailureCount)
        }

        family(&text, "spiped_bytes_total", "counter", "Payload (plaintext) bytes forwarded, by direction.")
        for (pipe, label) in zip(pipes, labels) {
            for direction in ByteDirection.allCases {
                text += "spiped_bytes_total{\(label),direction=\"\(direction.label)\"} \(pipe.metrics.byteCount(direction))\n"
            }
        }

        family(&text, "spiped_handshake_duration_seconds", "histogram", "Time taken by successful handshakes.")
        for (pipe, label) in zip(pipes, labels) {
            let histogram = pipe.metrics.handshakeDurations
            for (bound, count) in zip(PipeMetrics.handshakeBucketLabels, histogram.cumulativeCounts) {
                text += "spiped_handshake_duration_seconds_bucket{\(label),le=\"\(bound)\"} \(count)\n"
            }
            text += "spiped_handshake_duration_seconds_sum{\(label)} \(seconds(nanoseconds: histogram.sumNanoseconds))\n"
            text += "spiped_handshake_duration_seconds_count{\(label)} \(histogram.count)\n"
        }

        let pooled = zip(pipes, labels).filter { $0.0.mode == .encrypt }
        func perPooledPipe(_ name: String, _ type: String, _ help: String, _ value: (PipeMetrics) -> String) {
            family(&text, name, type, help)
            for (pipe, label) in pooled {
                text += "\(name){\(label)} \(value(pipe.metrics))\n"
            }
        }
        perPooledPipe("spiped_pool_connections", "gauge", "Encrypt pipes: handshaken connections waiting in the pool.") {
            String($0.poolConnections)
        }
        perPooledPipe("spiped_pool_hits_total", "counter", "Encrypt pipes: accepted connections served from the pool.") {
            String($0.poolHitCount)
        }
        perPooledPipe("spiped_pool_misses_total", "counter", "Encrypt pipes: accepted connections that found the pool empty.") {
            String($0.poolMissCount)
        }
        perPooledPipe("spiped_pool_discarded_total", "counter", "Encrypt pipes: pooled connections closed unused.") {
            String($0.poolDiscardedCount)
        }
        return text
    }

    /// A label value with `\`, `"` and newline escaped as the format requires.
    public static func escapeLabelValue(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == 10 }) else {
            return value
        }
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// Exact decimal seconds for a nanosecond count: `0`, `0.0125`, `3.000000001`.
    static func seconds(nanoseconds: UInt64) -> String {
        let whole = nanoseconds / 1_000_000_000
        let fraction = nanoseconds % 1_000_000_000
        guard fraction > 0 else { return String(whole) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 9 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }

    private static func family(_ text: inout String, _ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }
}
