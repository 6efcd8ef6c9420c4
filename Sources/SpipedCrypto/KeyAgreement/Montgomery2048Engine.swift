/// A replaceable implementation of the two hot operations of group-14 exponentiation:
/// Montgomery multiplication and squaring modulo the RFC 3526 prime p, with R = 2^2048.
///
/// Numbers are 32 little-endian 64-bit limbs. `CryptoBackend.montgomery2048` carries one engine
/// (nil: the portable product-scanning code in `Montgomery2048`); the accelerated product
/// supplies a BMI2 (`mulx`) engine after a CPUID check and a known-answer self-test. The ladder
/// around the two functions (windows, masked table scans, comb) is the same for every engine.
///
/// Contract for both functions, which every engine must keep:
/// - inputs are below p (for `multiply`, `a` may be any value below R when `b` < p); the result
///   is fully reduced (below p);
/// - `result` may alias any input;
/// - `modulus` points at p's 32 limbs; `scratch` at `scratchLimbCount` limbs the function may
///   overwrite (the caller wipes them; they hold secret-derived values);
/// - constant time: the instructions run and the addresses touched depend only on the public
///   sizes, never on the limbs' values.
public struct Montgomery2048Engine: Sendable {
    /// Limbs of scratch memory the caller provides to `multiply` and `square`.
    public static let scratchLimbCount = 160

    /// p, the RFC 3526 group-14 prime, as 32 little-endian limbs (for engines and self-tests).
    public static var modulusLimbs: [UInt64] { Montgomery2048.modulusLimbs }

    /// A short name for summaries, e.g. "mulx".
    public let name: String
    /// result = a · b · R⁻¹ mod p.
    public let multiply: @Sendable (_ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>,
                                    _ modulus: UnsafePointer<UInt64>, _ scratch: UnsafeMutablePointer<UInt64>) -> Void
    /// result = a² · R⁻¹ mod p.
    public let square: @Sendable (_ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>,
                                  _ modulus: UnsafePointer<UInt64>, _ scratch: UnsafeMutablePointer<UInt64>) -> Void

    // BEGIN optional whole exponentiation (issue 15, IFMA engine)
    /// A whole exponentiation in the engine's own representation, or nil (the common ladder in
    /// `Montgomery2048.power` then runs on `multiply` and `square`). Signature of `power`.
    public typealias PowerFunction = @Sendable (_ result: UnsafeMutablePointer<UInt64>, _ base: UnsafePointer<UInt64>,
                                                _ exponent: UnsafeRawBufferPointer) -> Void
    /// Optional: result = base^exponent mod p as 32 plain (not Montgomery) limbs, fully reduced,
    /// for `base` any 32-limb value below 2^2048 and `exponent` big-endian bytes of any length
    /// (empty: 1). `Montgomery2048.power` calls it instead of its own ladder when it is set. It
    /// keeps its own window table and masked scans, and must be constant time like the rest:
    /// the work may depend on the exponent's byte length only.
    public let power: PowerFunction?
    // END optional whole exponentiation

    /// Creates an engine from its two functions (and, optionally, a whole exponentiation).
    public init(
        name: String,
        multiply: @escaping @Sendable (_ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>,
                                       _ modulus: UnsafePointer<UInt64>, _ scratch: UnsafeMutablePointer<UInt64>) -> Void,
        square: @escaping @Sendable (_ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>,
                                     _ modulus: UnsafePointer<UInt64>, _ scratch: UnsafeMutablePointer<UInt64>) -> Void,
        power: PowerFunction? = nil
    ) {
        self.name = name
        self.multiply = multiply
        self.square = square
        self.power = power
    }

    /// The portable product-scanning code behind the engine interface (for self-tests and tests
    /// that compare engines; `Montgomery2048` calls that code directly when no engine is set).
    public static let portable = Montgomery2048Engine(
        name: "portable",
        multiply: { result, a, b, modulus, scratch in
            Montgomery2048.Workspace.multiply(result, a, b, modulus: modulus, product: scratch)
        },
        square: { result, a, modulus, scratch in
            Montgomery2048.Workspace.square(result, a, modulus: modulus, product: scratch)
        }
    )
}
