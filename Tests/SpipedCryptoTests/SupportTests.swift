import Glibc
import XCTest
@testable import SpipedCrypto

/// ConstantTime, SecureWipe and SystemRandom behaviour, including the getrandom retry and
/// failure paths through an injected system call.
final class SupportTests: XCTestCase {
    // MARK: ConstantTime

    func testEqualComparesEveryByte() {
        let base: [UInt8] = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        XCTAssertTrue(ConstantTime.equal(base, base))
        XCTAssertTrue(ConstantTime.equal([], []))
        for position in [0, 1, 31, 32, 63] {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var changed = base
                changed[position] ^= flip
                XCTAssertFalse(ConstantTime.equal(base, changed), "byte \(position) ^ \(flip)")
            }
        }
        XCTAssertFalse(ConstantTime.equal(base, Array(base.dropLast())))
        XCTAssertFalse(ConstantTime.equal([], [0]))
        base.withUnsafeBytes { a in
            let copy = base
            copy.withUnsafeBytes { b in XCTAssertTrue(ConstantTime.equal(a, b)) }
        }
    }

    func testMaskHelpers() {
        XCTAssertEqual(ConstantTime.mask(fromBit: 1), UInt64.max)
        XCTAssertEqual(ConstantTime.mask(fromBit: 0), 0)
        for (a, b) in [(0, 0), (5, 5), (UInt64.max, UInt64.max)] as [(UInt64, UInt64)] {
            XCTAssertEqual(ConstantTime.equalMask(a, b), UInt64.max)
        }
        for (a, b) in [(0, 1), (1, 0), (0, UInt64.max), (1 << 63, 0), (15, 14)] as [(UInt64, UInt64)] {
            XCTAssertEqual(ConstantTime.equalMask(a, b), 0)
        }
        XCTAssertEqual(ConstantTime.select(UInt64.max, 7, 9), 7)
        XCTAssertEqual(ConstantTime.select(0, 7, 9), 9)
    }

    // MARK: SecureWipe

    func testWipeZeroesBufferAndArray() {
        var bytes: [UInt8] = (1...100).map { UInt8($0) }
        SecureWipe.wipe(&bytes)
        XCTAssertEqual(bytes, [UInt8](repeating: 0, count: 100))

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 77, alignment: 1)
        defer { buffer.deallocate() }
        for index in 0..<77 { buffer[index] = 0xAB }
        SecureWipe.wipe(UnsafeMutableRawBufferPointer(rebasing: buffer[10..<20]))
        XCTAssertEqual(Array(buffer[0..<10]), [UInt8](repeating: 0xAB, count: 10))
        XCTAssertEqual(Array(buffer[10..<20]), [UInt8](repeating: 0, count: 10))
        XCTAssertEqual(Array(buffer[20..<77]), [UInt8](repeating: 0xAB, count: 57))
        SecureWipe.wipe(UnsafeMutableRawBufferPointer(start: nil, count: 0))
        var empty: [UInt8] = []
        SecureWipe.wipe(&empty)
        XCTAssertEqual(empty, [])
    }

    // MARK: SystemRandom

    func testRandomFillsDistinctBuffers() throws {
        let first = try SystemRandom.bytes(32), second = try SystemRandom.bytes(32)
        XCTAssertEqual(first.count, 32)
        XCTAssertNotEqual(first, second)
        XCTAssertNotEqual(first, [UInt8](repeating: 0, count: 32))
        XCTAssertEqual(try SystemRandom.bytes(0), [])
        // Large requests (above getrandom's 256-byte atomic limit) are filled completely:
        // every 4 KiB page-sized chunk must contain some non-zero byte.
        let large = try SystemRandom.bytes(1 << 20)
        for start in stride(from: 0, to: large.count, by: 4096) {
            XCTAssertTrue(large[start..<start + 4096].contains { $0 != 0 }, "chunk at \(start)")
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 48, alignment: 1)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        try SystemRandom.fill(buffer)
        XCTAssertNotEqual(Array(buffer), [UInt8](repeating: 0, count: 48))
    }

    func testRandomRetriesInterruptsAndShortReads() throws {
        var script: [SystemRandom.ReadOutcome] = [.failed(errno: EINTR), .read(3), .failed(errno: EINTR), .read(5), .read(2)]
        var requests: [Int] = []
        var next: UInt8 = 1
        var bytes = [UInt8](repeating: 0, count: 10)
        let result = bytes.withUnsafeMutableBytes { buffer in
            SystemRandom.fill(buffer) { start, count in
                requests.append(count)
                let outcome = script.removeFirst()
                if case .read(let written) = outcome {
                    for offset in 0..<written {
                        start.storeBytes(of: next, toByteOffset: offset, as: UInt8.self)
                        next += 1
                    }
                }
                return outcome
            }
        }
        XCTAssertNoThrow(try result.get())
        XCTAssertEqual(bytes, Array(1...10))
        XCTAssertEqual(requests, [10, 10, 7, 7, 2])
        XCTAssertTrue(script.isEmpty)
    }

    func testRandomReportsFailuresWithoutFallback() {
        for code in [ENOSYS, EFAULT, EAGAIN, EINVAL] {
            var calls = 0
            var bytes = [UInt8](repeating: 0, count: 16)
            let result = bytes.withUnsafeMutableBytes { buffer in
                SystemRandom.fill(buffer) { _, _ in
                    calls += 1
                    return calls == 1 ? .read(4) : .failed(errno: code)
                }
            }
            XCTAssertThrowsError(try result.get()) { error in
                XCTAssertEqual(error as? CryptoError, .randomnessUnavailable(errno: code))
            }
            XCTAssertEqual(calls, 2)
        }
        // A zero-byte read would spin forever; it is reported as EIO.
        var bytes = [UInt8](repeating: 0, count: 4)
        let result = bytes.withUnsafeMutableBytes { buffer in SystemRandom.fill(buffer) { _, _ in .read(0) } }
        XCTAssertThrowsError(try result.get()) { error in
            XCTAssertEqual(error as? CryptoError, .randomnessUnavailable(errno: EIO))
        }
    }

    func testPrivateExponentsAreRandom() throws {
        // Two fresh exponents give different public values (2^x is injective for x < q).
        XCTAssertNotEqual(try DHPrivateExponent().publicValue(), try DHPrivateExponent().publicValue())
        XCTAssertEqual(DHPrivateExponent.randomByteCount, 32)
    }
}
