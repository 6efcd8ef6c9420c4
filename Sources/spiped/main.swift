// spiped: parse the command line, then run the daemon for one command-line pipe or for every
// pipe of a configuration file (see SpipedCommandLine for the options and the daemon's steps).
import Glibc
import SpipedCommandLine
import SpipedCryptoAccelerated
import SpipedProtocol
import SpipedProxy
import SpipedSystem

// The program runs in a plain (nonisolated) function rather than as top-level code, so
// nothing here is main-actor isolated and the Swift concurrency runtime (with libdispatch)
// is not linked in: it would only add start-up work and resident memory.
func runSpiped() -> Never {
    // A static build must not let glibc load name-service modules (see NameServices).
    NameServices.restrictToBuiltInSourcesIfStatic()

    let invocation: SpipedInvocation
    do {
        invocation = try SpipedOptions.parse(Array(CommandLine.arguments.dropFirst()))
    } catch {
        writeStandardError(error.rendered(program: "spiped", usage: SpipedUsage.text))
        exit(1)
    }
    switch invocation {
    case .showVersion(let onStandardOutput):
        // The reference prints its version (-v) on stderr; --version uses stdout.
        if onStandardOutput { writeStandardOutput(SpipedUsage.version) } else { writeStandardError(SpipedUsage.version) }
        exit(0)
    case .showHelp:
        writeStandardOutput(SpipedUsage.help)
        exit(0)
    case .run(let options):
        var settings = DaemonSettings(foreground: options.foreground, waitForDNS: options.waitForDNS,
                                      pidFilePath: options.pidFilePath, useSyslog: options.useSyslog,
                                      privileges: options.privileges, logLevel: options.logLevel.proxyLevel,
                                      drainTimeoutSeconds: options.drainTimeoutSeconds)
        settings.metricsAddress = options.metricsAddress
        settings.cryptoNotes = cryptoNotes()
        runSpipedDaemon(settings: settings, pipes: CommandLinePipeSource(options: options), backend: CryptoBackendSelection.best)
    case .runConfiguration(let options):
        runConfigurationFile(options, backend: CryptoBackendSelection.best, cryptoNotes: options.checkOnly ? nil : cryptoNotes())
    }
}

/// The engine selection's report for the start-up log.
func cryptoNotes() -> CryptoEngineNotes {
    CryptoEngineNotes(report: CryptoBackendSelection.reportLine, problems: CryptoBackendSelection.problems)
}

runSpiped()
