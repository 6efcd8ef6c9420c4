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
    /// both directions end. Throws when the connection fails at any point.
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
            let fromInput = try SystemThread(name: "spipe-stdin") { copyInput(from: input, to: bridgeEnd) }
            fromInput.detach()   // may stay blocked reading a terminal; the process exits anyway
            let toOutput = try SystemThread(name: "spipe-stdout") { copyOutput(from: bridgeEnd, to: output) }

            loop.adopt(applicationSide: engineEnd, peerDescription: "standard input", pipe: nil, settings: settings)
            loop.run()
            toOutput.join()
        } catch {
            throw .system(error)
        }
        if let failure = outcome.withLock({ $0 }) { throw failure }
    }

    /// Copies `input` into the socket pair; at end of input sends a FIN.
    private static func copyInput(from input: FileDescriptor, to bridge: FileDescriptor) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { (try? input.read(into: $0)) ?? 0 }
            if count == 0 { break }
            let written: Bool = buffer.withUnsafeBytes { bytes in
                (try? bridge.writeAll(UnsafeRawBufferPointer(rebasing: bytes[0..<count]))) != nil
            }
            if !written { break }
        }
        _ = bridge.shutdownResult(.write)
    }

    /// Copies what the socket pair delivers to `output` until end of stream.
    private static func copyOutput(from bridge: FileDescriptor, to output: FileDescriptor) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { (try? bridge.read(into: $0)) ?? 0 }
            if count == 0 { break }
            let written: Bool = buffer.withUnsafeBytes { bytes in
                (try? output.writeAll(UnsafeRawBufferPointer(rebasing: bytes[0..<count]))) != nil
            }
            if !written { break }
        }
        _ = bridge.shutdownResult(.read)
    }
}
