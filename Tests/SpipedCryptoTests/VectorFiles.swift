import Foundation
import XCTest

/// Reads published test-vector files (NIST CAVP `.rsp`, the RFC-derived `.txt` files of
/// PyPI's cryptography_vectors) from `Vectors/` at test time.
///
/// Format: `KEY = VALUE` lines; a blank line ends a record; `[SECTION]` lines set the section
/// for the records after them; `#` starts a comment line.
enum VectorFiles {
    /// One record: its fields (keys upper-cased as written) and the section it appeared under.
    struct Record {
        var section: String
        var fields: [String: String]
        /// Field `key` as bytes, decoding hex; fails the test if missing or malformed.
        func bytes(_ key: String, file: StaticString = #filePath, line: UInt = #line) throws -> [UInt8] {
            guard let text = fields[key] else {
                XCTFail("vector record has no field \(key): \(fields)", file: file, line: line)
                throw VectorFileError.missingField(key)
            }
            return try VectorFiles.hex(text)
        }
        /// Field `key` as an integer.
        func integer(_ key: String) throws -> Int {
            guard let text = fields[key], let value = Int(text) else { throw VectorFileError.missingField(key) }
            return value
        }
    }

    enum VectorFileError: Error { case missingField(String), badHex(String), missingFile(String) }

    /// The repository's `Vectors/` directory.
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors")

    /// Raw text of `Vectors/<relativePath>`.
    static func text(_ relativePath: String) throws -> String {
        let url = directory.appendingPathComponent(relativePath)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw VectorFileError.missingFile(url.path)
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Parses `Vectors/<relativePath>` into records.
    static func records(_ relativePath: String) throws -> [Record] {
        var result: [Record] = []
        var section = ""
        var current: [String: String] = [:]
        func flush() {
            if !current.isEmpty { result.append(Record(section: section, fields: current)) }
            current = [:]
        }
        // Split on any line break: CAVP files use CRLF, which Swift treats as one Character.
        for rawLine in try text(relativePath).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { flush(); continue }
            if line.hasPrefix("#") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                flush()
                section = String(line.dropFirst().dropLast())
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            // A key repeated inside one record starts a new record (some files omit blank lines).
            if current[key] != nil { flush() }
            current[key] = value
        }
        flush()
        return result
    }

    /// Decodes hex (either case, optional `0x`); an empty string is zero bytes.
    static func hex(_ text: String) throws -> [UInt8] {
        var digits = Substring(text)
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
        guard digits.count % 2 == 0 else { throw VectorFileError.badHex(text) }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { throw VectorFileError.badHex(text) }
            out.append(byte)
            index = next
        }
        return out
    }
}
