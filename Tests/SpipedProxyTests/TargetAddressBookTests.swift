import Glibc
@testable import SpipedProxy
import SpipedSystem
import XCTest

/// Target re-resolution: fresh addresses replace old ones; a failed lookup keeps the last good ones.
final class TargetAddressBookTests: XCTestCase {
    func testRefreshReplacesAddressesAndFailureKeepsTheLastGoodOnes() throws {
        let log = LogRecorder()
        let book = try TargetAddressBook(target: .hostName("localhost", port: 80), initial: [], log: log.sink)
        XCTAssertTrue(book.refresh(logFailure: true))
        XCTAssertFalse(book.current.isEmpty)
        XCTAssertTrue(book.current.allSatisfy { $0.port == 80 })

        let lastGood = try AddressResolver.resolve(.ipv4("127.0.0.1", port: 81))
        let failing = try TargetAddressBook(target: .hostName("no-such-host.invalid", port: 81), initial: lastGood, log: log.sink)
        XCTAssertFalse(failing.refresh(logFailure: true))
        XCTAssertEqual(failing.current, lastGood)
        XCTAssertEqual(log.warnings(containing: "keeping the previous addresses").count, 1)
    }

    func testPeriodicRefreshStopsWhenAsked() throws {
        let book = try TargetAddressBook(target: .hostName("localhost", port: 80), initial: [], log: { _, _ in })
        let refresher = try TargetRefresher()
        refresher.replace(with: [(book: book, intervalSeconds: 0.02)])
        let thread = try SystemThread(name: "test-refresh") { refresher.run() }
        XCTAssertTrue(RunningProxy.wait(seconds: 5) { !book.current.isEmpty }, "refreshed in the background")
        refresher.stop()
        thread.join()
    }
}
