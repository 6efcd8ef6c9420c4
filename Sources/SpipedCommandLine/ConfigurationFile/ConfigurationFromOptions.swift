// A single command-line run (`spiped -e|-d -s -t -k ...`) as a one-pipe configuration, so the
// engine takes one input type whether it was started with `--config` or without.
import SpipedSystem

extension ConfigurationFile {
    /// Where the pipe of `init(commandLine:)` comes from.
    public static let commandLineFile = "<command line>"

    /// The configuration one `spiped` command line describes: one pipe named after the `-s`
    /// text as typed, with the command line's key (relative paths stay relative to the working
    /// directory) and settings; `-p`, `-u` and `--syslog` as global settings. `-D` and `-F`
    /// are not part of a configuration (they stay in `SpipedOptions`).
    public init(commandLine options: SpipedOptions) {
        let location = SourceLocation(file: Self.commandLineFile, line: 0)
        var pipe = PipeDefinition(
            name: options.sourceText,
            location: location,
            mode: options.mode,
            source: options.source,
            target: options.target,
            keys: [KeyReference(path: options.keyFilePath, location: location)],
            fast: options.fast,
            requireForwardSecrecy: options.requireForwardSecrecy,
            maxConnections: options.maxConnections,
            timeoutSeconds: options.timeoutSeconds,
            resolveIntervalSeconds: options.resolveIntervalSeconds,
            keepAlive: options.keepAlive,
            bindAddress: options.bindAddress
        )
        pipe.pool = options.poolSize
        pipe.poolMaxAgeSeconds = options.poolMaxAgeSeconds
        pipe.socketMode = options.socketMode
        pipe.socketGroup = options.socketGroup
        self.init(
            globals: GlobalSettings(pidFile: options.pidFilePath, privileges: options.privileges, syslog: options.useSyslog),
            pipes: [pipe],
            sourceFiles: []
        )
    }
}
