// spipe: one spiped client connection between standard input/output and a spiped server.
import Glibc
import SpipedCommandLine
import SpipedCryptoAccelerated
import SpipedProtocol
import SpipedProxy
import SpipedSystem

// The program runs in a plain (nonisolated) function rather than as top-level code, so
// nothing here is main-actor isolated and the Swift concurrency runtime (with libdispatch)
// is not linked in: it would only add start-up work and resident memory.
func runSpipe() -> Never {
    // A static build must not let glibc load name-service modules (see NameServices).
    NameServices.restrictToBuiltInSourcesIfStatic()
    let warnings = WarningSink(program: "spipe")

    let options: SpipeOptions
    do {
        switch try SpipeOptions.parse(Array(CommandLine.arguments.dropFirst())) {
        case .showVersion(let onStandardOutput):
            // The reference prints its version (-v) on stderr; --version uses stdout.
            if onStandardOutput { writeStandardOutput(SpipeUsage.version) } else { writeStandardError(SpipeUsage.version) }
            exit(0)
        case .showHelp:
            writeStandardOutput(SpipeUsage.help)
            exit(0)
        case .run(let parsed):
            options = parsed
        }
    } catch {
        writeStandardError(error.rendered(program: "spipe", usage: SpipeUsage.text))
        exit(1)
    }

    let backend = CryptoBackendSelection.best
    for problem in CryptoBackendSelection.problems { warnings.warn(problem) }
    let key = loadKeyOrExit(path: options.keyFilePath, backend: backend, warnings: warnings)
    // The key is in memory: no core dumps, no ptrace by other processes of this user.
    do {
        try ProcessHardening.disableCoreDumps()
    } catch {
        warnings.warn("Cannot disable core dumps: \(error)")
        exit(1)
    }

    // Writes to a peer that has gone must fail with EPIPE, not kill the process.
    signal(SIGPIPE, SIG_IGN)

    do {
        try SpipeClient.run(
            target: options.target,
            key: key,
            handshake: HandshakeOptions(fast: options.fast, requireForwardSecrecy: options.requireForwardSecrecy),
            backend: backend,
            keepAlive: options.keepAlive,
            timeoutSeconds: min(options.timeoutSeconds, longestTimeoutSeconds),
            bindAddress: options.bindAddress
        )
    } catch {
        switch error {
        case .standardInputUnreadable, .standardOutputUnwritable:
            // Data was lost on this side: say so, and never exit 0.
            warnings.warn(error.description)
        default:
            warnings.warn("Could not connect: \(error)")
        }
        exit(1)
    }
    exit(0)
}

runSpipe()
