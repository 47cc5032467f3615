import Foundation
import SeededRandom

/// An observation or action space, as in Gymnasium: `Discrete(n)` or `Box(low, high, shape)`.
public enum Space: Sendable, Equatable, CustomStringConvertible {
    /// The integers `0..<n`.
    case discrete(Int)
    /// Float32 vectors with per-element bounds (`-inf`/`+inf` for unbounded); `low.count == high.count ==
    /// shape.reduce(1, *)`.
    case box(low: [Float], high: [Float], shape: [Int])

    /// A box with the same bounds on every element.
    public static func box(low: Float, high: Float, shape: [Int]) -> Space {
        let n = shape.reduce(1, *)
        return .box(low: Array(repeating: low, count: n), high: Array(repeating: high, count: n), shape: shape)
    }

    /// How many floats an element of this space takes in a flat observation vector.
    public var flatCount: Int {
        switch self {
        case .discrete: 1
        case let .box(_, _, shape): shape.reduce(1, *)
        }
    }

    /// The number of values of a `Discrete` space, nil for a box.
    public var discreteCount: Int? {
        if case let .discrete(n) = self { return n }
        return nil
    }

    /// True when `values` (a flat observation) lies in the space.
    public func contains(_ values: [Float]) -> Bool {
        switch self {
        case let .discrete(n):
            guard values.count == 1, let v = values.first, v == v.rounded() else { return false }
            return v >= 0 && v < Float(n)
        case let .box(low, high, _):
            guard values.count == low.count else { return false }
            for i in values.indices where !(values[i] >= low[i] && values[i] <= high[i]) { return false }
            return true
        }
    }

    /// True when `action` is a valid action of this space.
    public func contains(_ action: Action) -> Bool {
        switch (self, action) {
        case let (.discrete(n), .discrete(a)): a >= 0 && a < n
        case let (.box, .continuous(values)): contains(values)
        default: false
        }
    }

    /// A uniformly random element (Gymnasium's `sample`): a bounded box draws uniformly, a half-bounded one from a
    /// shifted exponential, an unbounded one from a standard normal.
    public func sample(using rng: inout SeededGenerator) -> Action {
        switch self {
        case let .discrete(n):
            return .discrete(rng.nextInt(below: n))
        case let .box(low, high, _):
            var values = [Float](repeating: 0, count: low.count)
            for i in values.indices {
                let lo = low[i], hi = high[i]
                switch (lo.isFinite, hi.isFinite) {
                case (true, true): values[i] = Float(rng.uniform(Double(lo), Double(hi)))
                case (true, false): values[i] = lo + Float(-log(1 - rng.nextDouble()))
                case (false, true): values[i] = hi - Float(-log(1 - rng.nextDouble()))
                case (false, false): values[i] = Float(rng.nextGaussian())
                }
            }
            return .continuous(values)
        }
    }

    public var description: String {
        switch self {
        case let .discrete(n): "Discrete(\(n))"
        case let .box(low, high, shape):
            if let l = low.first, let h = high.first, low.allSatisfy({ $0 == l }), high.allSatisfy({ $0 == h }) {
                "Box(\(l), \(h), \(shape))"
            } else {
                "Box(\(low), \(high), \(shape))"
            }
        }
    }
}

/// A registry entry: Gymnasium's `EnvSpec` fields that users rely on.
public struct EnvSpec: Sendable, Equatable {
    public var id: String
    /// The `TimeLimit` applied by `make` (nil: no limit).
    public var maxEpisodeSteps: Int?
    /// The return at which the task counts as solved (nil: none defined).
    public var rewardThreshold: Double?
    /// Frames per second at which a person watches an episode (Gymnasium's `metadata["render_fps"]`).
    public var renderFPS: Int
    /// The most steps an episode can last when the environment ends it itself without a time limit (MinAtar's
    /// Freeway: 2,501 frames); nil when there is no such bound. Evaluation lets such episodes run to their end.
    public var longestEpisode: Int?
    public init(id: String, maxEpisodeSteps: Int?, rewardThreshold: Double?, renderFPS: Int = 30, longestEpisode: Int? = nil) {
        self.id = id; self.maxEpisodeSteps = maxEpisodeSteps; self.rewardThreshold = rewardThreshold
        self.renderFPS = renderFPS; self.longestEpisode = longestEpisode
    }
}
