/// One header field of a request, as received (the name keeps its case; the value has its
/// surrounding spaces and tabs removed).
public struct HTTPHeaderField: Sendable, Equatable {
    /// The field name (a token, e.g. `Host`).
    public let name: String
    /// The field value, without leading and trailing whitespace.
    public let value: String

    /// A header field.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The request line and header fields of an HTTP/1.x request (RFC 9112 §2-5).
public struct HTTPRequestHead: Sendable, Equatable {
    /// The method token, case-sensitive (`GET`).
    public let method: String
    /// The request target as sent (`/metrics?x=1`, or an absolute URI).
    public let target: String
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 (the major version is always 1).
    public let minorVersion: Int
    /// The header fields in the order received.
    public let headers: [HTTPHeaderField]

    /// A request head.
    public init(method: String, target: String, minorVersion: Int, headers: [HTTPHeaderField]) {
        self.method = method
        self.target = target
        self.minorVersion = minorVersion
        self.headers = headers
    }

    /// The path of the target without its query: `/metrics` for `/metrics?x`, and for an
    /// absolute URI (`http://host/metrics`) the part after the authority (`/` if none).
    public var path: String {
        var rest = Substring(target)
        if !rest.hasPrefix("/"), let authority = HTTPRequestHead.indexAfterSchemeSeparator(in: rest) {
            rest = rest[authority...]
            rest = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        if let query = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<query] }
        return String(rest)
    }

    /// The index just after the first `://` in `text`, or nil. (A plain scan: the release build
    /// does not link the Regex runtime, where `firstRange(of:)` lives.)
    static func indexAfterSchemeSeparator(in text: Substring) -> Substring.Index? {
        let bytes = text.utf8
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if bytes[index...].starts(with: "://".utf8) { return bytes.index(index, offsetBy: 3) }
            bytes.formIndex(after: &index)
        }
        return nil
    }

    /// The values of every header named `name` (compared without regard to ASCII case).
    public func values(forHeader name: String) -> [String] {
        let wanted = HTTPRequestHead.lowercased(name)
        return headers.filter { HTTPRequestHead.lowercased($0.name) == wanted }.map(\.value)
    }

    private static func lowercased(_ text: String) -> [UInt8] {
        text.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
    }
}

/// How large a request head may be. The defaults bound the parser to a few KiB per client.
public struct HTTPRequestLimits: Sendable, Equatable {
    /// Most bytes of the whole head, line endings and the final empty line included.
    public var maximumHeadBytes: Int
    /// Most bytes of any one line (request line or header field), line ending excluded.
    public var maximumLineBytes: Int
    /// Most header fields.
    public var maximumHeaderCount: Int

    /// 8 KiB per head, 4 KiB per line, 64 fields.
    public init(maximumHeadBytes: Int = 8192, maximumLineBytes: Int = 4096, maximumHeaderCount: Int = 64) {
        self.maximumHeadBytes = maximumHeadBytes
        self.maximumLineBytes = maximumLineBytes
        self.maximumHeaderCount = maximumHeaderCount
    }
}

/// Why a request head was refused. Each maps to the status code to answer with.
public enum HTTPRequestError: Error, Sendable, Equatable, CaseIterable {
    /// The head is longer than `maximumHeadBytes` (431).
    case headTooLarge
    /// The request line is longer than `maximumLineBytes` (414).
    case requestLineTooLong
    /// A header line is longer than `maximumLineBytes` (431).
    case headerLineTooLong
    /// More than `maximumHeaderCount` header fields (431).
    case tooManyHeaders
    /// A carriage return not followed by a line feed (400).
    case bareCarriageReturn
    /// The request line is not `method SP target SP HTTP/d.d` (400).
    case malformedRequestLine
    /// The version is well-formed but not HTTP/1.x (505).
    case unsupportedVersion
    /// A header line has no colon, an invalid name, or whitespace before the colon (400).
    case malformedHeader
    /// A header value contains a control character (400).
    case invalidHeaderValue
    /// A header line starts with whitespace: obsolete line folding, or whitespace between
    /// the request line and the first field (400, RFC 9112 §5.2 and §2.2).
    case obsoleteLineFolding
    /// An HTTP/1.1 request without exactly one `Host` field (400, RFC 9112 §3.2).
    case missingOrRepeatedHost

    /// The status code to answer with.
    public var statusCode: Int {
        switch self {
        case .headTooLarge, .headerLineTooLong, .tooManyHeaders: return 431
        case .requestLineTooLong: return 414
        case .unsupportedVersion: return 505
        case .bareCarriageReturn, .malformedRequestLine, .malformedHeader, .invalidHeaderValue,
             .obsoleteLineFolding, .missingOrRepeatedHost:
            return 400
        }
    }
}

/// Where a parser stands.
public enum HTTPRequestParseState: Sendable, Equatable {
    /// The head is not complete yet; give it more bytes.
    case incomplete
    /// The head is complete (bytes after it belong to a body or a next request).
    case complete(HTTPRequestHead)
    /// The head was refused; the parser stays in this state.
    case failed(HTTPRequestError)
}

/// A sans-I/O parser for an HTTP/1.x request head: give it bytes as they arrive, in any
/// split; it answers incomplete, complete or failed, and stops at the end of the head.
///
/// It works byte by byte, so the outcome for a byte stream does not depend on how the stream
/// was split: every limit is checked at the byte that crosses it, every line when its line
/// feed arrives. Lines end in CRLF or, leniently, a bare LF (RFC 9112 §2.2); a bare CR is an
/// error. Empty lines before the request line are skipped (counted in the head size).
public struct HTTPRequestParser: Sendable {
    /// The limits in force.
    public let limits: HTTPRequestLimits
    /// The current state (terminal once complete or failed).
    public private(set) var state: HTTPRequestParseState = .incomplete
    /// Bytes of the head consumed so far (at completion: the head's length).
    public private(set) var headByteCount = 0

    private var line: [UInt8] = []
    private var afterCarriageReturn = false
    private var requestLine: (method: String, target: String, minorVersion: Int)?
    private var headers: [HTTPHeaderField] = []

    /// A parser at the start of a head.
    public init(limits: HTTPRequestLimits = HTTPRequestLimits()) {
        self.limits = limits
        line.reserveCapacity(128)
    }

    /// Feeds `bytes`; returns the new state and how many of `bytes` belong to the head (all of
    /// them unless the head completed or failed inside them). Once complete or failed, further
    /// bytes are not consumed and the state does not change.
    @discardableResult
    public mutating func consume<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> (state: HTTPRequestParseState, consumed: Int) {
        var consumed = 0
        guard state == .incomplete else { return (state, 0) }
        for byte in bytes {
            consumed += 1
            step(byte)
            if state != .incomplete { break }
        }
        return (state, consumed)
    }

    private mutating func step(_ byte: UInt8) {
        headByteCount += 1
        if headByteCount > limits.maximumHeadBytes { return fail(.headTooLarge) }
        if afterCarriageReturn {
            afterCarriageReturn = false
            guard byte == 10 else { return fail(.bareCarriageReturn) }
            return endOfLine()
        }
        switch byte {
        case 13:
            afterCarriageReturn = true
        case 10:
            endOfLine()
        default:
            line.append(byte)
            if line.count > limits.maximumLineBytes {
                fail(requestLine == nil ? .requestLineTooLong : .headerLineTooLong)
            }
        }
    }

    private mutating func fail(_ error: HTTPRequestError) {
        state = .failed(error)
        line = []
        headers = []
    }

    private mutating func endOfLine() {
        defer { line.removeAll(keepingCapacity: true) }
        guard let request = requestLine else {
            if line.isEmpty { return }  // empty lines before the request line are skipped
            switch HTTPRequestParser.parseRequestLine(line) {
            case .success(let parsed): requestLine = parsed
            case .failure(let error): fail(error)
            }
            return
        }
        if line.isEmpty {
            let head = HTTPRequestHead(method: request.method, target: request.target,
                                       minorVersion: request.minorVersion, headers: headers)
            if request.minorVersion >= 1, head.values(forHeader: "Host").count != 1 {
                return fail(.missingOrRepeatedHost)
            }
            state = .complete(head)
            return
        }
        guard headers.count < limits.maximumHeaderCount else { return fail(.tooManyHeaders) }
        switch HTTPRequestParser.parseHeaderField(line) {
        case .success(let field): headers.append(field)
        case .failure(let error): fail(error)
        }
    }

    /// `tchar` of RFC 9110 §5.6.2: letters, digits and ``!#$%&'*+-.^_`|~``.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    private static func parseRequestLine(_ line: [UInt8]) -> Result<(method: String, target: String, minorVersion: Int), HTTPRequestError> {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.malformedRequestLine) }
        let method = parts[0], target = parts[1], version = Array(parts[2])
        guard !method.isEmpty, method.allSatisfy(isTokenCharacter) else { return .failure(.malformedRequestLine) }
        // Visible ASCII only: no controls, spaces or bytes ≥ 0x80 in a target.
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return .failure(.malformedRequestLine) }
        let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        guard version.count == 8, version.starts(with: "HTTP/".utf8), isDigit(version[5]),
              version[6] == UInt8(ascii: "."), isDigit(version[7])
        else { return .failure(.malformedRequestLine) }
        guard version[5] == UInt8(ascii: "1") else { return .failure(.unsupportedVersion) }
        return .success((String(decoding: method, as: UTF8.self), String(decoding: target, as: UTF8.self),
                         Int(version[7] - UInt8(ascii: "0"))))
    }

    private static func parseHeaderField(_ line: [UInt8]) -> Result<HTTPHeaderField, HTTPRequestError> {
        let isWhitespace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == 9 }
        if isWhitespace(line[0]) { return .failure(.obsoleteLineFolding) }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0,
              line[..<colon].allSatisfy(isTokenCharacter)
        else { return .failure(.malformedHeader) }
        var value = line[(colon + 1)...]
        while let first = value.first, isWhitespace(first) { value = value.dropFirst() }
        while let last = value.last, isWhitespace(last) { value = value.dropLast() }
        // field-vchar (VCHAR / obs-text), SP and HTAB; no other control characters, no DEL.
        guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7f || $0 == 9 }) else { return .failure(.invalidHeaderValue) }
        return .success(HTTPHeaderField(name: String(decoding: line[..<colon], as: UTF8.self),
                                        value: String(decoding: value, as: UTF8.self)))
    }
}
