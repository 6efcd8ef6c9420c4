import Foundation
import SpipedCrypto
import SpipedCryptoAccelerated
@testable import SpipedProtocol
import XCTest

/// The crypto backends every protocol test runs with: the portable one always, the hardware
/// one when this CPU has it and its self-tests passed, unless `SPIPED_FORCE_PORTABLE=1` (the
/// project's switch for forcing portable code) is set.
let testBackends: [CryptoBackend] = {
    var backends = [CryptoBackend.portable]
    if ProcessInfo.processInfo.environment["SPIPED_FORCE_PORTABLE"] != "1",
       let hardware = CryptoBackendSelection.hardwareIfAvailable {
        backends.append(hardware)
    }
    return backends
}()

/// A deterministic generator (SplitMix64) so random splits are reproducible from a seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How a byte stream is cut into the pieces handed to `receive`/`open`.
enum Chunking: CustomStringConvertible {
    /// Everything available at once.
    case whole
    /// One byte per call.
    case bytewise
    /// Random piece sizes in 1...maximum from a seeded generator.
    case random(seed: UInt64, maximum: Int)

    /// Cuts `count` bytes into piece sizes.
    func pieces(_ count: Int) -> [Int] {
        switch self {
        case .whole: return count == 0 ? [] : [count]
        case .bytewise: return Array(repeating: 1, count: count)
        case .random(let seed, let maximum):
            var generator = SplitMix64(seed: seed)
            var sizes: [Int] = []
            var left = count
            while left > 0 {
                let size = min(left, Int.random(in: 1...maximum, using: &generator))
                sizes.append(size)
                left -= size
            }
            return sizes
        }
    }

    var description: String {
        switch self {
        case .whole: return "whole"
        case .bytewise: return "bytewise"
        case .random(let seed, let maximum): return "random(seed: \(seed), max: \(maximum))"
        }
    }
}

/// Test fixtures shared by every test (computed once: 2^x mod p is slow in debug builds).
enum Fixtures {
    /// A fixed 32-byte key file (the same for both sides).
    static let keyFile: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
    /// A different key file.
    static let otherKeyFile: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ 3) }
    static let clientNonce: [UInt8] = (0..<32).map { UInt8(0xC0 ^ $0) }
    static let serverNonce: [UInt8] = (0..<32).map { UInt8(0x50 ^ $0) }
    /// Fixed exponents in the reference's 2^258 + r form; pairs are reused across tests
    /// (never do that outside tests).
    static let clientExponent: [UInt8] = [0x04] + (0..<32).map { UInt8(truncatingIfNeeded: 0x11 &* $0 &+ 5) }
    static let serverExponent: [UInt8] = [0x04] + (0..<32).map { UInt8(truncatingIfNeeded: 0x23 &* $0 &+ 9) }
    static let clientKeyPair = DHKeyPair(privateExponent: DHPrivateExponent(bigEndianBytes: clientExponent))
    static let serverKeyPair = DHKeyPair(privateExponent: DHPrivateExponent(bigEndianBytes: serverExponent))
}

/// Bytes currently in `handshake.pendingOutput`, marked as sent.
func takeOutput(_ handshake: Handshake) -> [UInt8] {
    let bytes = [UInt8](handshake.pendingOutput)
    handshake.consumeOutput(bytes.count)
    return bytes
}

/// Feeds `bytes` to `handshake` in pieces; returns the bytes it consumed in total.
func feed(_ handshake: Handshake, _ bytes: [UInt8], chunking: Chunking = .whole) throws(SpipedProtocolError) -> Int {
    var offset = 0
    for size in chunking.pieces(bytes.count) {
        let consumed = try bytes[offset..<offset + size].withUnsafeBytes { piece in
            Result { () throws(SpipedProtocolError) in try handshake.receive(piece) }
        }.get()
        offset += consumed
        if consumed < size { break }
    }
    return offset
}

/// Makes a handshake with the fixed nonce and key pair of its role.
func makeHandshake(_ role: HandshakeRole, options: HandshakeOptions = HandshakeOptions(), keyFile: [UInt8] = Fixtures.keyFile,
                   backend: CryptoBackend = .portable) throws -> Handshake {
    try Handshake(role: role, key: SpipedKey(fileContents: keyFile, backend: backend), options: options, backend: backend,
                  nonce: role == .client ? Fixtures.clientNonce : Fixtures.serverNonce,
                  keyPair: role == .client ? Fixtures.clientKeyPair : Fixtures.serverKeyPair)
}

/// Outcome of running two handshakes against each other.
struct ExchangeOutcome {
    var clientError: SpipedProtocolError?
    var serverError: SpipedProtocolError?
    /// Everything each side wrote.
    var clientSent: [UInt8] = []
    var serverSent: [UInt8] = []
}

/// Moves bytes between a client and a server handshake until both complete or one fails,
/// cutting each side's stream with `chunking`. A side that fails stops; the other then sees
/// end of stream.
func exchange(client: Handshake, server: Handshake, chunking: Chunking = .whole) -> ExchangeOutcome {
    var outcome = ExchangeOutcome()
    var toServer: [UInt8] = []
    var toClient: [UInt8] = []
    for _ in 0..<10 {
        if outcome.clientError == nil {
            let bytes = takeOutput(client)
            outcome.clientSent += bytes
            toServer += bytes
        }
        if outcome.serverError == nil {
            let bytes = takeOutput(server)
            outcome.serverSent += bytes
            toClient += bytes
        }
        if outcome.serverError == nil && !toServer.isEmpty {
            do { toServer.removeFirst(try feed(server, toServer, chunking: chunking)) } catch { outcome.serverError = error }
        }
        if outcome.clientError == nil && !toClient.isEmpty {
            do { toClient.removeFirst(try feed(client, toClient, chunking: chunking)) } catch { outcome.clientError = error }
        }
        if (client.isComplete || outcome.clientError != nil) && (server.isComplete || outcome.serverError != nil)
            && client.pendingOutput.isEmpty && server.pendingOutput.isEmpty {
            break
        }
    }
    // A side still waiting when its peer gave up sees the connection close.
    if outcome.clientError != nil && outcome.serverError == nil && !server.isComplete {
        do { try server.receiveEndOfStream() } catch { outcome.serverError = error }
    }
    if outcome.serverError != nil && outcome.clientError == nil && !client.isComplete {
        do { try client.receiveEndOfStream() } catch { outcome.clientError = error }
    }
    return outcome
}

/// Seals `plaintext` with one `seal` call into a buffer with room for every packet.
func sealAll(_ sealer: PacketSealer, _ plaintext: [UInt8]) throws(SpipedProtocolError) -> [UInt8] {
    let packetCount = (plaintext.count + PacketSealer.maximumPayloadByteCount - 1) / PacketSealer.maximumPayloadByteCount
    var output = [UInt8](repeating: 0, count: packetCount * PacketSealer.packetByteCount)
    let result = try plaintext.withUnsafeBytes { input in
        output.withUnsafeMutableBytes { out in Result { () throws(SpipedProtocolError) in try sealer.seal(input, into: out) } }
    }.get()
    precondition(result.consumed == plaintext.count && result.produced == output.count, "seal left data behind")
    return output
}

/// Opens `ciphertext` cut with `chunking`, with an output buffer of `outputRoom` bytes per call.
func openAll(_ opener: PacketOpener, _ ciphertext: [UInt8], chunking: Chunking = .whole,
             outputRoom: Int = 64 * 1024) throws(SpipedProtocolError) -> [UInt8] {
    var plaintext: [UInt8] = []
    var output = [UInt8](repeating: 0, count: outputRoom)
    var offset = 0
    for size in chunking.pieces(ciphertext.count) {
        var pieceOffset = 0
        while pieceOffset < size {
            let start = offset + pieceOffset
            let result = try ciphertext[start..<offset + size].withUnsafeBytes { input in
                output.withUnsafeMutableBytes { out in Result { () throws(SpipedProtocolError) in try opener.open(input, into: out) } }
            }.get()
            plaintext += output[0..<result.produced]
            pieceOffset += result.consumed
            precondition(result.consumed > 0 || result.produced > 0, "opener made no progress")
        }
        offset += size
    }
    return plaintext
}

/// Asserts that `body` throws exactly `expected`.
func assertThrows<T>(_ expected: SpipedProtocolError, _ message: @autoclosure () -> String = "",
                     file: StaticString = #filePath, line: UInt = #line,
                     _ body: () throws(SpipedProtocolError) -> T) {
    do {
        _ = try body()
        XCTFail("expected \(expected), nothing thrown. \(message())", file: file, line: line)
    } catch {
        XCTAssertEqual(error, expected, message(), file: file, line: line)
    }
}
