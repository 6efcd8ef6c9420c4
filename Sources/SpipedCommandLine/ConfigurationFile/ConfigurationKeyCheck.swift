// What `--check` adds to parsing: every key file is loaded with the programs' own key loader
// (SpipedKey.load), and the user and groups named are looked up. Errors carry the line of the
// `key`, `route`, `user` or `socket-group` line. The same key loading serves the engine at
// start-up and reload: it returns the loaded keys by path.
import Glibc
import SpipedCrypto
import SpipedProtocol
import SpipedSystem

/// Loads one key file (SpipedKey.load, or a stand-in in tests).
public typealias ConfigurationKeyFileLoader = @Sendable (_ path: String) throws(SpipedProtocolError) -> (key: SpipedKey, warnings: [KeyFileWarning])

/// The key files of a configuration, loaded.
public struct ConfigurationKeys: Sendable {
    /// Every key that loaded, by path.
    public var keys: [String: SpipedKey]
    /// A `.keyFileUnusable` error at every line naming a file that did not load, and a
    /// `.keyFileWarning` at the first line naming a file that loaded with warnings; in file and
    /// line order.
    public var diagnostics: [ConfigurationDiagnostic]

    /// True when some key file could not be loaded.
    public var hasErrors: Bool { diagnostics.contains(where: \.isError) }
}

/// The outcome of `--check`.
public struct ConfigurationCheckReport: Sendable {
    /// The configuration, when it parsed.
    public var configuration: ConfigurationFile?
    /// Every error and warning, in file and line order (a diagnostic limit overflow last).
    public var diagnostics: [ConfigurationDiagnostic]

    /// True when nothing is an error (warnings allowed): `--check` exits 0.
    public var passed: Bool { !diagnostics.contains(where: \.isError) }

    /// One `FILE:LINE: message` line per diagnostic.
    public var rendered: String { diagnostics.map { "\($0)\n" }.joined() }
}

extension ConfigurationFile {
    /// Loads every key file of every pipe with `SpipedKey.load` (each file once).
    public func loadKeys(backend: CryptoBackend = .portable) -> ConfigurationKeys {
        let loader: ConfigurationKeyFileLoader = { path throws(SpipedProtocolError) in try SpipedKey.load(path: path, backend: backend) }
        return loadKeys(using: loader)
    }

    /// Loads every key file of every pipe with `loader` (each file once).
    public func loadKeys(using loader: ConfigurationKeyFileLoader) -> ConfigurationKeys {
        ConfigurationKeyCheck.load(pipes.flatMap(\.keyReferences), fileOrder: sourceFiles, loader: loader)
    }
}

extension ConfigurationFileParser {
    /// Everything `spiped --config FILE --check` verifies: the file parses (as `parse`), every
    /// key file named in any section loads (even in sections with other errors), and the user
    /// and groups exist. Never throws; the report says whether it passed.
    public static func check(
        path: String,
        fileSystem: some ConfigurationFileSystem = DiskConfigurationFileSystem(),
        limits: ConfigurationLimits = .standard,
        keyLoader: ConfigurationKeyFileLoader? = nil,
        accounts: ConfigurationAccountLookup = .system
    ) -> ConfigurationCheckReport {
        var reader = ConfigurationReader(fileSystem: fileSystem, limits: limits)
        reader.accounts = accounts
        reader.readMainFile(path)
        let loader: ConfigurationKeyFileLoader
        if let keyLoader { loader = keyLoader } else { loader = ConfigurationKeyCheck.portableLoader }
        var diagnostics = reader.diagnostics
        if !reader.stopped {
            let references = reader.drafts.flatMap { $0.keys.map { $0 } + $0.routes.map { KeyReference(path: $0.keyPath, location: $0.location) } }
            diagnostics += ConfigurationKeyCheck.load(references, fileOrder: reader.filesRead, loader: loader).diagnostics
        }
        var sorted = sortedDiagnostics(diagnostics, fileOrder: reader.filesRead)
        if let overflow = reader.overflow { sorted.append(overflow) }
        let configuration = sorted.contains(where: \.isError) ? nil : try? reader.result()
        return ConfigurationCheckReport(configuration: configuration, diagnostics: sorted)
    }
}

/// Looks up user and group names (`--check` only).
public struct ConfigurationAccountLookup: Sendable {
    /// True when the user exists.
    public var userExists: @Sendable (String) -> Bool
    /// True when the group exists.
    public var groupExists: @Sendable (String) -> Bool

    /// Creates a lookup from two predicates.
    public init(userExists: @escaping @Sendable (String) -> Bool, groupExists: @escaping @Sendable (String) -> Bool) {
        self.userExists = userExists
        self.groupExists = groupExists
    }

    /// The password and group databases, as `Privileges.drop` uses them: a name found there,
    /// or a decimal number (a numeric id), exists.
    public static let system = ConfigurationAccountLookup(
        userExists: { name in UInt32(name) != nil || (!name.utf8.contains(0) && getpwnam(name) != nil) },
        groupExists: { name in UInt32(name) != nil || (!name.utf8.contains(0) && getgrnam(name) != nil) }
    )
}

/// Key loading with diagnostics.
enum ConfigurationKeyCheck {
    /// `SpipedKey.load` with the portable backend (the key's hash is the same with any backend).
    static let portableLoader: ConfigurationKeyFileLoader = { path throws(SpipedProtocolError) in
        try SpipedKey.load(path: path)
    }

    /// Loads each distinct path once; reports as `ConfigurationKeys.diagnostics` describes.
    static func load(_ references: [KeyReference], fileOrder: [String], loader: ConfigurationKeyFileLoader) -> ConfigurationKeys {
        var keys: [String: SpipedKey] = [:]
        var failures: [String: SpipedProtocolError] = [:]
        var diagnostics: [ConfigurationDiagnostic] = []
        for reference in references {
            let path = reference.path
            if let failure = failures[path] {
                diagnostics.append(ConfigurationDiagnostic(.keyFileUnusable(path: path, failure), at: reference.location))
                continue
            }
            if keys[path] != nil { continue }
            do {
                let loaded = try loader(path)
                keys[path] = loaded.key
                for warning in loaded.warnings {
                    diagnostics.append(ConfigurationDiagnostic(.keyFileWarning(path: path, warning), at: reference.location))
                }
            } catch {
                failures[path] = error
                diagnostics.append(ConfigurationDiagnostic(.keyFileUnusable(path: path, error), at: reference.location))
            }
        }
        return ConfigurationKeys(keys: keys, diagnostics: sortedDiagnostics(diagnostics, fileOrder: fileOrder))
    }
}
