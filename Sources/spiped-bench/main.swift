// spiped-bench: measures the crypto library the way spiped uses it.
//
//   spiped-bench crypto [--json] [--seconds S] [--clock monotonic|thread-cpu]
//                       [--only NAME[,NAME...]] [--backend portable|hardware|ENGINE]
//   spiped-bench engines
//
// Every figure is timed with CLOCK_MONOTONIC (or the thread's CPU clock) over at least S
// seconds (default 0.5).
import Glibc

BenchCommandLine.run(arguments: Array(CommandLine.arguments.dropFirst()))
