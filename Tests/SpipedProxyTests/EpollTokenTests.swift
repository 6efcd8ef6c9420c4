@testable import SpipedProxy
import XCTest

/// Epoll tokens of connection sockets never collide with the control tokens (listeners, the
/// wake-up notifier), whatever the generation of the slot.
final class EpollTokenTests: XCTestCase {
    func testConnectionTokensNeverHaveTheControlBit() {
        for generation: UInt32 in [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0x8000_0001, 0xFFFF_FFFF] {
            for slot in [0, 1, 12345, Int(Int32.max)] {
                for side in [false, true] {
                    let token = EventLoop.connectionToken(generation: generation, slot: slot, encryptedSide: side)
                    XCTAssertEqual(token & EventLoop.controlTokenBit, 0, "generation \(generation), slot \(slot)")
                    XCTAssertNotEqual(token, EventLoop.wakeupToken)
                }
            }
        }
    }

    /// Slot 0 after 2^31 generations: the old layout gave exactly the listener token 1 << 63.
    func testWrappedGenerationOfSlotZeroIsNotAListener() {
        let token = EventLoop.connectionToken(generation: 1 << 31, slot: 0, encryptedSide: false)
        XCTAssertNotEqual(token, 1 << 63)
        XCTAssertEqual(token, 0, "generation 2^31 wraps to 0 (31 bits)")
    }
}

/// The setup queue stays bounded when a connection stays in setup for ever (`-o inf`) at its
/// head while many others come and go behind it.
final class SetupQueueTests: XCTestCase {
    func testStaleEntriesBehindALiveHeadAreDropped() {
        var queue = SetupQueue()
        queue.append((slot: 0, generation: 0))          // idle for ever, never leaves setup
        for index in 1...100_000 {
            queue.append((slot: index, generation: 0))  // each finished setup at once
            queue.compact { $0.slot == 0 }
        }
        XCTAssertEqual(queue.head?.slot, 0)
        XCTAssertLessThanOrEqual(queue.storedCount, 1024, "the queue kept \(queue.storedCount) entries")
    }
}
