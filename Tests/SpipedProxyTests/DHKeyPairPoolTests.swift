@testable import SpipedProxy
import SpipedSystem
import XCTest

/// The key-pair pool: filled by its thread up to capacity, each pair handed out once.
final class DHKeyPairPoolTests: XCTestCase {
    func testFillsToCapacityHandsOutEachPairOnceAndRefills() throws {
        let pool = try DHKeyPairPool(capacity: 2)
        let filler = try SystemThread(name: "test-dhpool") { pool.fill() }
        defer {
            pool.stop()
            filler.join()
        }
        XCTAssertTrue(RunningProxy.wait(seconds: 30) { pool.count == 2 })
        let first = pool.take(), second = pool.take()
        XCTAssertNotNil(first)
        XCTAssertNotNil(second)
        XCTAssertNotEqual(first?.publicValue, second?.publicValue, "every pair is fresh")
        XCTAssertTrue(RunningProxy.wait(seconds: 30) { pool.count == 2 }, "refilled after running low")
    }

    func testEmptyPoolReturnsNil() throws {
        let pool = try DHKeyPairPool(capacity: 1)
        XCTAssertNil(pool.take(), "no filler thread: the handshake makes its own pair")
    }
}
