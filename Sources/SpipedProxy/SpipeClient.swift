import Glibc
import SpipedCrypto
import SpipedProtocol
import SpipedSystem
import Synchronization

/// spipe: one connection; stdin → encrypted → target, reply → stdout. Returns when done.
///
/// Standard input and output may be terminals, pipes or files, which epoll cannot always
/// watch and which must not be switched to non-blocking mode (the flag would leak to the
/// shell). So two small threads copy them, blocking, to and from one end of a socket pair;
/// the other end is the plaintext socket of an ordinary connection in the proxy engine.
public enum SpipeClient {
    /// Connects to `target`, runs the client handshake, then pipes standard input to the
    /// target (end of input → `shutdown(SHUT_WR)`) and the reply to standard output until
    /// both directions end. Throws when the connection fails at any point, and when data was
    /// lost locally: a failed read of standard input (`.standardInputUnreadable`, not taken for
    /// its end) or a failed write of standard output (`.standardOutputUnwritable`, e.g. a full
    /// disk or a reader that went away). Either failure ends the connection at once.
    public static func run(target: AddressSpec, key: SpipedKey, handshake: HandshakeOptions,
                           backend: CryptoBackend, keepAlive: Bool, timeoutSeconds: Double,
                           bindAddress: AddressSpec?) throws(ProxyError) {
        try run(target: target, key: key, handshake: handshake, backend: backend, keepAlive: keepAlive,
                timeoutSeconds: timeoutSeconds, bindAddress: bindAddress,
                input: .standardInput, output: .standardOutput)
    }

    /// `run` with other descriptors in place of standard input and output (for tests).
    static func run(target: AddressSpec, key: SpipedKey, handshake: HandshakeOptions,
                    backend: CryptoBackend, keepAlive: Bool, timeoutSeconds: Double,
                    bindAddress: AddressSpec?, input: FileDescriptor, output: FileDescriptor) throws(ProxyError) {
        guard timeoutSeconds > 0 else { throw .invalidConfiguration("timeout must be positive") }
        TerminationSignals.ignoreBrokenPipe()
        let addresses: [SocketAddress]
        let bindAddresses: [SocketAddress]
        do {
            addresses = try AddressResolver.resolve(target)
            bindAddresses = try bindAddress.map { address throws(AddressResolutionError) in try AddressResolver.resolve(address, passive: true) } ?? []
        } catch {
            throw .addressResolutionFailed(error)
        }

        let outcome = Mutex<ProxyError?>(nil)
        // The first failure of a copy thread; it takes precedence over how the connection ended,
        // which is only its consequence.
        let copyFailure = Mutex<ProxyError?>(nil)
        do {
            let targets = try TargetAddressBook(target: target, initial: addresses, log: { _, _ in })
            let settings = PipeSettings(spipeTarget: targets, key: key, handshake: handshake, backend: backend,
                                        keepAlive: keepAlive, timeoutSeconds: timeoutSeconds, bindAddresses: bindAddresses)
            // Failures are thrown, not logged.
            let context = EngineContext(log: ProxyLog(minimumLevel: .error, sink: { _, _ in }), keyPairPool: nil,
                                        backend: backend, controlNotifier: nil)
            let loop = try EventLoop(context: context, name: "spipe")
            loop.onConnectionEnd = { end in outcome.withLock { $0 = end } }

            let (engineEnd, bridgeEnd) = try FileDescriptor.socketPair(nonBlocking: false)
            try engineEnd.setNonBlocking()
            let report: @Sendable (ProxyError) -> Void = { failure in
                copyFailure.withLock { first in if first == nil { first = failure } }
                // End both directions: the engine sees end of input and a broken pipe, closes
                // the connection, and `loop.run()` returns.
                _ = bridgeEnd.shutdownResult(.both)
            }
            let fromInput = try SystemThread(name: "spipe-stdin") { copyInput(from: input, to: bridgeEnd, report: report) }
            fromInput.detach()   // may stay blocked reading a terminal; the process exits anyway
            let toOutput = try SystemThread(name: "spipe-stdout") { copyOutput(from: bridgeEnd, to: output, report: report) }

            loop.adopt(applicationSide: engineEnd, peerDescription: "standard input", pipe: nil, settings: settings)
            loop.run()
            toOutput.join()
        } catch {
            throw .system(error)
        }
        if let failure = copyFailure.withLock({ $0 }) ?? outcome.withLock({ $0 }) { throw failure }
    }

    /// Copies `input` into the socket pair; at end of input sends a FIN. A read error is
    /// reported (it is not the end of the input); a failed write to the socket pair means the
    /// connection already ended, which `run` learns from the engine.
    private static func copyInput(from input: FileDescriptor, to bridge: FileDescriptor,
                                  report: @Sendable (ProxyError) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count: Int
            switch buffer.withUnsafeMutableBytes({ input.readResult(into: $0) }) {
            case .success(let read):
                count = read
            case .failure(let errno) where errno == .wouldBlock:
                // Standard input was left non-blocking by whoever opened it: wait, then retry.
                waitUntilReady(input, for: Int16(POLLIN))
                continue
            case .failure(let errno):
                report(.standardInputUnreadable(errno))
                return
            }
            if count == 0 { break }
            let written: Bool = buffer.withUnsafeBytes { bytes in
                (try? bridge.writeAll(UnsafeRawBufferPointer(rebasing: bytes[0..<count]))) != nil
            }
            if !written { break }
        }
        _ = bridge.shutdownResult(.write)
    }

    /// Copies what the socket pair delivers to `output` until end of stream. A failed write to
    /// `output` is reported: what the peer sent was not delivered.
    private static func copyOutput(from bridge: FileDescriptor, to output: FileDescriptor,
                                   report: @Sendable (ProxyError) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { (try? bridge.read(into: $0)) ?? 0 }
            if count == 0 { break }
            let failure: Errno? = buffer.withUnsafeBytes { bytes in
                var offset = 0
                while offset < count {
                    switch output.writeResult(UnsafeRawBufferPointer(rebasing: bytes[offset..<count])) {
                    case .success(let written): offset += written
                    case .failure(let errno) where errno == .wouldBlock: waitUntilReady(output, for: Int16(POLLOUT))
                    case .failure(let errno): return errno
                    }
                }
                return nil
            }
            if let failure {
                report(.standardOutputUnwritable(failure))
                return
            }
        }
        _ = bridge.shutdownResult(.read)
    }

    /// Blocks until `descriptor` is ready for `events` (or reports an error or hang-up, which
    /// the next read or write then returns).
    private static func waitUntilReady(_ descriptor: FileDescriptor, for events: Int16) {
        var entry = pollfd(fd: descriptor.rawValue, events: events, revents: 0)
        while poll(&entry, 1, -1) < 0 && errno == EINTR {}
    }
}
