import SpipedProtocol

// The protocol calls as `Result`s: `withUnsafeBytes` rethrows untyped errors, so each call is
// made and caught inside the closure, keeping the typed `SpipedProtocolError`.

/// `handshake.receive(bytes)`.
func receive(_ handshake: Handshake, _ bytes: ArraySlice<UInt8>) -> Result<Int, SpipedProtocolError> {
    bytes.withUnsafeBytes { buffer in
        do throws(SpipedProtocolError) { return .success(try handshake.receive(buffer)) } catch { return .failure(error) }
    }
}

/// `opener.open(bytes, into: output)`.
func open(_ opener: PacketOpener, _ bytes: ArraySlice<UInt8>, into output: inout [UInt8]) -> Result<(consumed: Int, produced: Int), SpipedProtocolError> {
    bytes.withUnsafeBytes { source in
        output.withUnsafeMutableBytes { destination in
            do throws(SpipedProtocolError) { return .success(try opener.open(source, into: destination)) } catch { return .failure(error) }
        }
    }
}

/// `sealer.seal(bytes, into: output)`.
func seal(_ sealer: PacketSealer, _ bytes: ArraySlice<UInt8>, into output: inout [UInt8]) -> Result<(consumed: Int, produced: Int), SpipedProtocolError> {
    bytes.withUnsafeBytes { source in
        output.withUnsafeMutableBytes { destination in
            do throws(SpipedProtocolError) { return .success(try sealer.seal(source, into: destination)) } catch { return .failure(error) }
        }
    }
}
