/// The portable SHA-256 compression function (FIPS 180-4 §6.2.2), in pure Swift.
///
/// Constant time by construction: every block runs the same fixed sequence of 32-bit adds,
/// rotations and Boolean operations; there are no branches on, and no table lookups indexed
/// by, message or state data (the round constants are literals in the unrolled code).
public enum SHA256Portable {
    /// Folds `blockCount` 64-byte blocks starting at `blocks` into the eight state words at
    /// `state` (H0...H7 as native integers). `blocks` need not be aligned.
    public static func compress(_ state: UnsafeMutablePointer<UInt32>, _ blocks: UnsafeRawPointer, _ blockCount: Int) {
        var block = blocks
        for _ in 0..<blockCount {
            compressBlock(state, block)
            block += 64
        }
    }

    /// Two independent compressions: `compress(stateA, blocksA, blockCount)` then
    /// `compress(stateB, blocksB, blockCount)` (portable code gains nothing from interleaving).
    public static func compress2(_ stateA: UnsafeMutablePointer<UInt32>, _ blocksA: UnsafeRawPointer,
                                 _ stateB: UnsafeMutablePointer<UInt32>, _ blocksB: UnsafeRawPointer,
                                 _ blockCount: Int) {
        compress(stateA, blocksA, blockCount)
        compress(stateB, blocksB, blockCount)
    }

    /// One block: 64 rounds, fully unrolled, with the message schedule kept in a 16-word ring
    /// of locals (W[t] overwrites W[t-16] in place), so nothing touches memory but the block.
    @inline(__always)
    static func compressBlock(_ state: UnsafeMutablePointer<UInt32>, _ block: UnsafeRawPointer) {
        var a = state[0], b = state[1], c = state[2], d = state[3]
        var e = state[4], f = state[5], g = state[6], h = state[7]

        // The message words are big-endian (FIPS 180-4 §3.1).
        var w0 = loadBigEndian(block, 0), w1 = loadBigEndian(block, 1)
        var w2 = loadBigEndian(block, 2), w3 = loadBigEndian(block, 3)
        var w4 = loadBigEndian(block, 4), w5 = loadBigEndian(block, 5)
        var w6 = loadBigEndian(block, 6), w7 = loadBigEndian(block, 7)
        var w8 = loadBigEndian(block, 8), w9 = loadBigEndian(block, 9)
        var w10 = loadBigEndian(block, 10), w11 = loadBigEndian(block, 11)
        var w12 = loadBigEndian(block, 12), w13 = loadBigEndian(block, 13)
        var w14 = loadBigEndian(block, 14), w15 = loadBigEndian(block, 15)

        // Maj(a,b,c) = b ⊕ ((a ⊕ b) ∧ (b ⊕ c)); a round's b ⊕ c is the previous round's a ⊕ b.
        var previousAXorB = b ^ c

        // Rounds 0-15 use the message words; from round 16 on, W[t] replaces W[t-16] in the ring
        // just before round t. Instead of shuffling a...h, each round names them rotated by one.
        // The hex literal in each round is K[t] (cube-root fractions of the first 64 primes).
        round(a, b, c, &d, e, f, g, &h, 0x428a2f98 &+ w0, &previousAXorB)
        round(h, a, b, &c, d, e, f, &g, 0x71374491 &+ w1, &previousAXorB)
        round(g, h, a, &b, c, d, e, &f, 0xb5c0fbcf &+ w2, &previousAXorB)
        round(f, g, h, &a, b, c, d, &e, 0xe9b5dba5 &+ w3, &previousAXorB)
        round(e, f, g, &h, a, b, c, &d, 0x3956c25b &+ w4, &previousAXorB)
        round(d, e, f, &g, h, a, b, &c, 0x59f111f1 &+ w5, &previousAXorB)
        round(c, d, e, &f, g, h, a, &b, 0x923f82a4 &+ w6, &previousAXorB)
        round(b, c, d, &e, f, g, h, &a, 0xab1c5ed5 &+ w7, &previousAXorB)
        round(a, b, c, &d, e, f, g, &h, 0xd807aa98 &+ w8, &previousAXorB)
        round(h, a, b, &c, d, e, f, &g, 0x12835b01 &+ w9, &previousAXorB)
        round(g, h, a, &b, c, d, e, &f, 0x243185be &+ w10, &previousAXorB)
        round(f, g, h, &a, b, c, d, &e, 0x550c7dc3 &+ w11, &previousAXorB)
        round(e, f, g, &h, a, b, c, &d, 0x72be5d74 &+ w12, &previousAXorB)
        round(d, e, f, &g, h, a, b, &c, 0x80deb1fe &+ w13, &previousAXorB)
        round(c, d, e, &f, g, h, a, &b, 0x9bdc06a7 &+ w14, &previousAXorB)
        round(b, c, d, &e, f, g, h, &a, 0xc19bf174 &+ w15, &previousAXorB)

        w0 = scheduleWord(w0, w1, w9, w14)
        round(a, b, c, &d, e, f, g, &h, 0xe49b69c1 &+ w0, &previousAXorB)
        w1 = scheduleWord(w1, w2, w10, w15)
        round(h, a, b, &c, d, e, f, &g, 0xefbe4786 &+ w1, &previousAXorB)
        w2 = scheduleWord(w2, w3, w11, w0)
        round(g, h, a, &b, c, d, e, &f, 0x0fc19dc6 &+ w2, &previousAXorB)
        w3 = scheduleWord(w3, w4, w12, w1)
        round(f, g, h, &a, b, c, d, &e, 0x240ca1cc &+ w3, &previousAXorB)
        w4 = scheduleWord(w4, w5, w13, w2)
        round(e, f, g, &h, a, b, c, &d, 0x2de92c6f &+ w4, &previousAXorB)
        w5 = scheduleWord(w5, w6, w14, w3)
        round(d, e, f, &g, h, a, b, &c, 0x4a7484aa &+ w5, &previousAXorB)
        w6 = scheduleWord(w6, w7, w15, w4)
        round(c, d, e, &f, g, h, a, &b, 0x5cb0a9dc &+ w6, &previousAXorB)
        w7 = scheduleWord(w7, w8, w0, w5)
        round(b, c, d, &e, f, g, h, &a, 0x76f988da &+ w7, &previousAXorB)
        w8 = scheduleWord(w8, w9, w1, w6)
        round(a, b, c, &d, e, f, g, &h, 0x983e5152 &+ w8, &previousAXorB)
        w9 = scheduleWord(w9, w10, w2, w7)
        round(h, a, b, &c, d, e, f, &g, 0xa831c66d &+ w9, &previousAXorB)
        w10 = scheduleWord(w10, w11, w3, w8)
        round(g, h, a, &b, c, d, e, &f, 0xb00327c8 &+ w10, &previousAXorB)
        w11 = scheduleWord(w11, w12, w4, w9)
        round(f, g, h, &a, b, c, d, &e, 0xbf597fc7 &+ w11, &previousAXorB)
        w12 = scheduleWord(w12, w13, w5, w10)
        round(e, f, g, &h, a, b, c, &d, 0xc6e00bf3 &+ w12, &previousAXorB)
        w13 = scheduleWord(w13, w14, w6, w11)
        round(d, e, f, &g, h, a, b, &c, 0xd5a79147 &+ w13, &previousAXorB)
        w14 = scheduleWord(w14, w15, w7, w12)
        round(c, d, e, &f, g, h, a, &b, 0x06ca6351 &+ w14, &previousAXorB)
        w15 = scheduleWord(w15, w0, w8, w13)
        round(b, c, d, &e, f, g, h, &a, 0x14292967 &+ w15, &previousAXorB)

        w0 = scheduleWord(w0, w1, w9, w14)
        round(a, b, c, &d, e, f, g, &h, 0x27b70a85 &+ w0, &previousAXorB)
        w1 = scheduleWord(w1, w2, w10, w15)
        round(h, a, b, &c, d, e, f, &g, 0x2e1b2138 &+ w1, &previousAXorB)
        w2 = scheduleWord(w2, w3, w11, w0)
        round(g, h, a, &b, c, d, e, &f, 0x4d2c6dfc &+ w2, &previousAXorB)
        w3 = scheduleWord(w3, w4, w12, w1)
        round(f, g, h, &a, b, c, d, &e, 0x53380d13 &+ w3, &previousAXorB)
        w4 = scheduleWord(w4, w5, w13, w2)
        round(e, f, g, &h, a, b, c, &d, 0x650a7354 &+ w4, &previousAXorB)
        w5 = scheduleWord(w5, w6, w14, w3)
        round(d, e, f, &g, h, a, b, &c, 0x766a0abb &+ w5, &previousAXorB)
        w6 = scheduleWord(w6, w7, w15, w4)
        round(c, d, e, &f, g, h, a, &b, 0x81c2c92e &+ w6, &previousAXorB)
        w7 = scheduleWord(w7, w8, w0, w5)
        round(b, c, d, &e, f, g, h, &a, 0x92722c85 &+ w7, &previousAXorB)
        w8 = scheduleWord(w8, w9, w1, w6)
        round(a, b, c, &d, e, f, g, &h, 0xa2bfe8a1 &+ w8, &previousAXorB)
        w9 = scheduleWord(w9, w10, w2, w7)
        round(h, a, b, &c, d, e, f, &g, 0xa81a664b &+ w9, &previousAXorB)
        w10 = scheduleWord(w10, w11, w3, w8)
        round(g, h, a, &b, c, d, e, &f, 0xc24b8b70 &+ w10, &previousAXorB)
        w11 = scheduleWord(w11, w12, w4, w9)
        round(f, g, h, &a, b, c, d, &e, 0xc76c51a3 &+ w11, &previousAXorB)
        w12 = scheduleWord(w12, w13, w5, w10)
        round(e, f, g, &h, a, b, c, &d, 0xd192e819 &+ w12, &previousAXorB)
        w13 = scheduleWord(w13, w14, w6, w11)
        round(d, e, f, &g, h, a, b, &c, 0xd6990624 &+ w13, &previousAXorB)
        w14 = scheduleWord(w14, w15, w7, w12)
        round(c, d, e, &f, g, h, a, &b, 0xf40e3585 &+ w14, &previousAXorB)
        w15 = scheduleWord(w15, w0, w8, w13)
        round(b, c, d, &e, f, g, h, &a, 0x106aa070 &+ w15, &previousAXorB)

        w0 = scheduleWord(w0, w1, w9, w14)
        round(a, b, c, &d, e, f, g, &h, 0x19a4c116 &+ w0, &previousAXorB)
        w1 = scheduleWord(w1, w2, w10, w15)
        round(h, a, b, &c, d, e, f, &g, 0x1e376c08 &+ w1, &previousAXorB)
        w2 = scheduleWord(w2, w3, w11, w0)
        round(g, h, a, &b, c, d, e, &f, 0x2748774c &+ w2, &previousAXorB)
        w3 = scheduleWord(w3, w4, w12, w1)
        round(f, g, h, &a, b, c, d, &e, 0x34b0bcb5 &+ w3, &previousAXorB)
        w4 = scheduleWord(w4, w5, w13, w2)
        round(e, f, g, &h, a, b, c, &d, 0x391c0cb3 &+ w4, &previousAXorB)
        w5 = scheduleWord(w5, w6, w14, w3)
        round(d, e, f, &g, h, a, b, &c, 0x4ed8aa4a &+ w5, &previousAXorB)
        w6 = scheduleWord(w6, w7, w15, w4)
        round(c, d, e, &f, g, h, a, &b, 0x5b9cca4f &+ w6, &previousAXorB)
        w7 = scheduleWord(w7, w8, w0, w5)
        round(b, c, d, &e, f, g, h, &a, 0x682e6ff3 &+ w7, &previousAXorB)
        w8 = scheduleWord(w8, w9, w1, w6)
        round(a, b, c, &d, e, f, g, &h, 0x748f82ee &+ w8, &previousAXorB)
        w9 = scheduleWord(w9, w10, w2, w7)
        round(h, a, b, &c, d, e, f, &g, 0x78a5636f &+ w9, &previousAXorB)
        w10 = scheduleWord(w10, w11, w3, w8)
        round(g, h, a, &b, c, d, e, &f, 0x84c87814 &+ w10, &previousAXorB)
        w11 = scheduleWord(w11, w12, w4, w9)
        round(f, g, h, &a, b, c, d, &e, 0x8cc70208 &+ w11, &previousAXorB)
        w12 = scheduleWord(w12, w13, w5, w10)
        round(e, f, g, &h, a, b, c, &d, 0x90befffa &+ w12, &previousAXorB)
        w13 = scheduleWord(w13, w14, w6, w11)
        round(d, e, f, &g, h, a, b, &c, 0xa4506ceb &+ w13, &previousAXorB)
        w14 = scheduleWord(w14, w15, w7, w12)
        round(c, d, e, &f, g, h, a, &b, 0xbef9a3f7 &+ w14, &previousAXorB)
        w15 = scheduleWord(w15, w0, w8, w13)
        round(b, c, d, &e, f, g, h, &a, 0xc67178f2 &+ w15, &previousAXorB)

        state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d
        state[4] &+= e; state[5] &+= f; state[6] &+= g; state[7] &+= h
    }

    /// Big-endian 32-bit word `index` of the block.
    @inline(__always)
    static func loadBigEndian(_ block: UnsafeRawPointer, _ index: Int) -> UInt32 {
        UInt32(bigEndian: block.loadUnaligned(fromByteOffset: index &* 4, as: UInt32.self))
    }

    /// Rotate right by a constant (masking shifts: no overshift checks).
    @inline(__always)
    static func rotateRight(_ x: UInt32, _ count: UInt32) -> UInt32 {
        (x &>> count) | (x &<< (32 &- count))
    }

    /// One round, T1 = h + Σ1(e) + Ch(e,f,g) + K[t] + W[t]; d += T1; h = T1 + Σ0(a) + Maj(a,b,c)
    /// (FIPS 180-4 §6.2.2 step 3, with the register rotation left to the caller's naming).
    /// `bXorC` holds b ⊕ c on entry and this round's a ⊕ b (the next round's b ⊕ c) on return.
    @inline(__always)
    static func round(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
                      _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32, _ constantPlusWord: UInt32,
                      _ bXorC: inout UInt32) {
        // Σ1(e) = ROTR6(e) ⊕ ROTR11(e) ⊕ ROTR25(e), nested as ROTR6(e ⊕ ROTR5(e ⊕ ROTR14(e))) so one
        // copy of e suffices (the same for Σ0 below with ROTR2/13/22 = ROTR2(a ⊕ ROTR11(a ⊕ ROTR9(a)))).
        let sigma1 = rotateRight(e ^ rotateRight(e ^ rotateRight(e, 14), 5), 6)
        let choose = g ^ (e & (f ^ g))                  // Ch(e,f,g) = (e ∧ f) ⊕ (¬e ∧ g)
        let t1 = h &+ sigma1 &+ choose &+ constantPlusWord
        let sigma0 = rotateRight(a ^ rotateRight(a ^ rotateRight(a, 9), 11), 2)
        let aXorB = a ^ b
        let majority = b ^ (aXorB & bXorC)              // Maj(a,b,c)
        bXorC = aXorB
        d &+= t1
        h = t1 &+ sigma0 &+ majority
    }

    /// Message schedule (FIPS 180-4 §6.2.2 step 1):
    /// W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].
    @inline(__always)
    static func scheduleWord(_ minus16: UInt32, _ minus15: UInt32, _ minus7: UInt32, _ minus2: UInt32) -> UInt32 {
        // σ0(x) = ROTR7(x) ⊕ ROTR18(x) ⊕ SHR3(x) and σ1(x) = ROTR17(x) ⊕ ROTR19(x) ⊕ SHR10(x),
        // with the two rotations nested as for Σ in `round`.
        let s0 = rotateRight(minus15 ^ rotateRight(minus15, 11), 7) ^ (minus15 &>> 3)
        let s1 = rotateRight(minus2 ^ rotateRight(minus2, 2), 17) ^ (minus2 &>> 10)
        return minus16 &+ s0 &+ minus7 &+ s1
    }
}
