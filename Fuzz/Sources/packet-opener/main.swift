// Fuzz target: the spiped packet opener on arbitrary bytes and on sealed packets with bit
// flips, drops, replays, swaps and truncations (see `fuzzPacketOpener` in ProtocolFuzzing).
import FuzzSupport
import ProtocolFuzzing

/// The executable's entry point (SwiftPM links `packet_opener_main` as `main`).
@_cdecl("packet_opener_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in
        fuzzPacketOpener(data: inputBytes(data, count))
        return 0
    })
}
