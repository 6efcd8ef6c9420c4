import Foundation
import Glibc
import SpipedProxy
import SpipedSystem
import Synchronization
import XCTest

/// Counters, the Prometheus exposition, the HTTP request parser and the metrics server.
final class MetricsTests: XCTestCase {
    // MARK: Counters and registry

    func testCountersCountAndEnumsFitTheirStorage() {
        let metrics = PipeMetrics()
        XCTAssertFalse(metrics.isListening)
        metrics.connectionOpened()
        metrics.connectionOpened()
        metrics.connectionClosed(.reset)
        metrics.handshakeFailed(.authentication)
        metrics.handshakeFailed(.other)
        metrics.targetConnectFailed()
        metrics.addBytes(10, direction: .sourceToTarget)
        metrics.addBytes(-5, direction: .sourceToTarget)
        metrics.addBytes(7, direction: .targetToSource)
        XCTAssertEqual(metrics.connectionsOpen, 1)
        XCTAssertEqual(metrics.connectionsTotal, 2)
        XCTAssertEqual(metrics.connectionsClosedCount(.reset), 1)
        XCTAssertEqual(metrics.connectionsClosedCount(.closed), 0)
        XCTAssertEqual(metrics.handshakeFailureCount(.authentication), 1)
        XCTAssertEqual(metrics.handshakeFailureCount(.other), 1)
        XCTAssertEqual(metrics.targetConnectFailureCount, 1)
        XCTAssertEqual(metrics.byteCount(.sourceToTarget), 10, "a negative count adds nothing")
        XCTAssertEqual(metrics.byteCount(.targetToSource), 7)
        // The last case of every label enum has its own slot (a too-small array would trap here).
        metrics.handshakeFailed(HandshakeFailureReason.allCases.last!)
        metrics.connectionClosed(ConnectionEndCause.allCases.last!)
        XCTAssertEqual(HandshakeFailureReason.allCases.map(\.rawValue), Array(0..<HandshakeFailureReason.allCases.count))
        XCTAssertEqual(ConnectionEndCause.allCases.map(\.rawValue), Array(0..<ConnectionEndCause.allCases.count))
        XCTAssertEqual(PipeMetrics.handshakeBucketLabels.count, PipeMetrics.handshakeBucketBoundsNanoseconds.count + 1)
    }

    func testCountersAreExactUnderConcurrentUpdates() throws {
        let metrics = PipeMetrics()
        let threads = try (0..<4).map { _ in
            try SystemThread(name: "counter-test") {
                for _ in 0..<50_000 {
                    metrics.connectionOpened()
                    metrics.addBytes(3, direction: .targetToSource)
                    metrics.handshakeSucceeded(durationNanoseconds: 2_000_000)
                    metrics.connectionClosed()
                }
            }
        }
        threads.forEach { $0.join() }
        XCTAssertEqual(metrics.connectionsTotal, 200_000)
        XCTAssertEqual(metrics.connectionsOpen, 0)
        XCTAssertEqual(metrics.connectionsClosedCount(.closed), 200_000)
        XCTAssertEqual(metrics.byteCount(.targetToSource), 600_000)
        XCTAssertEqual(metrics.handshakeDurations.count, 200_000)
        XCTAssertEqual(metrics.handshakeDurations.sumNanoseconds, 400_000_000_000)
    }

    func testRegistryKeepsCountersByNameAcrossReloads() {
        let registry = MetricsRegistry(version: "1.6.4")
        let redis = registry.metrics(forPipe: "redis", mode: .encrypt)
        redis.connectionOpened()
        let web = registry.metrics(forPipe: "web", mode: .decrypt)
        XCTAssertTrue(registry.metrics(forPipe: "redis", mode: .encrypt) === redis, "same pipe, same counters")
        XCTAssertEqual(registry.pipes.map(\.name), ["redis", "web"])
        // A reload that drops "web", keeps "redis" (now decrypt) and adds "db".
        registry.retain(pipes: ["redis", "db"])
        XCTAssertTrue(registry.metrics(forPipe: "redis", mode: .decrypt) === redis)
        _ = registry.metrics(forPipe: "db", mode: .decrypt)
        XCTAssertEqual(registry.pipes.map(\.name), ["redis", "db"])
        XCTAssertEqual(registry.pipes.first?.mode, .decrypt)
        XCTAssertEqual(registry.pipes.first?.metrics.connectionsTotal, 1)
        XCTAssertFalse(registry.metrics(forPipe: "web", mode: .decrypt) === web, "a removed pipe starts again at zero")
        XCTAssertEqual(registry.pipesNotListening, ["redis", "db", "web"])
        redis.setListening(true)
        XCTAssertEqual(registry.pipesNotListening, ["db", "web"])
    }

    // MARK: Exposition

    func testExpositionOfOneDecryptPipeIsExact() {
        let registry = MetricsRegistry(version: "1.6.4")
        let metrics = registry.metrics(forPipe: "redis", mode: .decrypt)
        metrics.setListening(true)
        for _ in 0..<3 { metrics.connectionOpened() }
        metrics.connectionClosed(.closed)
        metrics.connectionClosed(.handshakeFailed)
        metrics.handshakeFailed(.authentication)
        metrics.targetConnectFailed()
        metrics.addBytes(1234, direction: .sourceToTarget)
        metrics.addBytes(56, direction: .targetToSource)
        metrics.handshakeSucceeded(durationNanoseconds: 3_000_000)
        metrics.handshakeSucceeded(durationNanoseconds: 40_000_000)
        let labels = #"pipe="redis",mode="decrypt""#
        let expected = """
            # HELP spiped_build_info Always 1; the version label names this spiped build.
            # TYPE spiped_build_info gauge
            spiped_build_info{version="1.6.4"} 1
            # HELP spiped_pipe_listening Whether the pipe's listening socket is open (1) or not (0).
            # TYPE spiped_pipe_listening gauge
            spiped_pipe_listening{\(labels)} 1
            # HELP spiped_connections_open Connections open now.
            # TYPE spiped_connections_open gauge
            spiped_connections_open{\(labels)} 1
            # HELP spiped_connections_total Connections accepted.
            # TYPE spiped_connections_total counter
            spiped_connections_total{\(labels)} 3
            # HELP spiped_connections_closed_total Connections ended, by cause.
            # TYPE spiped_connections_closed_total counter
            spiped_connections_closed_total{\(labels),cause="closed"} 1
            spiped_connections_closed_total{\(labels),cause="target_connect_failed"} 0
            spiped_connections_closed_total{\(labels),cause="handshake_failed"} 1
            spiped_connections_closed_total{\(labels),cause="timeout"} 0
            spiped_connections_closed_total{\(labels),cause="reset"} 0
            spiped_connections_closed_total{\(labels),cause="protocol_error"} 0
            spiped_connections_closed_total{\(labels),cause="shutdown"} 0
            spiped_connections_closed_total{\(labels),cause="other"} 0
            # HELP spiped_handshake_failures_total Handshakes that failed, by reason (authentication: a different key or not a spiped peer).
            # TYPE spiped_handshake_failures_total counter
            spiped_handshake_failures_total{\(labels),reason="authentication"} 1
            spiped_handshake_failures_total{\(labels),reason="forward_secrecy_required"} 0
            spiped_handshake_failures_total{\(labels),reason="peer_closed"} 0
            spiped_handshake_failures_total{\(labels),reason="timeout"} 0
            spiped_handshake_failures_total{\(labels),reason="other"} 0
            # HELP spiped_target_connect_failures_total Connections to the target that failed.
            # TYPE spiped_target_connect_failures_total counter
            spiped_target_connect_failures_total{\(labels)} 1
            # HELP spiped_bytes_total Payload (plaintext) bytes forwarded, by direction.
            # TYPE spiped_bytes_total counter
            spiped_bytes_total{\(labels),direction="source_to_target"} 1234
            spiped_bytes_total{\(labels),direction="target_to_source"} 56
            # HELP spiped_handshake_duration_seconds Time taken by successful handshakes.
            # TYPE spiped_handshake_duration_seconds histogram
            spiped_handshake_duration_seconds_bucket{\(labels),le="0.001"} 0
            spiped_handshake_duration_seconds_bucket{\(labels),le="0.0025"} 0
            spiped_handshake_duration_seconds_bucket{\(labels),le="0.005"} 1
            spiped_handshake_duration_seconds_bucket{\(labels),le="0.01"} 1
            spiped_handshake_duration_seconds_bucket{\(labels),le="0.025"} 1
            spiped_handshake_duration_seconds_bucket{\(labels),le="0.05"} 2
            spiped_handshake_duration_seconds_bucket{\(labels),le="0.1"} 2
            spiped_handshake_duration_seconds_bucket{\(labels),le="0.25"} 2
            spiped_handshake_duration_seconds_bucket{\(labels),le="0.5"} 2
            spiped_handshake_duration_seconds_bucket{\(labels),le="1"} 2
            spiped_handshake_duration_seconds_bucket{\(labels),le="2.5"} 2
            spiped_handshake_duration_seconds_bucket{\(labels),le="5"} 2
            spiped_handshake_duration_seconds_bucket{\(labels),le="+Inf"} 2
            spiped_handshake_duration_seconds_sum{\(labels)} 0.043
            spiped_handshake_duration_seconds_count{\(labels)} 2
            # HELP spiped_pool_connections Encrypt pipes: handshaken connections waiting in the pool.
            # TYPE spiped_pool_connections gauge
            # HELP spiped_pool_hits_total Encrypt pipes: accepted connections served from the pool.
            # TYPE spiped_pool_hits_total counter
            # HELP spiped_pool_misses_total Encrypt pipes: accepted connections that found the pool empty.
            # TYPE spiped_pool_misses_total counter
            # HELP spiped_pool_discarded_total Encrypt pipes: pooled connections closed unused.
            # TYPE spiped_pool_discarded_total counter

            """
        let rendered = PrometheusExposition.render(registry)
        XCTAssertEqual(rendered, expected)
        if rendered != expected {
            for (got, want) in zip(rendered.split(separator: "\n"), expected.split(separator: "\n")) where got != want {
                XCTFail("first difference:\n got: \(got)\nwant: \(want)")
                break
            }
        }
    }

    func testHistogramBucketsAreCumulativeWithInclusiveBounds() {
        let metrics = PipeMetrics()
        for nanoseconds: UInt64 in [0, 500_000, 1_000_000, 1_000_001, 5_000_000_000, 5_000_000_001, 7_000_000_000] {
            metrics.handshakeSucceeded(durationNanoseconds: nanoseconds)
        }
        let histogram = metrics.handshakeDurations
        XCTAssertEqual(histogram.cumulativeCounts, [3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 7])
        XCTAssertEqual(histogram.count, 7)
        XCTAssertEqual(histogram.sumNanoseconds, 17_002_500_002)
        let registry = MetricsRegistry(version: "x")
        let pipe = registry.metrics(forPipe: "p", mode: .encrypt)
        for nanoseconds: UInt64 in [0, 500_000, 1_000_000, 1_000_001, 5_000_000_000, 5_000_000_001, 7_000_000_000] {
            pipe.handshakeSucceeded(durationNanoseconds: nanoseconds)
        }
        let text = PrometheusExposition.render(registry)
        XCTAssertTrue(text.contains(#"spiped_handshake_duration_seconds_bucket{pipe="p",mode="encrypt",le="0.001"} 3"#))
        XCTAssertTrue(text.contains(#"spiped_handshake_duration_seconds_bucket{pipe="p",mode="encrypt",le="+Inf"} 7"#))
        XCTAssertTrue(text.contains(#"spiped_handshake_duration_seconds_sum{pipe="p",mode="encrypt"} 17.002500002"#))
        XCTAssertTrue(text.contains(#"spiped_pool_hits_total{pipe="p",mode="encrypt"} 0"#), "encrypt pipes have pool metrics")
    }

    func testLabelValuesAreEscaped() {
        XCTAssertEqual(PrometheusExposition.escapeLabelValue("plain"), "plain")
        XCTAssertEqual(PrometheusExposition.escapeLabelValue(#"a"b\c"# + "\nd"), #"a\"b\\c\nd"#)
        let registry = MetricsRegistry(version: "1.6.4\"")
        registry.metrics(forPipe: "we\"ird\\\nname", mode: .decrypt).connectionOpened()
        let text = PrometheusExposition.render(registry)
        XCTAssertTrue(text.contains(#"spiped_build_info{version="1.6.4\""} 1"#))
        XCTAssertTrue(text.contains(#"spiped_connections_total{pipe="we\"ird\\\nname",mode="decrypt"} 1"#))
        XCTAssertFalse(text.contains("ird\\\n"), "no raw newline inside a label")
    }

    func testSecondsAreExactDecimals() {
        let registry = MetricsRegistry(version: "v")
        let pipe = registry.metrics(forPipe: "p", mode: .decrypt)
        let text = { PrometheusExposition.render(registry).split(separator: "\n").first { $0.hasPrefix("spiped_handshake_duration_seconds_sum") } }
        XCTAssertEqual(text(), #"spiped_handshake_duration_seconds_sum{pipe="p",mode="decrypt"} 0"#)
        pipe.handshakeSucceeded(durationNanoseconds: 3_000_000_001)
        XCTAssertEqual(text(), #"spiped_handshake_duration_seconds_sum{pipe="p",mode="decrypt"} 3.000000001"#)
        pipe.handshakeSucceeded(durationNanoseconds: 999_999_999)
        XCTAssertEqual(text(), #"spiped_handshake_duration_seconds_sum{pipe="p",mode="decrypt"} 4"#)
    }

    /// Debian's `promtool check metrics` (from the prometheus package) lints the exposition.
    func testPromtoolAcceptsTheExposition() throws {
        guard let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("note: promtool not installed (apt-get install prometheus); skipping the promtool check")
            throw XCTSkip("promtool not installed")
        }
        let registry = MetricsRegistry(version: "1.6.4")
        for (index, name) in ["redis", "web \"quoted\"", "back\\slash\nnewline", "[127.0.0.1]:8025"].enumerated() {
            let pipe = registry.metrics(forPipe: name, mode: index % 2 == 0 ? .encrypt : .decrypt)
            pipe.setListening(true)
            pipe.connectionOpened()
            pipe.handshakeSucceeded(durationNanoseconds: UInt64(index) * 7_000_000)
            pipe.handshakeFailed(.timeout)
            pipe.addBytes(index * 1000, direction: .sourceToTarget)
            pipe.poolHit()
            pipe.setPoolSize(index)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool)
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(PrometheusExposition.render(registry).utf8))
        try input.fileHandleForWriting.close()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "promtool check metrics:\n\(report)")
        XCTAssertEqual(report.trimmingCharacters(in: .whitespacesAndNewlines), "", "promtool has remarks:\n\(report)")
    }

    // MARK: HTTP request parser

    private func parse(_ text: String, limits: HTTPRequestLimits = HTTPRequestLimits()) -> HTTPRequestParseState {
        var parser = HTTPRequestParser(limits: limits)
        return parser.consume(Array(text.utf8)).state
    }

    private func failure(_ text: String, limits: HTTPRequestLimits = HTTPRequestLimits()) -> HTTPRequestError? {
        if case .failed(let error) = parse(text, limits: limits) { return error }
        return nil
    }

    func testParserReadsAGoodRequestInAnySplit() {
        let text = "GET /metrics?x=1 HTTP/1.1\r\nHost: localhost:9090\r\nAccept:text/plain;q=0.9 \t\r\nX-Empty:\r\n\r\nBODY"
        let bytes = Array(text.utf8)
        let expected = HTTPRequestHead(method: "GET", target: "/metrics?x=1", minorVersion: 1, headers: [
            HTTPHeaderField(name: "Host", value: "localhost:9090"),
            HTTPHeaderField(name: "Accept", value: "text/plain;q=0.9"),
            HTTPHeaderField(name: "X-Empty", value: ""),
        ])
        var whole = HTTPRequestParser()
        let result = whole.consume(bytes)
        XCTAssertEqual(result.state, .complete(expected))
        XCTAssertEqual(result.consumed, bytes.count - 4, "the body is not consumed")
        XCTAssertEqual(whole.headByteCount, bytes.count - 4)
        XCTAssertEqual(expected.path, "/metrics")
        XCTAssertEqual(expected.values(forHeader: "HOST"), ["localhost:9090"])
        // Byte by byte: incomplete until the last byte of the head.
        var stepwise = HTTPRequestParser()
        for (index, byte) in bytes.enumerated() {
            let (state, consumed) = stepwise.consume([byte])
            if index < bytes.count - 5 {
                XCTAssertEqual(state, .incomplete)
                XCTAssertEqual(consumed, 1)
            } else if index == bytes.count - 5 {
                XCTAssertEqual(state, .complete(expected))
            } else {
                XCTAssertEqual(consumed, 0, "nothing is consumed after the head")
                XCTAssertEqual(state, .complete(expected))
            }
        }
        // Every two-way split.
        for cut in 0...bytes.count {
            var parser = HTTPRequestParser()
            _ = parser.consume(bytes[..<cut])
            XCTAssertEqual(parser.consume(bytes[cut...]).state, .complete(expected), "split at \(cut)")
        }
    }

    func testParserAcceptsHTTP10BareLineFeedsAndLeadingEmptyLines() {
        XCTAssertEqual(parse("GET / HTTP/1.0\r\n\r\n"), .complete(HTTPRequestHead(method: "GET", target: "/", minorVersion: 0, headers: [])))
        XCTAssertEqual(parse("\r\n\nGET /healthz HTTP/1.1\nHost: x\n\n"),
                       .complete(HTTPRequestHead(method: "GET", target: "/healthz", minorVersion: 1, headers: [HTTPHeaderField(name: "Host", value: "x")])))
        XCTAssertEqual(HTTPRequestHead(method: "GET", target: "http://h:1/metrics?a", minorVersion: 1, headers: []).path, "/metrics")
        XCTAssertEqual(HTTPRequestHead(method: "GET", target: "http://h:1", minorVersion: 1, headers: []).path, "/")
        XCTAssertEqual(HTTPRequestHead(method: "OPTIONS", target: "*", minorVersion: 1, headers: []).path, "*")
    }

    func testParserWaitsForMore() {
        for partial in ["", "G", "GET /metrics HTTP/1.1", "GET /metrics HTTP/1.1\r", "GET / HTTP/1.1\r\nHost: x\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r"] {
            XCTAssertEqual(parse(partial), .incomplete, partial.debugDescription)
        }
    }

    func testParserRefusesMalformedRequests() {
        let host = "Host: x\r\n"
        let cases: [(String, HTTPRequestError)] = [
            ("GET / HTTP/1.1\rHost: x\r\n\r\n", .bareCarriageReturn),
            ("GET  / HTTP/1.1\r\n\r\n", .malformedRequestLine),
            ("GET / HTTP/1.1 \r\n\r\n", .malformedRequestLine),
            ("GET /\r\n\r\n", .malformedRequestLine),
            ("G(T / HTTP/1.1\r\n\r\n", .malformedRequestLine),
            ("GET /a\u{7f} HTTP/1.1\r\n\r\n", .malformedRequestLine),
            ("GET /\u{e9} HTTP/1.1\r\n\r\n", .malformedRequestLine),
            ("GET / http/1.1\r\n\r\n", .malformedRequestLine),
            ("GET / HTTP/1.10\r\n\r\n", .malformedRequestLine),
            ("GET / HTTP/11\r\n\r\n", .malformedRequestLine),
            ("GET / HTTP/2.0\r\n\r\n", .unsupportedVersion),
            ("GET / HTTP/0.9\r\n\r\n", .unsupportedVersion),
            ("GET / HTTP/1.1\r\n \(host)\r\n", .obsoleteLineFolding),
            ("GET / HTTP/1.1\r\n\(host)X-A: 1\r\n\tcontinued\r\n\r\n", .obsoleteLineFolding),
            ("GET / HTTP/1.1\r\n\(host)NoColon\r\n\r\n", .malformedHeader),
            ("GET / HTTP/1.1\r\n\(host)Name : v\r\n\r\n", .malformedHeader),
            ("GET / HTTP/1.1\r\n\(host): v\r\n\r\n", .malformedHeader),
            ("GET / HTTP/1.1\r\n\(host)Na[me: v\r\n\r\n", .malformedHeader),
            ("GET / HTTP/1.1\r\n\(host)X: a\u{1}b\r\n\r\n", .invalidHeaderValue),
            ("GET / HTTP/1.1\r\n\(host)X: a\u{7f}\r\n\r\n", .invalidHeaderValue),
            ("GET / HTTP/1.1\r\n\(host)X: a\0b\r\n\r\n", .invalidHeaderValue),
            ("GET / HTTP/1.1\r\n\r\n", .missingOrRepeatedHost),
            ("GET / HTTP/1.1\r\n\(host)host: y\r\n\r\n", .missingOrRepeatedHost),
        ]
        for (text, error) in cases {
            XCTAssertEqual(failure(text), error, text.debugDescription)
        }
        XCTAssertEqual(HTTPRequestError.unsupportedVersion.statusCode, 505)
        XCTAssertEqual(HTTPRequestError.obsoleteLineFolding.statusCode, 400)
    }

    func testParserEnforcesItsLimits() {
        let limits = HTTPRequestLimits()
        let longTarget = "/" + String(repeating: "a", count: limits.maximumLineBytes)
        XCTAssertEqual(failure("GET \(longTarget) HTTP/1.1\r\n\r\n"), .requestLineTooLong)
        XCTAssertEqual(HTTPRequestError.requestLineTooLong.statusCode, 414)
        let longValue = String(repeating: "v", count: limits.maximumLineBytes)
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nX: \(longValue)\r\n\r\n"), .headerLineTooLong)
        // Exactly at the line limit is fine.
        let fitting = "X: " + String(repeating: "v", count: limits.maximumLineBytes - 3)
        XCTAssertNotNil(parse("GET / HTTP/1.1\r\nHost: h\r\n\(fitting)\r\n\r\n").completeHead)

        let field = "X: 1\r\n"
        let many = String(repeating: field, count: limits.maximumHeaderCount - 1)
        XCTAssertNotNil(parse("GET / HTTP/1.1\r\nHost: h\r\n\(many)\r\n").completeHead, "64 fields fit")
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: h\r\n\(many)\(field)\r\n"), .tooManyHeaders)

        // 8 KiB in total: three 3000-byte fields do not fit, and it fails at byte 8193 even though
        // the head never ends.
        let big = "X: " + String(repeating: "b", count: 3000) + "\r\n"
        XCTAssertEqual(failure("GET / HTTP/1.1\r\n" + big + big + big), .headTooLarge)
        var parser = HTTPRequestParser()
        let endless = Array(("GET / HTTP/1.1\r\n" + big + big + big).utf8)
        let result = parser.consume(endless)
        XCTAssertEqual(result.consumed, limits.maximumHeadBytes + 1)
        XCTAssertEqual(parser.consume(Array("\r\n\r\n".utf8)).consumed, 0, "a failed parser consumes nothing more")
        XCTAssertEqual(parser.state, .failed(.headTooLarge))
        // Empty lines before the request line count too.
        XCTAssertEqual(failure(String(repeating: "\r\n", count: 5000)), .headTooLarge)
        // Small custom limits.
        XCTAssertEqual(failure("GET / HTTP/1.0\r\n\r\n", limits: HTTPRequestLimits(maximumHeadBytes: 17)), .headTooLarge)
        XCTAssertNotNil(parse("GET / HTTP/1.0\r\n\r\n", limits: HTTPRequestLimits(maximumHeadBytes: 18)).completeHead)
    }

    // MARK: Responses

    private func answer(_ method: String, _ target: String, _ registry: MetricsRegistry) -> MetricsHTTPResponse {
        MetricsHTTPResponse.answer(HTTPRequestHead(method: method, target: target, minorVersion: 1, headers: []), registry: registry)
    }

    func testRoutingAndHealth() {
        let registry = MetricsRegistry(version: "1.6.4")
        XCTAssertEqual(answer("GET", "/nope", registry).statusCode, 404)
        XCTAssertEqual(answer("POST", "/nope", registry).statusCode, 404)
        let notAllowed = answer("POST", "/metrics", registry)
        XCTAssertEqual(notAllowed.statusCode, 405)
        XCTAssertEqual(notAllowed.headers.first { $0.name == "Allow" }?.value, "GET, HEAD")
        XCTAssertEqual(answer("get", "/healthz", registry).statusCode, 405, "methods are case-sensitive")

        XCTAssertEqual(answer("GET", "/healthz", registry).statusCode, 503, "no pipes yet")
        let redis = registry.metrics(forPipe: "redis", mode: .encrypt)
        _ = registry.metrics(forPipe: "web", mode: .decrypt)
        redis.setListening(true)
        let down = answer("GET", "/healthz", registry)
        XCTAssertEqual(down.statusCode, 503)
        XCTAssertEqual(String(decoding: down.body, as: UTF8.self), "not listening: web\n")
        registry.metrics(forPipe: "web", mode: .decrypt).setListening(true)
        let up = answer("GET", "/healthz?verbose", registry)
        XCTAssertEqual(up.statusCode, 200)
        XCTAssertEqual(String(decoding: up.body, as: UTF8.self), "ok\n")

        let metrics = answer("GET", "/metrics", registry)
        XCTAssertEqual(metrics.statusCode, 200)
        XCTAssertEqual(metrics.headers.first { $0.name == "Content-Type" }?.value, "text/plain; version=0.0.4; charset=utf-8")
        XCTAssertEqual(String(decoding: metrics.body, as: UTF8.self), PrometheusExposition.render(registry))
        let head = answer("HEAD", "/metrics", registry)
        let serialized = String(decoding: head.serialized, as: UTF8.self)
        XCTAssertTrue(serialized.hasSuffix("\r\n\r\n"), "HEAD sends no body")
        XCTAssertTrue(serialized.contains("Content-Length: \(metrics.body.count)\r\n"))
        XCTAssertTrue(serialized.hasPrefix("HTTP/1.1 200 OK\r\n"))
        XCTAssertTrue(serialized.contains("Connection: close\r\n"))
        XCTAssertEqual(String(decoding: MetricsHTTPResponse.refusal(.headTooLarge).serialized, as: UTF8.self),
                       "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       + "Content-Length: 32\r\nConnection: close\r\n\r\nrequest header fields too large\n")
    }

    // MARK: Server

    private func loopback(_ port: UInt16 = 0) throws -> SocketAddress {
        try AddressResolver.resolve(.ipv4("127.0.0.1", port: port))[0]
    }

    private func exchange(_ server: MetricsServer, _ request: String) throws -> MetricsClient.Reply {
        try MetricsClient.exchange(server, request)
    }

    private func reply(_ bytes: [UInt8]) throws -> MetricsClient.Reply {
        try MetricsClient.reply(bytes)
    }

    func testServerAnswersMetricsHealthAndErrors() throws {
        let registry = MetricsRegistry(version: "1.6.4")
        let pipe = registry.metrics(forPipe: "redis", mode: .decrypt)
        pipe.connectionOpened()
        let server = try MetricsServer(address: loopback(), registry: registry)
        defer { server.stop() }
        XCTAssertNotEqual(server.localAddress.port, 0)

        let metrics = try exchange(server, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n")
        XCTAssertEqual(metrics.statusCode, 200)
        XCTAssertTrue(metrics.head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"))
        XCTAssertTrue(metrics.head.contains("Connection: close"))
        XCTAssertEqual(metrics.body, PrometheusExposition.render(registry))
        XCTAssertTrue(metrics.body.contains(#"spiped_connections_total{pipe="redis",mode="decrypt"} 1"#))

        XCTAssertEqual(try exchange(server, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n").statusCode, 503)
        pipe.setListening(true)
        let healthy = try exchange(server, "GET /healthz HTTP/1.0\r\n\r\n")
        XCTAssertEqual(healthy.statusCode, 200)
        XCTAssertEqual(healthy.body, "ok\n")
        XCTAssertEqual(try exchange(server, "GET /other HTTP/1.1\r\nHost: h\r\n\r\n").statusCode, 404)
        let post = try exchange(server, "POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        XCTAssertEqual(post.statusCode, 405)
        XCTAssertTrue(post.head.contains("Allow: GET, HEAD"))
        XCTAssertEqual(try exchange(server, "GARBAGE\r\n\r\n").statusCode, 400)
        XCTAssertEqual(try exchange(server, "GET / HTTP/1.1\r\n folded\r\n\r\n").statusCode, 400)
        XCTAssertEqual(try exchange(server, "GET / HTTP/3.0\r\n\r\n").statusCode, 505)
        XCTAssertEqual(try exchange(server, "GET /metrics HTTP/1.1\r\nHost: h\r\n" + String(repeating: "X: 0123456789\r\n", count: 600)).statusCode, 431)
        // A client sending its request one byte at a time is still answered.
        let client = try TestNetwork.connect(to: server.localAddress, receiveTimeout: 5)
        defer { client.close() }
        for byte in "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n".utf8 { try TestNetwork.send([byte], to: client) }
        XCTAssertEqual(try reply(TestNetwork.receiveAll(from: client)).statusCode, 200)
    }

    func testServerClosesASilentClientAfterTheTimeout() throws {
        let server = try MetricsServer(address: loopback(), registry: MetricsRegistry(version: "v"),
                                       settings: MetricsServerSettings(requestTimeoutMilliseconds: 300))
        defer { server.stop() }
        let silent = try TestNetwork.connect(to: server.localAddress)
        defer { silent.close() }
        let partial = try TestNetwork.connect(to: server.localAddress)
        defer { partial.close() }
        try TestNetwork.send(Array("GET /metrics HTTP/1.1\r\nHost: h\r\n".utf8), to: partial)
        let started = MonotonicClock.nanoseconds
        XCTAssertTrue(TestNetwork.closedByPeer(silent, within: 3), "a client that sends nothing is closed")
        let elapsed = Double(MonotonicClock.nanoseconds - started) / 1e9
        XCTAssertGreaterThan(elapsed, 0.2, "not before the timeout")
        XCTAssertTrue(TestNetwork.closedByPeer(partial, within: 3), "a client that never finishes its head is closed")
        // The server still works afterwards.
        XCTAssertEqual(try exchange(server, "GET /healthz HTTP/1.0\r\n\r\n").statusCode, 503)
    }

    func testServerDropsTheOldestClientBeyondItsLimitAndServesMany() throws {
        let registry = MetricsRegistry(version: "v")
        registry.metrics(forPipe: "p", mode: .decrypt).setListening(true)
        let server = try MetricsServer(address: loopback(), registry: registry,
                                       settings: MetricsServerSettings(maximumClients: 4, requestTimeoutMilliseconds: 10_000))
        defer { server.stop() }
        var idle: [FileDescriptor] = []
        defer { idle.forEach { $0.close() } }
        for _ in 0..<4 {
            idle.append(try TestNetwork.connect(to: server.localAddress))
            usleep(20_000)  // let the server accept them in this order
        }
        // A fifth client pushes out the first; the others stay.
        let fresh = try exchange(server, "GET /healthz HTTP/1.0\r\n\r\n")
        XCTAssertEqual(fresh.statusCode, 200)
        XCTAssertTrue(TestNetwork.closedByPeer(idle[0], within: 2), "the oldest client was dropped")
        TestNetwork.setReceiveTimeout(idle[3], seconds: 0.2)
        var byte: [UInt8] = [0]
        let result = byte.withUnsafeMutableBytes { idle[3].readResult(into: $0) }
        XCTAssertEqual(result.failureErrno, .wouldBlock, "the newest idle client is still open")

        // Many clients at once (within the default limit of 32), each answered in full.
        let busy = try MetricsServer(address: loopback(), registry: registry)
        defer { busy.stop() }
        let answered = Mutex(0)
        let threads = try (0..<8).map { _ in
            try SystemThread(name: "metrics-client") {
                for _ in 0..<25 {
                    if let reply = try? MetricsClient.exchange(busy, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n"), reply.statusCode == 200,
                       reply.body.hasSuffix("# TYPE spiped_pool_discarded_total counter\n") {
                        answered.withLock { $0 += 1 }
                    }
                }
            }
        }
        threads.forEach { $0.join() }
        XCTAssertEqual(answered.withLock { $0 }, 200)
    }

    func testServerStopsAndReleasesItsPort() throws {
        let server = try MetricsServer(address: loopback(), registry: MetricsRegistry(version: "v"))
        let address = server.localAddress
        let open = try TestNetwork.connect(to: address)
        defer { open.close() }
        server.stop()
        server.stop()
        XCTAssertTrue(TestNetwork.closedByPeer(open, within: 2), "clients are closed on stop")
        XCTAssertThrowsError(try TestNetwork.connect(to: address), "nothing listens after stop")
        // The same port can be bound again at once.
        let again = try MetricsServer(address: address, registry: MetricsRegistry(version: "v"))
        defer { again.stop() }
        XCTAssertThrowsError(try MetricsServer(address: again.localAddress, registry: MetricsRegistry(version: "v"))) { error in
            XCTAssertEqual((error as? SystemError)?.operation, "bind")
            XCTAssertEqual((error as? SystemError)?.errno, .addressInUse)
        }
    }
}

/// A blocking HTTP client for the server tests: one request per connection.
private enum MetricsClient {
    struct Reply {
        let statusCode: Int
        let head: String
        let body: String
    }

    /// Sends `request` on a new connection and reads the reply until the server closes.
    static func exchange(_ server: MetricsServer, _ request: String) throws -> Reply {
        let client = try TestNetwork.connect(to: server.localAddress, receiveTimeout: 5)
        defer { client.close() }
        try TestNetwork.send(Array(request.utf8), to: client)
        return try reply(TestNetwork.receiveAll(from: client))
    }

    static func reply(_ bytes: [UInt8]) throws -> Reply {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw TestNetwork.Failure(description: "no head in \(text.debugDescription)") }
        let head = String(text[..<split.lowerBound])
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? -1
        return Reply(statusCode: status, head: head, body: String(text[split.upperBound...]))
    }
}

extension HTTPRequestParseState {
    fileprivate var completeHead: HTTPRequestHead? {
        if case .complete(let head) = self { return head }
        return nil
    }
}

extension Result {
    fileprivate var failureErrno: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
