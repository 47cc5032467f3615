import Foundation

/// A fast, seedable pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// Every random choice in rlbench flows from one of these, created from an explicit seed.
/// The stream depends only on the seed: it is the same on every machine and every run.
/// The generator is a value type: copying it copies its position in the stream, which is
/// how a run's RNG state is saved in a checkpoint (`state`) and restored (`init(state:)`).
public struct SeededGenerator: RandomNumberGenerator, Sendable, Hashable {
    /// The four 64-bit words of xoshiro256** state.
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose stream is determined by `seed` alone.
    public init(seed: UInt64) { state = SeededGenerator.expand(seed) }

    /// Expands a 64-bit seed into a full, non-zero xoshiro state with SplitMix64.
    private static func expand(_ seed: UInt64) -> (UInt64, UInt64, UInt64, UInt64) {
        var splitMix = seed
        func nextSplitMix() -> UInt64 {
            splitMix &+= 0x9E37_79B9_7F4A_7C15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return (nextSplitMix(), nextSplitMix(), nextSplitMix(), nextSplitMix())
    }

    /// Restores a generator from a saved `state` (all-zero state is invalid and is replaced by seed 0).
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        self.state = state == (0, 0, 0, 0) ? SeededGenerator.expand(0) : state
    }

    /// The state as an array of four words (for checkpoints).
    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    /// Restores a generator from `stateWords`; returns nil unless there are exactly four words.
    public init?(stateWords: [UInt64]) {
        guard stateWords.count == 4 else { return nil }
        self.init(state: (stateWords[0], stateWords[1], stateWords[2], stateWords[3]))
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A new generator derived from this one's stream (for handing independent streams to
    /// sub-components); advances this generator by one draw.
    public mutating func fork() -> SeededGenerator { SeededGenerator(seed: next()) }

    // MARK: - Draws

    /// Uniform Float in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform Double in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform Double in [low, high).
    @inline(__always)
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * nextDouble() }

    /// Uniform Float in [low, high).
    @inline(__always)
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * nextFloat() }

    /// Uniform integer in 0..<n (unbiased, Lemire's multiply-and-reject). `n` must be positive.
    @inline(__always)
    public mutating func nextInt(below n: Int) -> Int {
        precondition(n > 0, "nextInt(below:) needs a positive bound, got \(n)")
        let bound = UInt64(n)
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return Int(product.high)
    }

    /// Standard normal Double (Box–Muller; uses two uniform draws per call, no hidden cache,
    /// so the stream position depends only on the number of calls).
    public mutating func nextGaussian() -> Double {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - nextDouble()
        let u2 = nextDouble()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }

    /// True with probability `p`.
    @inline(__always)
    public mutating func bernoulli(_ p: Double) -> Bool { nextDouble() < p }

    /// In-place Fisher–Yates shuffle driven by this generator (the standard library's
    /// `shuffle(using:)` algorithm is not guaranteed stable across Swift versions).
    @inlinable
    public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ c: inout C) where C.Index == Int {
        var i = c.endIndex - 1
        while i > c.startIndex {
            let j = c.startIndex + nextInt(below: i - c.startIndex + 1)
            c.swapAt(i, j)
            i -= 1
        }
    }

    /// A random permutation of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }
}

extension SeededGenerator {
    public static func == (a: SeededGenerator, b: SeededGenerator) -> Bool { a.stateWords == b.stateWords }
    public func hash(into h: inout Hasher) { h.combine(stateWords) }
}
