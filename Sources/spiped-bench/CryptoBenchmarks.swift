import Glibc
import SpipedCrypto
import SpipedProtocol
import SpipedCryptoAccelerated

/// The unit a benchmark figure is expressed in.
enum ResultUnit: String {
    /// Millions (10^6) of payload bytes per second.
    case megabytesPerSecond = "MB/s"
    /// Operations per second.
    case operationsPerSecond = "op/s"
}

/// One measured figure.
struct BenchmarkResult {
    /// Benchmark name (`sha256`, `packet-open`, ...).
    let name: String
    /// The backend family that ran it (`portable` or `hardware`).
    let backendName: String
    /// The unit of `value`.
    let unit: ResultUnit
    /// The measured rate.
    let value: Double
}

/// One crypto benchmark: a name, its unit, whether it depends on the backend, and the code.
struct CryptoBenchmark: Sendable {
    /// Name used on the command line and in the output.
    let name: String
    /// Unit of the reported figure.
    let unit: ResultUnit
    /// Payload bytes per operation, for MB/s figures; nil for op/s figures.
    let bytesPerOperation: Int?
    /// False for code that takes no backend: it runs once, labelled portable.
    let usesBackend: Bool
    /// The one primitive the figure measures, whose engines each get a row; nil for figures
    /// that combine primitives (packets, handshakes).
    var primitive: CryptoPrimitive? {
        switch name {
        case "sha256", "hmac-sha256", "hmac-sha256x2": .sha256
        case "aes256-ctr": .aes256
        case "dh-generate", "dh-shared": .diffieHellman
        default: nil
        }
    }
    /// Measures the operation for at least the settings' minimum time.
    let measure: @Sendable (_ backend: CryptoBackend, _ settings: MeasurementSettings) -> RateMeasurement

    /// Converts a measurement into the figure this benchmark reports.
    func result(of measurement: RateMeasurement, backendName: String) -> BenchmarkResult {
        let rate = measurement.operationsPerSecond
        let value = bytesPerOperation.map { rate * Double($0) / 1_000_000 } ?? rate
        return BenchmarkResult(name: name, backendName: backendName, unit: unit, value: value)
    }
}

/// Stops the program with a message on standard error (a benchmark cannot continue after a
/// library error).
func failBenchmark(_ message: String) -> Never {
    var line = "spiped-bench: " + message + "\n"
    line.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    exit(1)
}

/// The crypto benchmarks, in output order.
enum CryptoBenchmarks {
    /// Size of the buffers hashed, MACed and encrypted, and of the packet payloads.
    static let bufferByteCount = 1024

    /// Every benchmark `spiped-bench crypto` knows.
    static let all: [CryptoBenchmark] = [
        CryptoBenchmark(name: "sha256", unit: .megabytesPerSecond, bytesPerOperation: bufferByteCount,
                        usesBackend: true, measure: measureSHA256),
        CryptoBenchmark(name: "hmac-sha256", unit: .megabytesPerSecond, bytesPerOperation: bufferByteCount,
                        usesBackend: true, measure: measureHMACSHA256),
        CryptoBenchmark(name: "hmac-sha256x2", unit: .megabytesPerSecond, bytesPerOperation: 2 * bufferByteCount,
                        usesBackend: true, measure: measureHMACSHA256TwoWay),
        CryptoBenchmark(name: "hmac-sha256x4", unit: .megabytesPerSecond, bytesPerOperation: 4 * bufferByteCount,
                        usesBackend: true, measure: { measureHMACSHA256Batch(width: 4, backend: $0, settings: $1) }),
        CryptoBenchmark(name: "hmac-sha256x16", unit: .megabytesPerSecond, bytesPerOperation: 16 * bufferByteCount,
                        usesBackend: true, measure: { measureHMACSHA256Batch(width: 16, backend: $0, settings: $1) }),
        CryptoBenchmark(name: "aes256-ctr", unit: .megabytesPerSecond, bytesPerOperation: bufferByteCount,
                        usesBackend: true, measure: measureAES256CTR),
        CryptoBenchmark(name: "packet-seal", unit: .megabytesPerSecond, bytesPerOperation: PacketSealer.maximumPayloadByteCount,
                        usesBackend: true, measure: measurePacketSeal),
        CryptoBenchmark(name: "packet-open", unit: .megabytesPerSecond, bytesPerOperation: PacketSealer.maximumPayloadByteCount,
                        usesBackend: true, measure: measurePacketOpen),
        CryptoBenchmark(name: "packet-seal64", unit: .megabytesPerSecond, bytesPerOperation: PacketSealer.maximumPayloadByteCount,
                        usesBackend: true, measure: measurePacketSealBatch),
        CryptoBenchmark(name: "packet-open64", unit: .megabytesPerSecond, bytesPerOperation: PacketSealer.maximumPayloadByteCount,
                        usesBackend: true, measure: measurePacketOpenBatch),
        CryptoBenchmark(name: "dh-generate", unit: .operationsPerSecond, bytesPerOperation: nil,
                        usesBackend: true, measure: measureDHGenerate),
        CryptoBenchmark(name: "dh-shared", unit: .operationsPerSecond, bytesPerOperation: nil,
                        usesBackend: true, measure: measureDHShared),
        CryptoBenchmark(name: "handshake", unit: .operationsPerSecond, bytesPerOperation: nil,
                        usesBackend: true, measure: measureHandshake),
    ]

    /// A 16-byte aligned buffer filled with a fixed non-zero pattern; the caller deallocates it.
    static func patternBuffer(byteCount: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 16)
        for index in 0..<byteCount { buffer[index] = UInt8(truncatingIfNeeded: index &* 151 &+ 7) }
        return buffer
    }

    /// SHA-256 of a 1024-byte buffer, one complete hash (init, update, finalize) per operation.
    static func measureSHA256(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let input = patternBuffer(byteCount: bufferByteCount)
        let digest = patternBuffer(byteCount: SHA256.digestByteCount)
        defer { input.deallocate(); digest.deallocate() }
        return .runTimingWholeBatch(settings) { operations in
            for _ in 0..<operations {
                var hash = SHA256(backend: backend)
                hash.update(UnsafeRawBufferPointer(input))
                hash.finalize(into: digest)
                blackHole(digest[0])
            }
        }
    }

    /// HMAC-SHA256 of a 1024-byte buffer; the keyed state is prepared once and copied per
    /// message, as the packet layer does.
    static func measureHMACSHA256(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let input = patternBuffer(byteCount: bufferByteCount)
        let tag = patternBuffer(byteCount: HMACSHA256.tagByteCount)
        defer { input.deallocate(); tag.deallocate() }
        let keyed = HMACSHA256(key: Array(repeating: 0x4b, count: 32), backend: backend)
        return .runTimingWholeBatch(settings) { operations in
            for _ in 0..<operations {
                var mac = keyed
                mac.update(UnsafeRawBufferPointer(input))
                mac.finalize(into: tag)
                blackHole(tag[0])
            }
        }
    }

    /// HMAC-SHA256 of two 1024-byte buffers side by side (`HMACSHA256.authenticationCodes`),
    /// from one keyed state; one operation is both messages (2048 bytes).
    static func measureHMACSHA256TwoWay(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let inputs = patternBuffer(byteCount: 2 * bufferByteCount)
        let tags = patternBuffer(byteCount: 2 * HMACSHA256.tagByteCount)
        defer { inputs.deallocate(); tags.deallocate() }
        let keyed = HMACSHA256(key: Array(repeating: 0x4b, count: 32), backend: backend)
        let first = UnsafeRawBufferPointer(rebasing: inputs[0..<bufferByteCount])
        let second = UnsafeRawBufferPointer(rebasing: inputs[bufferByteCount...])
        let firstTag = UnsafeMutableRawBufferPointer(rebasing: tags[0..<HMACSHA256.tagByteCount])
        let secondTag = UnsafeMutableRawBufferPointer(rebasing: tags[HMACSHA256.tagByteCount...])
        return .runTimingWholeBatch(settings) { operations in
            for _ in 0..<operations {
                keyed.authenticationCodes(first, second, tagA: firstTag, tagB: secondTag)
                blackHole(tags[0] ^ tags[HMACSHA256.tagByteCount])
            }
        }
    }

    /// HMAC-SHA256 of `width` 1024-byte buffers side by side (the batch
    /// `HMACSHA256.authenticationCodes`, through the backend's multi-stream SHA-256 when it has
    /// one), from one keyed state; one operation is all `width` messages.
    static func measureHMACSHA256Batch(width: Int, backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let inputs = patternBuffer(byteCount: width * bufferByteCount)
        let tags = patternBuffer(byteCount: width * HMACSHA256.tagByteCount)
        defer { inputs.deallocate(); tags.deallocate() }
        let keyed = HMACSHA256(key: Array(repeating: 0x4b, count: 32), backend: backend)
        let messages = (0..<width).map { UnsafeRawPointer(inputs.baseAddress! + $0 * bufferByteCount) }
        let tagPointers = (0..<width).map { tags.baseAddress! + $0 * HMACSHA256.tagByteCount }
        return messages.withUnsafeBufferPointer { messageList in
            tagPointers.withUnsafeBufferPointer { tagList in
                .runTimingWholeBatch(settings) { operations in
                    for _ in 0..<operations {
                        keyed.authenticationCodes(messageList, byteCount: bufferByteCount, tags: tagList)
                        blackHole(tags[0] ^ tags[HMACSHA256.tagByteCount])
                    }
                }
            }
        }
    }

    /// AES-256 in spiped's CTR layout over 1024 bytes, a new packet number per operation.
    static func measureAES256CTR(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let input = patternBuffer(byteCount: bufferByteCount)
        let output = patternBuffer(byteCount: bufferByteCount)
        defer { input.deallocate(); output.deallocate() }
        let key: AES256Key
        do {
            key = try AES256Key(key: Array(repeating: 0xa5, count: 32), backend: backend)
        } catch {
            failBenchmark("AES256Key: \(error)")
        }
        var packetNumber: UInt64 = 0
        return .runTimingWholeBatch(settings) { operations in
            for _ in 0..<operations {
                key.spipedCTRXor(packetNumber: packetNumber, input: input.baseAddress!,
                                 output: output.baseAddress!, count: bufferByteCount)
                packetNumber &+= 1
                blackHole(output[0])
            }
        }
    }

    /// Sealing one 1024-byte payload into a 1060-byte packet per operation, with a session
    /// made by a real in-memory handshake.
    static func measurePacketSeal(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let session = establishSession(backend: backend)
        let payload = patternBuffer(byteCount: PacketSealer.maximumPayloadByteCount)
        let packet = patternBuffer(byteCount: PacketSealer.packetByteCount)
        defer { payload.deallocate(); packet.deallocate() }
        return .runTimingWholeBatch(settings) { operations in
            for _ in 0..<operations {
                sealOnePacket(session.clientSealer, payload: payload, into: packet)
                blackHole(packet[0])
            }
        }
    }

    /// Verifying and decrypting one 1060-byte packet per operation. Packets are sealed in
    /// untimed chunks beforehand (the opener needs them in counter order); only opening is timed.
    static func measurePacketOpen(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let session = establishSession(backend: backend)
        let chunkPacketCount = 4096
        let payload = patternBuffer(byteCount: PacketSealer.maximumPayloadByteCount)
        let packets = patternBuffer(byteCount: chunkPacketCount * PacketSealer.packetByteCount)
        let plaintext = patternBuffer(byteCount: PacketSealer.maximumPayloadByteCount)
        defer { payload.deallocate(); packets.deallocate(); plaintext.deallocate() }
        return .run(minimumSeconds: settings.minimumSeconds) { operations in
            var remaining = operations
            var timedSeconds = 0.0
            while remaining > 0 {
                let count = min(remaining, chunkPacketCount)
                for index in 0..<count {
                    let slot = UnsafeMutableRawBufferPointer(
                        rebasing: packets[(index * PacketSealer.packetByteCount)...].prefix(PacketSealer.packetByteCount))
                    sealOnePacket(session.clientSealer, payload: payload, into: slot)
                }
                let start = settings.clock.now()
                for index in 0..<count {
                    let slot = UnsafeRawBufferPointer(
                        rebasing: packets[(index * PacketSealer.packetByteCount)...].prefix(PacketSealer.packetByteCount))
                    do {
                        let (consumed, produced) = try session.serverOpener.open(slot, into: plaintext)
                        if consumed != PacketSealer.packetByteCount || produced != PacketSealer.maximumPayloadByteCount {
                            failBenchmark("open consumed \(consumed) and produced \(produced) bytes")
                        }
                    } catch {
                        failBenchmark("PacketOpener.open: \(error)")
                    }
                    blackHole(plaintext[0])
                }
                timedSeconds += settings.clock.now() - start
                remaining -= count
            }
            return timedSeconds
        }
    }

    /// Packets per call in the batch benchmarks: a 64 KiB read's worth, as the proxy seals and
    /// opens many packets per call (up to ~250 for its 256 KB reads).
    static let batchPacketCount = 64

    /// Sealing 64 full packets per `seal` call; the figure is per packet (1024 payload bytes).
    static func measurePacketSealBatch(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let session = establishSession(backend: backend)
        let payload = patternBuffer(byteCount: batchPacketCount * PacketSealer.maximumPayloadByteCount)
        let packets = patternBuffer(byteCount: batchPacketCount * PacketSealer.packetByteCount)
        defer { payload.deallocate(); packets.deallocate() }
        return .run(minimumSeconds: settings.minimumSeconds) { operations in
            let calls = (operations + batchPacketCount - 1) / batchPacketCount
            let start = settings.clock.now()
            for _ in 0..<calls {
                do {
                    let (consumed, produced) = try session.clientSealer.seal(UnsafeRawBufferPointer(payload), into: packets)
                    if consumed != payload.count || produced != packets.count {
                        failBenchmark("seal consumed \(consumed) and produced \(produced) bytes")
                    }
                } catch {
                    failBenchmark("PacketSealer.seal: \(error)")
                }
                blackHole(packets[0])
            }
            // Report the time per requested operation, scaled from whole calls.
            return (settings.clock.now() - start) * Double(operations) / Double(calls * batchPacketCount)
        }
    }

    /// Verifying and decrypting 64 packets per `open` call; packets are sealed beforehand in
    /// untimed chunks (in counter order), only opening is timed. The figure is per packet.
    static func measurePacketOpenBatch(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let session = establishSession(backend: backend)
        let chunkCallCount = 4   // ~270 KB of packets per chunk: about one proxy read, and cache-resident
        let payload = patternBuffer(byteCount: batchPacketCount * PacketSealer.maximumPayloadByteCount)
        let packetsPerChunk = chunkCallCount * batchPacketCount
        let packets = patternBuffer(byteCount: packetsPerChunk * PacketSealer.packetByteCount)
        let plaintext = patternBuffer(byteCount: batchPacketCount * PacketSealer.maximumPayloadByteCount)
        defer { payload.deallocate(); packets.deallocate(); plaintext.deallocate() }
        let callBytes = batchPacketCount * PacketSealer.packetByteCount
        return .run(minimumSeconds: settings.minimumSeconds) { operations in
            var remainingCalls = (operations + batchPacketCount - 1) / batchPacketCount
            let totalCalls = remainingCalls
            var timedSeconds = 0.0
            while remainingCalls > 0 {
                let calls = min(remainingCalls, chunkCallCount)
                for call in 0..<calls {
                    let slot = UnsafeMutableRawBufferPointer(rebasing: packets[(call * callBytes)...].prefix(callBytes))
                    do {
                        _ = try session.clientSealer.seal(UnsafeRawBufferPointer(payload), into: slot)
                    } catch {
                        failBenchmark("PacketSealer.seal: \(error)")
                    }
                }
                let start = settings.clock.now()
                for call in 0..<calls {
                    let slot = UnsafeRawBufferPointer(rebasing: packets[(call * callBytes)...].prefix(callBytes))
                    do {
                        let (consumed, produced) = try session.serverOpener.open(slot, into: plaintext)
                        if consumed != callBytes || produced != plaintext.count {
                            failBenchmark("open consumed \(consumed) and produced \(produced) bytes")
                        }
                    } catch {
                        failBenchmark("PacketOpener.open: \(error)")
                    }
                    blackHole(plaintext[0])
                }
                timedSeconds += settings.clock.now() - start
                remainingCalls -= calls
            }
            return timedSeconds * Double(operations) / Double(totalCalls * batchPacketCount)
        }
    }

    /// Drawing a private exponent from the kernel and computing its public value 2^x mod p.
    static func measureDHGenerate(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        .runTimingWholeBatch(settings) { operations in
            for _ in 0..<operations {
                do {
                    let exponent = try DHPrivateExponent()
                    blackHole(exponent.publicValue(backend: backend)[255])
                } catch {
                    failBenchmark("DHPrivateExponent: \(error)")
                }
            }
        }
    }

    /// Validating a peer's public value and computing the shared secret y^x mod p.
    static func measureDHShared(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        let ownExponent: DHPrivateExponent
        let peerValue: [UInt8]
        do {
            ownExponent = try DHPrivateExponent()
            peerValue = try DHPrivateExponent().publicValue()
        } catch {
            failBenchmark("DHPrivateExponent: \(error)")
        }
        return .runTimingWholeBatch(settings) { operations in
            for _ in 0..<operations {
                do {
                    let secret = try ownExponent.sharedSecret(peerPublicValue: peerValue, requireForwardSecrecy: true,
                                                              backend: backend)
                    blackHole(secret[255])
                } catch {
                    failBenchmark("sharedSecret: \(error)")
                }
            }
        }
    }

    /// A complete client/server handshake in memory (both sides' work: two key pairs, two
    /// shared secrets, the MACs and key derivations), the CPU cost of one connection.
    static func measureHandshake(backend: CryptoBackend, settings: MeasurementSettings) -> RateMeasurement {
        .runTimingWholeBatch(settings) { operations in
            for _ in 0..<operations {
                let session = establishSession(backend: backend)
                blackHole(UInt8(truncatingIfNeeded: ObjectIdentifier(session.clientSealer).hashValue))
            }
        }
    }

    /// A client→server session from an in-memory handshake, or a clear failure.
    static func establishSession(backend: CryptoBackend) -> InMemorySession {
        do {
            return try InMemorySession.establish(backend: backend)
        } catch {
            failBenchmark("in-memory handshake: \(error)")
        }
    }

    /// Seals exactly one full packet, failing loudly if the sealer does anything else.
    static func sealOnePacket(_ sealer: PacketSealer, payload: UnsafeMutableRawBufferPointer,
                              into packet: UnsafeMutableRawBufferPointer) {
        do {
            let (consumed, produced) = try sealer.seal(UnsafeRawBufferPointer(payload), into: packet)
            if consumed != PacketSealer.maximumPayloadByteCount || produced != PacketSealer.packetByteCount {
                failBenchmark("seal consumed \(consumed) and produced \(produced) bytes")
            }
        } catch {
            failBenchmark("PacketSealer.seal: \(error)")
        }
    }
}
