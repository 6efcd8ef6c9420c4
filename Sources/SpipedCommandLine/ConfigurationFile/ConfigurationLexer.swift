// Splits a configuration file's bytes into classified lines: blank (or comment), `[section]`,
// `option = value`, or a line-level problem. Rules: lines end at LF (a CR before it is
// dropped); a UTF-8 byte-order mark at the start is skipped; a line must be valid UTF-8 without
// control characters other than tab; `#` starts a comment at the start of a line or after a
// space or tab; spaces and tabs around the line, the option name and the value are trimmed.
// Pure: no I/O.

/// What one line says.
enum ConfigurationLineContent: Equatable, Sendable {
    /// Blank or comment only.
    case blank
    /// `[name]` (the name is checked by the parser).
    case section(String)
    /// `option = value` (both trimmed; the value may be empty).
    case assignment(option: String, value: String)
    /// A line that cannot be read.
    case malformed(ConfigurationProblem)
}

/// One line with its 1-based number.
struct ConfigurationLine: Equatable, Sendable {
    /// 1-based line number.
    let number: Int
    /// Its classification.
    let content: ConfigurationLineContent
}

/// The line reader.
enum ConfigurationLexer {
    /// Classifies every line of `bytes` (blank lines included, so numbers stay right).
    static func lines(_ bytes: [UInt8]) -> [ConfigurationLine] {
        var result: [ConfigurationLine] = []
        var start = 0
        // A byte-order mark would otherwise make the first line unrecognizable.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        var number = 1
        while start <= bytes.count {
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            if start == bytes.count && end == bytes.count && number > 1 { break }
            result.append(ConfigurationLine(number: number, content: classify(bytes[start..<end])))
            number += 1
            start = end + 1
        }
        return result
    }

    /// The number of lines `lines(_:)` reports for `bytes` (for checking diagnostics).
    static func lineCount(_ bytes: [UInt8]) -> Int { lines(bytes).count }

    /// Classifies one line (without its LF). Works on bytes, so the ASCII delimiters are found
    /// even next to combining characters (which would merge with them into one Character).
    static func classify(_ raw: ArraySlice<UInt8>) -> ConfigurationLineContent {
        var line = raw
        if line.last == 0x0D { line = line.dropLast() }
        if line.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) { return .malformed(.controlCharacter) }
        guard String(validating: line, as: UTF8.self) != nil else { return .malformed(.invalidUTF8) }
        let content = trimmed(withoutComment(line))
        if content.isEmpty { return .blank }
        let text = String(decoding: content, as: UTF8.self)
        if content.first == UInt8(ascii: "[") {
            guard content.last == UInt8(ascii: "]"), content.count >= 2 else { return .malformed(.unrecognizedLine(text)) }
            return .section(String(decoding: content.dropFirst().dropLast(), as: UTF8.self))
        }
        guard let equals = content.firstIndex(of: UInt8(ascii: "=")) else { return .malformed(.unrecognizedLine(text)) }
        let option = trimmed(content[..<equals])
        guard !option.isEmpty else { return .malformed(.unrecognizedLine(text)) }
        let value = trimmed(content[(equals + 1)...])
        return .assignment(option: String(decoding: option, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
    }

    /// The line up to its comment: a `#` at the start or after a space or tab.
    static func withoutComment(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var previous = UInt8(ascii: " ")
        for index in line.indices {
            let byte = line[index]
            if byte == UInt8(ascii: "#") && isBlank(previous) { return line[..<index] }
            previous = byte
        }
        return line
    }

    /// The bytes without leading and trailing spaces and tabs.
    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var result = bytes
        while let first = result.first, isBlank(first) { result = result.dropFirst() }
        while let last = result.last, isBlank(last) { result = result.dropLast() }
        return result
    }

    /// Space or tab.
    static func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// The text without leading and trailing spaces and tabs (on its UTF-8 bytes).
    static func trimmed(_ text: String) -> String {
        String(decoding: trimmed(ArraySlice(text.utf8)), as: UTF8.self)
    }
}
