import SpipedSystem
import Synchronization

/// The target's current addresses, shared by all event loops; `TargetRefresher` re-resolves
/// them every `-r` seconds. A failed lookup keeps the last good addresses.
final class TargetAddressBook: Sendable {
    /// The target as configured.
    let target: AddressSpec
    private let addresses: Mutex<[SocketAddress]>
    private let stopSignal: EventNotifier
    private let log: @Sendable (ProxyLogLevel, String) -> Void

    init(target: AddressSpec, initial: [SocketAddress], log: @escaping @Sendable (ProxyLogLevel, String) -> Void) throws(SystemError) {
        self.target = target
        addresses = Mutex(initial)
        stopSignal = try EventNotifier()
        self.log = log
    }

    /// The addresses to try, in order (a cheap copy-on-write snapshot).
    var current: [SocketAddress] { addresses.withLock { $0 } }

    /// Looks the target up once; on success replaces the addresses. Returns whether it worked.
    @discardableResult
    func refresh(logFailure: Bool) -> Bool {
        do {
            let fresh = try AddressResolver.resolve(target)
            addresses.withLock { $0 = fresh }
            return true
        } catch {
            if logFailure { log(.warning, "\(error.description); keeping the previous addresses") }
            return false
        }
    }

    /// Retries resolution every second until it works (`-D`) or `stop()`; returns whether it worked.
    func waitUntilResolved() -> Bool {
        var warned = false
        while !refresh(logFailure: false) {
            if !warned {
                log(.warning, "cannot resolve \(target.displayText) yet; retrying")
                warned = true
            }
            if stopSignal.wait(timeoutMilliseconds: 1000) { return false }
        }
        return true
    }

    /// Ends `waitUntilResolved` (periodic re-resolution is `TargetRefresher`'s).
    func stop() { stopSignal.signal() }
}
