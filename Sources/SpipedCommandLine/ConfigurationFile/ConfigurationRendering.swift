// A configuration written back as configuration-file text: every setting explicit, includes
// expanded, paths as resolved. Parsing the text again gives the same settings (only the
// locations differ), which `--check` can show as the effective configuration and the fuzz
// target uses as a round-trip check.
import SpipedSystem

extension ConfigurationFile {
    /// The configuration as one file's text. Pipe names must be valid section names (true for
    /// anything the parser returned; not for `init(commandLine:)`'s pipe).
    public var renderedText: String {
        var lines: [String] = []
        let settings = globals
        if let pidFile = settings.pidFile { lines.append("pid-file = \(pidFile)") }
        if let privileges = settings.privileges { lines.append("user = \(Self.render(privileges))") }
        if settings.syslog { lines.append("syslog = yes") }
        if let level = settings.logLevel { lines.append("log-level = \(level.rawValue)") }
        if let metrics = settings.metrics { lines.append("metrics = \(metrics)") }
        if let drain = settings.drainTimeoutSeconds { lines.append("drain-timeout = \(drain)") }
        for pipe in pipes {
            lines.append("")
            lines += Self.render(pipe)
        }
        return lines.map { $0 + "\n" }.joined()
    }

    /// The lines of one section.
    static func render(_ pipe: PipeDefinition) -> [String] {
        var lines = ["[\(pipe.name)]", "mode = \(pipe.mode == .encrypt ? "encrypt" : "decrypt")", "source = \(pipe.source)"]
        if let target = pipe.target { lines.append("target = \(target)") }
        for key in pipe.keys { lines.append("key = \(key.path)") }
        for route in pipe.routes { lines.append("route = \(route.keyPath) \(route.target)") }
        lines.append("fast = \(pipe.fast ? "yes" : "no")")
        lines.append("require-forward-secrecy = \(pipe.requireForwardSecrecy ? "yes" : "no")")
        lines.append("max-connections = \(pipe.maxConnections)")
        lines.append("timeout = \(pipe.timeoutSeconds)")
        if let interval = pipe.resolveIntervalSeconds {
            lines.append("resolve-interval = \(interval)")
        } else {
            lines.append("resolve = no")
        }
        lines.append("keepalive = \(pipe.keepAlive ? "yes" : "no")")
        if let bind = pipe.bindAddress { lines.append("bind-address = \(bind)") }
        if pipe.mode == .encrypt {
            lines.append("pool = \(pipe.pool)")
            lines.append("pool-max-age = \(pipe.poolMaxAgeSeconds)")
        }
        if let mode = pipe.socketMode {
            let digits = String(mode, radix: 8)
            lines.append("socket-mode = \(String(repeating: "0", count: max(0, 4 - digits.count)))\(digits)")
        }
        if let group = pipe.socketGroup { lines.append("socket-group = \(group)") }
        return lines
    }

    /// `user`, `:group` or `user:group`.
    static func render(_ privileges: PrivilegeDropSpec) -> String {
        switch (privileges.user, privileges.group) {
        case (let user?, let group?): return "\(user):\(group)"
        case (let user?, nil): return user
        case (nil, let group?): return ":\(group)"
        case (nil, nil): return ""
        }
    }
}
