import Foundation
import SpipedCommandLine
import XCTest

/// Checks the option parsers against the accept/refuse decisions of the reference binaries.
///
/// `Tests/Integration/reference-decisions.json` was produced by `python3 cli_rows.py` running
/// Debian's /usr/bin/spiped and /usr/bin/spipe 1.6.2 on each command line (the integration
/// suite re-runs the same rows against both binaries). Every row's decision is made while
/// parsing (no row depends on a missing key file or on name resolution), so the parser alone
/// must agree with every row.
final class ReferenceDecisionTests: XCTestCase {
    struct Table: Decodable {
        struct Row: Decodable {
            let program: String
            let args: [String]
            let outcome: String
        }
        let decisions: [Row]
        /// Rows with this implementation's long options: the outcome is ours (the reference refuses them all).
        let extensions: [Row]
    }

    /// The rows (or, with `extensions`, the extension rows), with tokens replaced by fixed
    /// values (nothing is bound or read).
    func loadRows(extensions: Bool = false) throws -> [Table.Row] {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Integration/reference-decisions.json")
        let table = try JSONDecoder().decode(Table.self, from: Data(contentsOf: url))
        let values = ["@S@": "[127.0.0.1]:8001", "@T@": "[127.0.0.1]:8002", "@KEY@": "/etc/spiped/key", "@DIR@": "/tmp",
                      "@M@": "9090"]
        return (extensions ? table.extensions : table.decisions).map { row in
            Table.Row(program: row.program, args: row.args.map { argument in
                values.reduce(argument) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
            }, outcome: row.outcome)
        }
    }

    /// What our parser decides for one row: "run", "help", "version" or "refuse".
    func decision(program: String, args: [String]) -> String {
        do {
            if program == "spiped" {
                switch try SpipedOptions.parse(args) {
                case .run, .runConfiguration: return "run"
                case .showVersion: return "version"
                case .showHelp: return "help"
                }
            }
            switch try SpipeOptions.parse(args) {
            case .run: return "run"
            case .showVersion: return "version"
            case .showHelp: return "help"
            }
        } catch {
            return "refuse"
        }
    }

    func testEveryReferenceDecisionIsReproduced() throws {
        let rows = try loadRows()
        XCTAssertGreaterThan(rows.count, 150)
        for row in rows {
            XCTAssertEqual(decision(program: row.program, args: row.args), row.outcome,
                           "\(row.program) \(row.args.map { "'\($0)'" }.joined(separator: " "))")
        }
    }

    func testEveryExtensionDecisionIsOurs() throws {
        let rows = try loadRows(extensions: true)
        XCTAssertGreaterThan(rows.count, 50)
        for row in rows {
            XCTAssertEqual(decision(program: row.program, args: row.args), row.outcome,
                           "\(row.program) \(row.args.map { "'\($0)'" }.joined(separator: " "))")
        }
    }
}
