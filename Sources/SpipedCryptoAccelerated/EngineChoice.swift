import SpipedCrypto

#if canImport(Glibc)
import Glibc
#endif

/// A primitive that has several engines to choose from.
public enum CryptoPrimitive: String, Sendable, CaseIterable {
    /// SHA-256 compression (every HMAC, so every packet's MAC).
    case sha256
    /// AES-256 (CTR mode: every packet's encryption).
    case aes256
    /// Group-14 Montgomery arithmetic (every handshake's Diffie-Hellman).
    case diffieHellman = "dh"

    /// The name in summaries and logs.
    public var displayName: String {
        switch self {
        case .sha256: "SHA-256"
        case .aes256: "AES-256"
        case .diffieHellman: "DH"
        }
    }

    /// The unit of the start-up measurement's rate.
    public var rateUnit: String { self == .diffieHellman ? "op/s" : "MB/s" }
}

/// One engine of one primitive as the selection saw it: whether this CPU can run it, what the
/// start-up measurement gave, and whether it was chosen.
public struct CryptoEngineReport: Sendable {
    /// The primitive.
    public let primitive: CryptoPrimitive
    /// The engine's short name (`portable`, `sha-ni`, `aes-ni`, `vaes`, `mulx`, ...), as
    /// `SPIPED_CRYPTO_ENGINE` takes it.
    public let name: String
    /// Why the engine cannot be used here (CPU feature missing, self-test failed); nil if it can.
    public let unusableReason: String?
    /// Rate in the start-up measurement (`primitive.rateUnit`), nil when not measured.
    public let measuredRate: Double?
    /// True for the engine the process uses.
    public let isChosen: Bool
}

/// One candidate engine: a primitive, a name, whether it runs here, and how to put it into a
/// backend.
struct EngineCandidate: Sendable {
    /// Which primitive it implements.
    let primitive: CryptoPrimitive
    /// Short name (see `CryptoEngineReport.name`).
    let name: String
    /// Name in `CryptoBackendSelection.summary` (kept from earlier versions: "SHA-NI", ...).
    let summaryName: String
    /// nil when the CPU has the features and the known-answer self-test passed; otherwise why not.
    let unusableReason: String?
    /// Replaces this primitive's part of `parts` with this engine.
    let install: @Sendable (inout BackendParts) -> Void
}

/// The replaceable parts of a `CryptoBackend`, assembled one primitive at a time.
struct BackendParts: Sendable {
    var sha256Compress: CryptoBackend.SHA256CompressFunction
    var sha256Compress2: CryptoBackend.SHA256Compress2Function?
    var sha256CompressMany: CryptoBackend.SHA256CompressManyFunction?
    var sha256Lanes: Int
    var aes256: AES256Engine
    var montgomery2048: Montgomery2048Engine?

    /// The portable code for everything.
    static var portable: BackendParts {
        let portable = CryptoBackend.portable
        return BackendParts(sha256Compress: portable.sha256Compress, sha256Compress2: portable.sha256Compress2,
                            sha256CompressMany: nil, sha256Lanes: 0, aes256: portable.aes256, montgomery2048: nil)
    }

    /// A backend made of these parts; `kind` is portable only when every part is.
    func backend(allPortable: Bool) -> CryptoBackend {
        CryptoBackend(kind: allPortable ? .portable : .hardware, sha256Compress: sha256Compress,
                      sha256Compress2: sha256Compress2, sha256CompressMany: sha256CompressMany, sha256Lanes: sha256Lanes,
                      aes256: aes256, montgomery2048: montgomery2048)
    }
}

/// Picks, per primitive, the fastest engine that runs correctly here, by a short measurement
/// of each usable engine (about 5 ms in all, once per process, before any pipe starts).
///
/// The measurement is the work the proxy does: SHA-256 of a batch of packet-sized messages,
/// AES-256-CTR over packet bodies, one whole Diffie-Hellman shared-secret computation. Each
/// engine is timed in thread CPU time (time the thread was descheduled, or the host stole, does
/// not count), in three rounds alternating the order; the least time of the rounds counts.
/// The portable engine wins only when it measures faster, which is the point: on some CPUs an
/// instruction set is present but slow (the BMI2 engine lost to the portable one on one Intel
/// Xeon), and a CPU-flag rule cannot know that.
enum EngineChoice {
    /// The chosen parts, with everything the selection saw and any problem with the
    /// environment variables.
    struct Outcome: Sendable {
        var parts: BackendParts
        var reports: [CryptoEngineReport]
        var problems: [String]
        var summary: String
        var allPortable: Bool
    }

    /// Chooses among `candidates`. `forced` maps a primitive to the engine name the
    /// environment asks for (used without measuring when usable).
    static func choose(_ candidates: [EngineCandidate], forced: [CryptoPrimitive: String], problems: [String]) -> Outcome {
        var parts = BackendParts.portable
        var reports: [CryptoEngineReport] = []
        var problems = problems
        var summaryItems: [String] = []
        var allPortable = true
        for primitive in CryptoPrimitive.allCases {
            let all = candidates.filter { $0.primitive == primitive }
            let usable = all.filter { $0.unusableReason == nil }
            var rates: [String: Double] = [:]
            var chosen: EngineCandidate?
            if let name = forced[primitive] {
                if let engine = usable.first(where: { $0.name == name }) {
                    chosen = engine
                } else if let engine = all.first(where: { $0.name == name }) {
                    problems.append("SPIPED_CRYPTO_ENGINE: \(primitive.rawValue)=\(name) cannot run here (\(engine.unusableReason ?? "")); choosing by measurement")
                } else {
                    let known = all.map(\.name).joined(separator: ", ")
                    problems.append("SPIPED_CRYPTO_ENGINE: no \(primitive.rawValue) engine named \(name) (known: \(known)); choosing by measurement")
                }
            }
            if chosen == nil {
                rates = measure(usable)
                chosen = usable.max { (rates[$0.name] ?? 0) < (rates[$1.name] ?? 0) }
            }
            guard let chosen else { continue }
            chosen.install(&parts)
            if chosen.name != "portable" { allPortable = false }
            summaryItems.append("\(primitive.displayName): \(chosen.summaryName)")
            for engine in all {
                reports.append(CryptoEngineReport(primitive: primitive, name: engine.name, unusableReason: engine.unusableReason,
                                                  measuredRate: rates[engine.name], isChosen: engine.name == chosen.name))
            }
        }
        return Outcome(parts: parts, reports: reports, problems: problems,
                       summary: summaryItems.joined(separator: ", "), allPortable: allPortable)
    }

    /// Rates of the engines (primitive units per second), three alternating rounds, least
    /// time per engine. A single usable engine is not measured.
    static func measure(_ engines: [EngineCandidate]) -> [String: Double] {
        guard engines.count > 1, let primitive = engines.first?.primitive else { return [:] }
        let workloads = engines.map { engine in
            var parts = BackendParts.portable
            engine.install(&parts)
            return Workload(primitive: primitive, backend: parts.backend(allPortable: engine.name == "portable"))
        }
        var best = [Double](repeating: .infinity, count: engines.count)
        for round in 0..<3 {
            let order = round % 2 == 0 ? Array(workloads.indices) : Array(workloads.indices.reversed())
            for index in order {
                best[index] = min(best[index], workloads[index].timeOneRun())
            }
        }
        var rates: [String: Double] = [:]
        for (index, engine) in engines.enumerated() where best[index] > 0 && best[index].isFinite {
            rates[engine.name] = workloads[index].unitsPerRun / best[index]
        }
        return rates
    }

    /// Reads `SPIPED_CRYPTO_ENGINE`: a comma-separated list of `NAME` or `PRIMITIVE=NAME`
    /// (primitives `sha256`, `aes256`, `dh`). A bare name applies to every primitive with an
    /// engine of that name (`portable` to all three, `mulx` to DH).
    static func forcedEngines(_ text: String, candidates: [EngineCandidate]) -> (forced: [CryptoPrimitive: String], problems: [String]) {
        var forced: [CryptoPrimitive: String] = [:]
        var problems: [String] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { String($0).lowercased() }
            if parts.count == 2 {
                guard let primitive = CryptoPrimitive(rawValue: parts[0]) else {
                    problems.append("SPIPED_CRYPTO_ENGINE: unknown primitive \(parts[0]) (sha256, aes256 or dh)")
                    continue
                }
                forced[primitive] = parts[1]
            } else {
                let matching = Set(candidates.filter { $0.name == parts[0] }.map(\.primitive))
                if matching.isEmpty {
                    problems.append("SPIPED_CRYPTO_ENGINE: no engine named \(parts[0]) (known: "
                                    + Set(candidates.map(\.name)).sorted().joined(separator: ", ") + ")")
                }
                for primitive in matching { forced[primitive] = parts[0] }
            }
        }
        return (forced, problems)
    }
}

/// The measured work for one engine: buffers and keys made once, one run timed per call.
private final class Workload: @unchecked Sendable {
    let primitive: CryptoPrimitive
    let backend: CryptoBackend
    /// Bytes (MB figures) or operations (DH) one run does.
    let unitsPerRun: Double
    private let message = [UInt8](repeating: 0x5c, count: 16 * 1060)
    private var output = [UInt8](repeating: 0, count: 16 * 1060)
    private let key: AES256Key?
    private let exponent = DHPrivateExponent(bigEndianBytes: [UInt8](repeating: 0xa7, count: 32))
    /// 2^x mod p for some x: a valid peer value below p.
    private let peer: [UInt8]

    init(primitive: CryptoPrimitive, backend: CryptoBackend) {
        self.primitive = primitive
        self.backend = backend
        key = try? AES256Key(key: [UInt8](repeating: 0x3a, count: 32), backend: backend)
        peer = DHPrivateExponent(bigEndianBytes: [0x35, 0x71]).publicValue(backend: .portable)
        switch primitive {
        case .sha256: unitsPerRun = 16 * 1060 / 1_000_000
        case .aes256: unitsPerRun = 8 * 1060 / 1_000_000
        case .diffieHellman: unitsPerRun = 1
        }
    }

    /// Thread CPU seconds of one run.
    func timeOneRun() -> Double {
        let start = threadCPUSeconds()
        switch primitive {
        case .sha256:
            // HMAC inner hashes of 16 packet-sized messages in one batch (the packet layer's batch), as the packet layer
            // hashes a batch of packets (groups of the engine's lanes, then pairs, singles).
            message.withUnsafeBytes { bytes in
                output.withUnsafeMutableBytes { digests in
                    withUnsafeTemporaryAllocation(of: SHA256.self, capacity: 16) { hashes in
                        for index in 0..<16 { (hashes.baseAddress! + index).initialize(to: SHA256(backend: backend)) }
                        withUnsafeTemporaryAllocation(of: UnsafeRawPointer.self, capacity: 16) { inputs in
                            for index in 0..<16 { inputs[index] = bytes.baseAddress! + index * 1060 }
                            SHA256.update(hashes, UnsafeBufferPointer(inputs), byteCount: 1060)
                        }
                        withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer.self, capacity: 16) { outputs in
                            for index in 0..<16 { outputs[index] = digests.baseAddress! + index * 32 }
                            SHA256.finalize(hashes, into: UnsafeBufferPointer(outputs))
                        }
                        _ = hashes.deinitialize()
                    }
                }
            }
        case .aes256:
            message.withUnsafeBytes { bytes in
                output.withUnsafeMutableBytes { out in
                    for packet in 0..<8 {
                        key?.spipedCTRXor(packetNumber: UInt64(packet), input: bytes.baseAddress! + packet * 1060,
                                          output: out.baseAddress! + packet * 1060, count: 1060)
                    }
                }
            }
        case .diffieHellman:
            let secret = try? exponent.sharedSecret(peerPublicValue: peer, requireForwardSecrecy: true, backend: backend)
            output[0] = secret?.first ?? 0
        }
        return threadCPUSeconds() - start
    }

    private func threadCPUSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
