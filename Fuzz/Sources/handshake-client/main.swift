// Fuzz target: the spiped handshake state machine in the client role, on raw peer bytes in
// any chunking and on honest peer messages carrying fuzzed Diffie-Hellman values
// (see `fuzzHandshake` in ProtocolFuzzing for the input layout and the checks).
import FuzzSupport
import ProtocolFuzzing

/// The executable's entry point (SwiftPM links `handshake_client_main` as `main`).
@_cdecl("handshake_client_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in
        fuzzHandshake(role: .client, data: inputBytes(data, count))
        return 0
    })
}
