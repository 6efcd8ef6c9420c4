import Foundation
import Glibc
@testable import SpipedProtocol
import XCTest

/// Key-file loading: K = SHA256(contents) (checked against Python's hashlib via the
/// transcript), typed errors, and warnings for short or group/other-accessible files.
final class SpipedKeyTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("spiped-key-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ contents: [UInt8], name: String, permissions: Int = 0o600) throws -> String {
        let path = directory.appendingPathComponent(name).path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(contents),
                                                     attributes: [.posixPermissions: permissions]))
        try FileManager.default.setAttributes([.posixPermissions: permissions], ofItemAtPath: path)
        return path
    }

    func testLoadedKeyIsSHA256OfTheFileContents() throws {
        let session = try XCTUnwrap(TranscriptFile.load().sessions.first)
        let contents = try session.bytes("KEYFILE")
        let path = try write(contents, name: "key")
        for backend in testBackends {
            let (key, warnings) = try SpipedKey.load(path: path, backend: backend)
            XCTAssertEqual(key.secret.bytes, try session.bytes("K"))
            XCTAssertEqual(warnings, [])
        }
    }

    /// Files bigger than the first read buffer are hashed whole.
    func testLargeKeyFile() throws {
        let contents = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let path = try write(contents, name: "large")
        let (key, warnings) = try SpipedKey.load(path: path)
        XCTAssertEqual(key.secret.bytes, SpipedKey(fileContents: contents).secret.bytes)
        XCTAssertEqual(warnings, [])
        // Independent check of SHA-256 over 100 000 bytes: Python's hashlib.
        let expected = try pythonSHA256(contents)
        XCTAssertEqual(key.secret.bytes, expected)
    }

    /// Up to 1 MiB is hashed whole; one byte more is refused without reading on.
    func testKeyFileSizeLimit() throws {
        let limit = SpipedKey.maximumByteCount
        XCTAssertEqual(limit, 1 << 20)
        let contents = (0..<limit).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let atLimit = try write(contents, name: "at-limit")
        XCTAssertEqual(try SpipedKey.load(path: atLimit).key.secret.bytes, SpipedKey(fileContents: contents).secret.bytes)
        let overLimit = try write(contents + [0], name: "over-limit")
        assertThrows(.keyFileTooLarge(path: overLimit, maximumByteCount: limit)) { () throws(SpipedProtocolError) in
            try SpipedKey.load(path: overLimit)
        }
    }

    /// K lives in pages marked MADV_DONTDUMP (Linux 3.4 and later).
    func testKeyIsExcludedFromCoreDumps() throws {
        let path = try write([UInt8](repeating: 9, count: 32), name: "dontdump")
        XCTAssertTrue(try SpipedKey.load(path: path).key.isExcludedFromCoreDumps)
        XCTAssertTrue(SpipedKey(fileContents: [1, 2, 3]).isExcludedFromCoreDumps)
    }

    func testShortFileLoadsWithAWarning() throws {
        let path = try write(Array("short".utf8), name: "short")
        let (key, warnings) = try SpipedKey.load(path: path)
        XCTAssertEqual(warnings, [.shortKeyFile(byteCount: 5)])
        XCTAssertEqual(key.secret.bytes.count, 32)
        let empty = try write([], name: "empty")
        XCTAssertEqual(try SpipedKey.load(path: empty).warnings, [.shortKeyFile(byteCount: 0)])
    }

    func testGroupOrOtherPermissionsGiveAWarning() throws {
        let contents = [UInt8](repeating: 7, count: 32)
        XCTAssertEqual(try SpipedKey.load(path: write(contents, name: "a", permissions: 0o644)).warnings,
                       [.readableByOthers(mode: 0o644)])
        XCTAssertEqual(try SpipedKey.load(path: write(contents, name: "b", permissions: 0o640)).warnings,
                       [.readableByOthers(mode: 0o640)])
        XCTAssertEqual(try SpipedKey.load(path: write(contents, name: "c", permissions: 0o400)).warnings, [])
    }

    func testMissingFile() {
        let path = directory.appendingPathComponent("does-not-exist").path
        assertThrows(.keyFileNotFound(path: path)) { () throws(SpipedProtocolError) in try SpipedKey.load(path: path) }
    }

    func testUnreadableFile() {
        // A directory opens read-only but read(2) fails with EISDIR.
        let path = directory.path
        assertThrows(.keyFileUnreadable(path: path, errno: EISDIR)) { () throws(SpipedProtocolError) in
            try SpipedKey.load(path: path)
        }
        // A path through a regular file fails in open(2) with ENOTDIR.
        let file = try? write([1], name: "plain")
        let through = (file ?? "") + "/key"
        assertThrows(.keyFileUnreadable(path: through, errno: ENOTDIR)) { () throws(SpipedProtocolError) in
            try SpipedKey.load(path: through)
        }
    }

    /// `-` reads standard input (here a pipe put on descriptor 0 for the duration of the test).
    func testDashReadsStandardInput() throws {
        let contents = (0..<50).map { UInt8($0) }
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        XCTAssertEqual(contents.withUnsafeBytes { Glibc.write(ends[1], $0.baseAddress, $0.count) }, 50)
        close(ends[1])
        let savedStandardInput = dup(STDIN_FILENO)
        XCTAssertEqual(dup2(ends[0], STDIN_FILENO), STDIN_FILENO)
        close(ends[0])
        defer {
            dup2(savedStandardInput, STDIN_FILENO)
            close(savedStandardInput)
        }
        let (key, warnings) = try SpipedKey.load(path: "-")
        XCTAssertEqual(key.secret.bytes, try pythonSHA256(contents))
        XCTAssertEqual(warnings, [], "a pipe's permission bits are not the key file's")
    }

    /// Runs Python's hashlib over `bytes`.
    private func pythonSHA256(_ bytes: [UInt8]) throws -> [UInt8] {
        let input = try write(bytes, name: "python-input")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())", input]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return try TranscriptFile.hex(output.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
