// The option names of the configuration file, where each may appear, and the "did you mean"
// suggestion for a name that is not one of them.

/// The names the configuration file knows.
enum ConfigurationOptionNames {
    /// Options before the first section (only `include` is allowed in included files).
    static let global = ["include", "pid-file", "user", "syslog", "log-level", "metrics", "drain-timeout"]
    /// Options inside a `[section]`.
    static let pipe = ["mode", "source", "target", "key", "route", "fast", "require-forward-secrecy",
                       "max-connections", "timeout", "resolve-interval", "resolve", "keepalive",
                       "bind-address", "pool", "pool-max-age", "socket-mode", "socket-group"]
    /// Options that may be given more than once.
    static let repeatable: Set<String> = ["include", "key", "route"]

    /// Longest name for which a suggestion is computed (the distance costs length squared).
    static let longestSuggestible = 64

    /// The known name nearest to `name` (edit distance, ignoring letter case), when it is close
    /// enough to be a plausible typo: at most 1 edit for names up to 5 characters, else 2.
    static func suggestion(for name: String) -> String? {
        let typed = Array(name.lowercased().utf8)
        guard !typed.isEmpty, typed.count <= longestSuggestible else { return nil }
        let allowed = typed.count <= 5 ? 1 : 2
        var best: (name: String, distance: Int)?
        for candidate in global + pipe {
            let distance = editDistance(typed, Array(candidate.utf8))
            if distance <= allowed && distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        return best?.name
    }

    /// Levenshtein distance, with a swap of two neighbours counting as one edit.
    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var before = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], before[j - 2] + 1)
                }
            }
            before = previous
            previous = current
        }
        return previous[b.count]
    }
}
