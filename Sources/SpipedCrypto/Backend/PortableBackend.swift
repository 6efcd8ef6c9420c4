extension CryptoBackend {
    /// Pure-Swift backend: portable SHA-256 and bitsliced constant-time AES-256. Always available.
    public static let portable = CryptoBackend(
        kind: .portable,
        sha256Compress: SHA256Portable.compress,
        aes256: AES256Portable.engine
    )
}
