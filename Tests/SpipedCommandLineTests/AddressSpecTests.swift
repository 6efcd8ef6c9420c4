import SpipedSystem
import XCTest

/// The address forms of spiped's -s/-t/-b, with the reference's split-at-the-last-colon rule.
final class AddressSpecTests: XCTestCase {
    func testAcceptedForms() throws {
        XCTAssertEqual(try AddressSpec.parse("/var/run/x.sock"), .unix(path: "/var/run/x.sock"))
        XCTAssertEqual(try AddressSpec.parse("/"), .unix(path: "/"))
        XCTAssertEqual(try AddressSpec.parse("example.com:8025"), .hostName("example.com", port: 8025))
        XCTAssertEqual(try AddressSpec.parse("[10.0.0.1]:1"), .ipv4("10.0.0.1", port: 1))
        XCTAssertEqual(try AddressSpec.parse("[::1]:65535"), .ipv6("::1", port: 65535))
        XCTAssertEqual(try AddressSpec.parse("[::ffff:1.2.3.4]:80"), .ipv6("::ffff:1.2.3.4", port: 80))
        // Split at the last colon: the host part goes to getaddrinfo as is.
        XCTAssertEqual(try AddressSpec.parse("::1:9"), .hostName("::1", port: 9))
        XCTAssertEqual(try AddressSpec.parse("127.0.0.1:9"), .hostName("127.0.0.1", port: 9))
        // strtol-style ports after a literal: leading zeros, blanks and '+' are accepted.
        XCTAssertEqual(try AddressSpec.parse("[127.0.0.1]:080"), .ipv4("127.0.0.1", port: 80))
        XCTAssertEqual(try AddressSpec.parse("[127.0.0.1]: 80"), .ipv4("127.0.0.1", port: 80))
        // Service names after a host name (from /etc/services).
        XCTAssertEqual(try AddressSpec.parse("localhost:http"), .hostName("localhost", port: 80))
    }

    func testRefusedForms() {
        func refused(_ text: String, _ expected: AddressSpecError, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try AddressSpec.parse(text), file: file, line: line) { error in
                XCTAssertEqual(error as? AddressSpecError, expected, file: file, line: line)
            }
        }
        refused("", .malformed(""))
        refused("relative/path", .missingPort("relative/path"))
        refused("127.0.0.1", .missingPort("127.0.0.1"))
        refused("[127.0.0.1]", .missingPort("[127.0.0.1]"))
        refused("[::1]", .invalidAddressLiteral("[:"))
        refused("[127.0.0.1:80", .invalidAddressLiteral("[127.0.0.1"))
        refused("[1.2.3]:80", .invalidAddressLiteral("1.2.3"))
        refused("[::g]:80", .invalidAddressLiteral("::g"))
        refused("[fe80::1%lo]:80", .invalidAddressLiteral("fe80::1%lo"))
        refused("[example.com]:80", .invalidAddressLiteral("example.com"))
        refused("[127.0.0.1]:0", .invalidPort("0"))
        refused("[127.0.0.1]:65536", .invalidPort("65536"))
        refused("[127.0.0.1]:-1", .invalidPort("-1"))
        refused("[127.0.0.1]:", .invalidPort(""))
        refused("[127.0.0.1]:0x50", .invalidPort("0x50"))
        refused("[127.0.0.1]:http", .invalidPort("http"))
        refused("[127.0.0.1]:80 ", .invalidPort("80 "))
        refused("localhost:no-such-service", .invalidPort("no-such-service"))
        refused(":80", .malformed(":80"))
        refused("/" + String(repeating: "a", count: 200), .malformed("/" + String(repeating: "a", count: 200)))
    }

    func testBindAddressForms() throws {
        XCTAssertEqual(try AddressSpec.parseBindAddress("127.0.0.1"), .ipv4("127.0.0.1", port: 0))
        XCTAssertEqual(try AddressSpec.parseBindAddress("localhost"), .hostName("localhost", port: 0))
        XCTAssertEqual(try AddressSpec.parseBindAddress("[127.0.0.1]"), .ipv4("127.0.0.1", port: 0))
        XCTAssertEqual(try AddressSpec.parseBindAddress("[::1]"), .ipv6("::1", port: 0))
        XCTAssertEqual(try AddressSpec.parseBindAddress("::1"), .ipv6("::1", port: 0))
        XCTAssertEqual(try AddressSpec.parseBindAddress("fe80::2"), .ipv6("fe80::2", port: 0))
        XCTAssertEqual(try AddressSpec.parseBindAddress("[127.0.0.1]:0"), .ipv4("127.0.0.1", port: 0))
        XCTAssertEqual(try AddressSpec.parseBindAddress("[127.0.0.1]:4000"), .ipv4("127.0.0.1", port: 4000))
        XCTAssertEqual(try AddressSpec.parseBindAddress("[::1]:4000"), .ipv6("::1", port: 4000))
        XCTAssertEqual(try AddressSpec.parseBindAddress("/tmp/client.sock"), .unix(path: "/tmp/client.sock"))
        XCTAssertThrowsError(try AddressSpec.parseBindAddress(""))
        XCTAssertThrowsError(try AddressSpec.parseBindAddress("[1.2.3]"))
        XCTAssertThrowsError(try AddressSpec.parseBindAddress("[127.0.0.1]:65536"))
    }

    func testDescriptionRoundTrips() throws {
        for text in ["/a/b", "example.com:1", "[1.2.3.4]:5", "[::1]:6"] {
            XCTAssertEqual(try AddressSpec.parse(text).description, text)
            XCTAssertEqual(try AddressSpec.parse(try AddressSpec.parse(text).description), try AddressSpec.parse(text))
        }
    }
}
