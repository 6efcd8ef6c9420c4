/// Splits one fuzzer input into the typed choices a target needs (sizes, flags, payloads),
/// in the manner of LLVM's FuzzedDataProvider: every read succeeds, returning zeros or an empty
/// array once the input is used up, so every input maps to some run of the target.
public struct FuzzedInput {
    /// The whole input.
    public let bytes: [UInt8]
    /// Index of the next unread byte.
    public private(set) var position = 0

    /// Wraps one input.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Bytes not yet read.
    public var remainingCount: Int { bytes.count - position }
    /// True once everything was read.
    public var isExhausted: Bool { position >= bytes.count }

    /// The next byte, or 0 past the end.
    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// The next byte's low bit.
    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A little-endian integer of `byteCount` bytes (1...8) from the input.
    public mutating func integer(byteCount: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<byteCount { value |= UInt64(byte()) << (8 * UInt64(index)) }
        return value
    }

    /// A number in `range`, taken from as few bytes as the range needs.
    public mutating func number(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound)
        guard span > 0 else { return range.lowerBound }
        let byteCount = (64 - span.leadingZeroBitCount + 7) / 8
        let raw = integer(byteCount: byteCount)
        return range.lowerBound + Int(span == UInt64.max ? raw : raw % (span + 1))
    }

    /// Up to `count` next bytes (fewer when the input runs out).
    public mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, position + max(0, count))
        defer { position = end }
        return Array(bytes[position..<end])
    }

    /// Exactly `count` bytes, zero-padded when the input runs out.
    public mutating func takePadded(_ count: Int) -> [UInt8] {
        var result = take(count)
        result += [UInt8](repeating: 0, count: count - result.count)
        return result
    }

    /// Everything not yet read.
    public mutating func rest() -> [UInt8] { take(remainingCount) }
}

/// Fails the fuzz run with a message (libFuzzer records the input as a crash artifact).
public func fuzzFailure(_ message: String, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("FUZZ FINDING: " + message, file: file, line: line)
}

/// Lowercase hex of bytes, for failure messages.
public func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    let digits = Array("0123456789abcdef")
    var text = ""
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 15)])
    }
    return text
}
