// `include = PATTERN`: a plain file, or a directory and a last path component with `*`
// wildcards (`conf.d/*.conf`). Relative patterns are relative to the including file's
// directory. Matches are sorted by name (byte order); `*` does not match a leading `.`, as in
// the shell; a pattern that matches nothing (even in a missing directory) includes nothing,
// while a missing plain file is an error. The walk itself (depth, cycles) is in the parser.

/// Lexical path helpers (no file-system access).
enum ConfigurationPaths {
    /// The directory part of `path` (`/etc/spiped` for `/etc/spiped/a.conf`, `/` for `/a`,
    /// empty for `a.conf`).
    static func directory(of path: String) -> String {
        let bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        if slash == 0 { return "/" }
        return String(decoding: bytes[..<slash], as: UTF8.self)
    }

    /// `path` when absolute (or when `directory` is empty), else `directory/path`; repeated
    /// slashes and `./` components are removed from the result (`..` is kept: it depends on links).
    static func resolve(_ path: String, relativeTo directory: String) -> String {
        if path.hasPrefix("/") || directory.isEmpty { return normalized(path) }
        return normalized(directory + "/" + path)
    }

    /// Removes empty and `.` components (keeping a leading `/` and a lone `.`).
    static func normalized(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }
}

/// A parsed include pattern.
enum ConfigurationIncludePattern: Equatable {
    /// One file.
    case file(String)
    /// Every entry of `directory` (empty: the working directory) whose name matches `namePattern`.
    case wildcard(directory: String, namePattern: String)

    /// Splits `text` (already resolved against the including file's directory).
    static func parse(_ text: String) -> Result<ConfigurationIncludePattern, ConfigurationProblem> {
        let directory = ConfigurationPaths.directory(of: text)
        let name = text.hasSuffix("/") ? "" : String(text.split(separator: "/").last ?? "")
        if directory.contains("*") { return .failure(.wildcardOutsideLastComponent(text)) }
        if name.contains("*") { return .success(.wildcard(directory: directory, namePattern: name)) }
        return .success(.file(text))
    }

    /// True when `name` matches `pattern`, where `*` stands for any run of bytes (none
    /// included) and every other byte for itself; a leading `.` must be matched literally.
    static func matches(_ name: String, pattern: String) -> Bool {
        let text = Array(name.utf8)
        let wild = Array(pattern.utf8)
        let star = UInt8(ascii: "*")
        if text.first == UInt8(ascii: ".") && wild.first != UInt8(ascii: ".") { return false }
        // Greedy matching with backtracking to the last star: O(len(name) * len(pattern)).
        var t = 0, p = 0
        var lastStar = -1, resumeAt = 0
        while t < text.count {
            if p < wild.count && wild[p] == star {
                lastStar = p
                resumeAt = t
                p += 1
            } else if p < wild.count && wild[p] == text[t] {
                t += 1
                p += 1
            } else if lastStar >= 0 {
                p = lastStar + 1
                resumeAt += 1
                t = resumeAt
            } else {
                return false
            }
        }
        while p < wild.count && wild[p] == star { p += 1 }
        return p == wild.count
    }

    /// The paths this pattern names, sorted by name; `.notFound` of the directory (or of the
    /// file) is reported by the caller as the rules above say.
    func paths(in fileSystem: some ConfigurationFileSystem) throws(ConfigurationReadError) -> [String] {
        switch self {
        case .file(let path):
            return [path]
        case .wildcard(let directory, let namePattern):
            let names = try fileSystem.directoryEntries(atPath: directory.isEmpty ? "." : directory)
            return names.filter { Self.matches($0, pattern: namePattern) }
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                .map { ConfigurationPaths.resolve($0, relativeTo: directory) }
        }
    }
}
