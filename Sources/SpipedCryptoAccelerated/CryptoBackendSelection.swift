import SpipedCrypto

/// Chooses the fastest backend this CPU can run correctly: the single dispatch point.
///
/// A hardware primitive is used only when the CPU reports the feature *and* its known-answer
/// self-test passes; otherwise the portable code is used for that primitive. Setting the
/// environment variable `SPIPED_FORCE_PORTABLE=1` forces the portable backend.
public enum CryptoBackendSelection {
    /// The backend to use in this process (computed once).
    public static let best: CryptoBackend = select()

    /// Hardware backends this CPU supports and that passed self-tests (for tests and benchmarks).
    public static var hardwareIfAvailable: CryptoBackend? { fatalError("stub") }

    static func select() -> CryptoBackend { fatalError("stub") }
}
