import SpipedCrypto

extension SpipedKey {
    /// True when both hold the same K (constant time): a reload uses it to tell whether a key
    /// file changed.
    public func isSameKey(as other: SpipedKey) -> Bool {
        ConstantTime.equal(secret.bytes, other.secret.bytes)
    }
}
