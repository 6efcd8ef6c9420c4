/// An HTTP/1.1 response of the metrics server. Every response closes the connection.
public struct MetricsHTTPResponse: Sendable, Equatable {
    /// The status code (200, 404, ...).
    public let statusCode: Int
    /// Header fields besides `Content-Length` and `Connection`, which are always sent.
    public let headers: [HTTPHeaderField]
    /// The body (also sized in `Content-Length` for HEAD, which does not send it).
    public let body: [UInt8]
    /// False for HEAD: the head announces the body but does not carry it.
    public let sendsBody: Bool

    /// A response; plain text unless `headers` say otherwise.
    public init(statusCode: Int, headers: [HTTPHeaderField] = [], body: String, sendsBody: Bool = true) {
        self.statusCode = statusCode
        let hasType = headers.contains { $0.name == "Content-Type" }
        self.headers = (hasType ? [] : [HTTPHeaderField(name: "Content-Type", value: "text/plain; charset=utf-8")]) + headers
        self.body = Array(body.utf8)
        self.sendsBody = sendsBody
    }

    /// The reason phrase of `statusCode`.
    public var reasonPhrase: String { MetricsHTTPResponse.reasonPhrase(statusCode) }

    /// The reason phrase of a status code this server sends (`Not Found` for 404).
    public static func reasonPhrase(_ statusCode: Int) -> String {
        switch statusCode {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 414: return "URI Too Long"
        case 431: return "Request Header Fields Too Large"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Unknown"
        }
    }

    /// The bytes to send: status line, headers, `Content-Length`, `Connection: close`, body.
    public var serialized: [UInt8] {
        var head = "HTTP/1.1 \(statusCode) \(reasonPhrase)\r\n"
        for field in headers { head += "\(field.name): \(field.value)\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + (sendsBody ? body : [])
    }

    /// The answer to a request the parser refused (400, 414, 431 or 505).
    public static func refusal(_ error: HTTPRequestError) -> MetricsHTTPResponse {
        MetricsHTTPResponse(statusCode: error.statusCode, body: reasonPhrase(error.statusCode).lowercased() + "\n")
    }

    /// The answer to `head`: `GET /metrics` (the exposition), `GET /healthz` (200 `ok` when every
    /// pipe listens, else 503 naming the pipes that do not), HEAD of either, 405 with `Allow`
    /// for other methods on those paths, 404 for any other path.
    public static func answer(_ head: HTTPRequestHead, registry: MetricsRegistry) -> MetricsHTTPResponse {
        let path = head.path
        guard path == "/metrics" || path == "/healthz" else {
            return MetricsHTTPResponse(statusCode: 404, body: "not found\n")
        }
        guard head.method == "GET" || head.method == "HEAD" else {
            return MetricsHTTPResponse(statusCode: 405, headers: [HTTPHeaderField(name: "Allow", value: "GET, HEAD")],
                                       body: "method not allowed\n")
        }
        let sendsBody = head.method == "GET"
        let noStore = HTTPHeaderField(name: "Cache-Control", value: "no-store")
        if path == "/metrics" {
            return MetricsHTTPResponse(statusCode: 200, headers: [HTTPHeaderField(name: "Content-Type", value: PrometheusExposition.contentType), noStore],
                                       body: PrometheusExposition.render(registry), sendsBody: sendsBody)
        }
        let pipes = registry.pipes
        let down = pipes.filter { !$0.metrics.isListening }.map { PrometheusExposition.escapeLabelValue($0.name) }
        if pipes.isEmpty {
            return MetricsHTTPResponse(statusCode: 503, headers: [noStore], body: "no pipes\n", sendsBody: sendsBody)
        }
        if !down.isEmpty {
            return MetricsHTTPResponse(statusCode: 503, headers: [noStore], body: "not listening: \(down.joined(separator: ", "))\n", sendsBody: sendsBody)
        }
        return MetricsHTTPResponse(statusCode: 200, headers: [noStore], body: "ok\n", sendsBody: sendsBody)
    }
}
