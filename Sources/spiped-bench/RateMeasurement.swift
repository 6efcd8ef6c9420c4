/// How many operations ran in how many seconds of measured time.
struct RateMeasurement {
    /// Operations completed in the measured time.
    let operations: Int
    /// Seconds of measured (timed) work.
    let seconds: Double

    /// Operations per second.
    var operationsPerSecond: Double { Double(operations) / seconds }

    /// Runs `timedBatch` with growing batch sizes until at least `minimumSeconds` of timed work
    /// has accumulated.
    ///
    /// `timedBatch(n)` performs `n` operations and returns the seconds it spent on them; it may
    /// do untimed preparation (such as sealing packets for an opening benchmark) outside the
    /// interval it reports. One untimed warm-up batch of one operation runs first. Batches
    /// double in size until one takes at least 20 ms, so the clock reads are negligible.
    static func run(minimumSeconds: Double, _ timedBatch: (_ operations: Int) -> Double) -> RateMeasurement {
        _ = timedBatch(1)
        var batchSize = 1
        var operations = 0
        var seconds = 0.0
        while seconds < minimumSeconds {
            let spent = timedBatch(batchSize)
            operations += batchSize
            seconds += spent
            if spent < 0.02 { batchSize *= 2 }
        }
        return RateMeasurement(operations: operations, seconds: seconds)
    }

    /// Like `run(minimumSeconds:_:)` for a batch that is timed as a whole with the settings' clock:
    /// `batch(n)` performs `n` operations.
    static func runTimingWholeBatch(_ settings: MeasurementSettings, _ batch: (_ operations: Int) -> Void) -> RateMeasurement {
        run(minimumSeconds: settings.minimumSeconds) { operations in
            let start = settings.clock.now()
            batch(operations)
            return settings.clock.now() - start
        }
    }
}

/// How long to measure each figure and with which clock.
struct MeasurementSettings: Sendable {
    /// Minimum seconds of measured work per figure.
    var minimumSeconds: Double
    /// The clock intervals are read from.
    var clock: BenchmarkClock
}
