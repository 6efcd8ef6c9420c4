import Foundation
import XCTest

/// Reads `Vectors/protocol/transcript.txt`, written by `Vectors/protocol/gen_transcript.py`.
///
/// Same `KEY = VALUE` conventions as `Tests/SpipedCryptoTests/VectorFiles.swift` (blank line
/// ends a record, `#` comments, `[SECTION]` headers); that parser lives in another test target,
/// so this is a small one for the transcript's layout: `[SESSION name]`, one record of session
/// fields, then records of `DIRECTION`, `MESSAGE`, `PACKETS`.
struct TranscriptFile {
    /// One message handed to the sealer in one call and the packets it becomes.
    struct Message {
        /// `c2s` (client to server) or `s2c`.
        var direction: String
        var plaintext: [UInt8]
        var packets: [UInt8]
    }

    /// One complete session: its inputs and intermediate values, and its messages in order.
    struct Session {
        var name: String
        var fields: [String: String]
        var messages: [Message]

        /// Hex field `key` as bytes.
        func bytes(_ key: String) throws -> [UInt8] {
            guard let text = fields[key] else { throw TranscriptError.missingField(key, session: name) }
            return try TranscriptFile.hex(text)
        }

        /// `0`/`1` field `key` as a Bool.
        func flag(_ key: String) throws -> Bool {
            guard let text = fields[key] else { throw TranscriptError.missingField(key, session: name) }
            return text == "1"
        }
    }

    enum TranscriptError: Error { case missingField(String, session: String), badHex(String), badLayout(String) }

    var sessions: [Session]

    /// The repository's `Vectors/protocol/transcript.txt`.
    static let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors/protocol/transcript.txt")

    /// Parses the transcript file.
    static func load() throws -> TranscriptFile {
        let text = try String(contentsOf: url, encoding: .utf8)
        var sessions: [Session] = []
        var record: [String: String] = [:]

        func flush() throws {
            defer { record = [:] }
            guard !record.isEmpty else { return }
            guard !sessions.isEmpty else { throw TranscriptError.badLayout("record before any [SESSION] header") }
            if let direction = record["DIRECTION"] {
                guard let message = record["MESSAGE"], let packets = record["PACKETS"] else {
                    throw TranscriptError.badLayout("message record without MESSAGE/PACKETS")
                }
                sessions[sessions.count - 1].messages.append(
                    Message(direction: direction, plaintext: try hex(message), packets: try hex(packets)))
            } else {
                sessions[sessions.count - 1].fields.merge(record) { _, new in new }
            }
        }

        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { try flush(); continue }
            if line.hasPrefix("#") { continue }
            if line.hasPrefix("[SESSION ") && line.hasSuffix("]") {
                try flush()
                sessions.append(Session(name: String(line.dropFirst(9).dropLast()), fields: [:], messages: []))
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { throw TranscriptError.badLayout(line) }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            record[key] = value
        }
        try flush()
        return TranscriptFile(sessions: sessions)
    }

    /// Decodes hex (either case).
    static func hex(_ text: String) throws -> [UInt8] {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { throw TranscriptError.badHex(text) }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw TranscriptError.badHex(text)
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            out.append(try nibble(digits[index]) << 4 | nibble(digits[index + 1]))
            index += 2
        }
        return out
    }
}
