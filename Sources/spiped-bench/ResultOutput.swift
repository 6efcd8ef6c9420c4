/// Writes benchmark figures as a human-readable table or as one JSON object per line.
enum ResultOutput {
    /// How results are printed.
    enum Format {
        /// Aligned columns with a header.
        case table
        /// `{"name": ..., "backend": ..., "unit": ..., "value": ...}` per line.
        case jsonLines
    }

    /// Prints the table header (nothing for JSON lines).
    static func printHeader(format: Format) {
        guard case .table = format else { return }
        print(padded("benchmark", 14) + padded("backend", 10) + leftPadded("value", 14) + "  unit")
        print(String(repeating: "-", count: 14 + 10 + 14 + 6))
    }

    /// Prints one figure as soon as it is measured.
    static func printResult(_ result: BenchmarkResult, format: Format) {
        switch format {
        case .table:
            print(padded(result.name, 14) + padded(result.backendName, 10)
                  + leftPadded(fixed(result.value, fractionDigits: 1), 14) + "  " + result.unit.rawValue)
        case .jsonLines:
            // Names, backends and units are fixed ASCII identifiers, so they need no escaping.
            print("{\"name\": \"\(result.name)\", \"backend\": \"\(result.backendName)\", "
                  + "\"unit\": \"\(result.unit.rawValue)\", \"value\": \(fixed(result.value, fractionDigits: 1))}")
        }
    }

    /// `value` in decimal with exactly `fractionDigits` digits after the point (no exponent
    /// notation, so it is valid JSON and easy to read).
    static func fixed(_ value: Double, fractionDigits: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<fractionDigits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = UInt64(scaled / scale)
        let fraction = UInt64(scaled - Double(whole) * scale)
        var text = (value < 0 ? "-" : "") + String(whole)
        if fractionDigits > 0 {
            let digits = String(fraction)
            text += "." + String(repeating: "0", count: fractionDigits - digits.count) + digits
        }
        return text
    }

    /// `text` followed by spaces up to `width` characters.
    static func padded(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// Spaces up to `width` characters followed by `text`.
    static func leftPadded(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
