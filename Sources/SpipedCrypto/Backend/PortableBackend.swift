extension CryptoBackend {
    /// Pure-Swift backend: portable SHA-256 and bitsliced constant-time AES-256. Always available.
    public static let portable = CryptoBackend(
        kind: .portable,
        sha256Compress: { SHA256Portable.compress($0, $1, $2) },
        sha256Compress2: { SHA256Portable.compress2($0, $1, $2, $3, $4) },
        aes256: AES256Portable.engine
    )
}
