import SpipedSystem
import Synchronization

/// One thread ("spiped-dns") that re-resolves every target host name of every pipe on its own
/// `-r` interval, so many pipes do not mean many resolver threads. A reload replaces the list.
final class TargetRefresher: Sendable {
    private struct Entry {
        let book: TargetAddressBook
        let intervalNanoseconds: UInt64
        var due: UInt64
    }

    private let entries = Mutex<[Entry]>([])
    private let changed: EventNotifier
    private let stopping = Atomic<Bool>(false)

    init() throws(SystemError) {
        changed = try EventNotifier(nonBlocking: false)
    }

    /// Replaces the books to refresh (each with its interval in seconds); books already listed
    /// keep their schedule.
    func replace(with books: [(book: TargetAddressBook, intervalSeconds: Double)]) {
        let now = MonotonicClock.nanoseconds
        entries.withLock { entries in
            var next: [Entry] = []
            for (book, interval) in books where !next.contains(where: { $0.book === book }) {
                let nanoseconds = UInt64(max(interval, 0.001) * 1_000_000_000)
                if let existing = entries.first(where: { $0.book === book && $0.intervalNanoseconds == nanoseconds }) {
                    next.append(existing)
                } else {
                    next.append(Entry(book: book, intervalNanoseconds: nanoseconds, due: now &+ nanoseconds))
                }
            }
            entries = next
        }
        changed.signal()
    }

    /// Whether any book needs refreshing (whether the thread is worth starting).
    var isEmpty: Bool { entries.withLock { $0.isEmpty } }

    /// The thread's body: refreshes books as they fall due, until `stop()`.
    func run() {
        while !stopping.load(ordering: .relaxed) {
            let now = MonotonicClock.nanoseconds
            var dueBooks: [TargetAddressBook] = []
            let nextDue = entries.withLock { entries -> UInt64? in
                for index in entries.indices where entries[index].due <= now {
                    dueBooks.append(entries[index].book)
                    entries[index].due = now &+ entries[index].intervalNanoseconds
                }
                return entries.map(\.due).min()
            }
            for book in dueBooks { book.refresh(logFailure: true) }
            let waitMilliseconds: Int32
            if let nextDue {
                let now = MonotonicClock.nanoseconds
                waitMilliseconds = nextDue <= now ? 0 : Int32(clamping: (nextDue - now + 999_999) / 1_000_000)
            } else {
                waitMilliseconds = -1
            }
            _ = changed.wait(timeoutMilliseconds: waitMilliseconds)
        }
    }

    /// Makes `run()` return.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        changed.signal()
    }
}
