import SpipedCrypto

/// Secret bytes that are overwritten with zeros when the last reference goes away.
///
/// The bytes are set once at initialization and never changed afterwards (only `deinit`
/// touches them again), which is what makes sharing the box across threads safe.
final class SecretBytes: @unchecked Sendable {
    /// The secret itself. Callers must not keep copies that outlive this box.
    private(set) var bytes: [UInt8]

    /// Takes ownership of `bytes` (the caller must not wipe or reuse its array afterwards).
    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    deinit {
        SecureWipe.wipe(&bytes)
    }
}
