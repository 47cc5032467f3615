import Foundation
import Imaging
import SeededRandom

/// CartPole-v1 (Barto, Sutton & Anderson 1983), exactly as Gymnasium 1.x: explicit Euler on the
/// frictionless cart-pole, force ±10, terminated beyond ±2.4 m or ±12°, reward 1 per step.
public final class CartPole: EpisodicEnvironment, Environment {
    public static let gravity = 9.8, massCart = 1.0, massPole = 0.1, length = 0.5, forceMagnitude = 10.0, tau = 0.02
    public static let totalMass = massPole + massCart, poleMassLength = massPole * length
    public static let thetaThreshold = 12 * 2 * Double.pi / 360, xThreshold = 2.4

    /// The physical state (x, ẋ, θ, θ̇) in float64.
    public typealias State = (x: Double, xDot: Double, theta: Double, thetaDot: Double)

    /// (x, ẋ, θ, θ̇) in float64. (Settable inside the module: a vector's CartPole fast path copies its state back.)
    public internal(set) var state: State = (x: 0.0, xDot: 0.0, theta: 0.0, thetaDot: 0.0)
    /// Gymnasium's `sutton_barto_reward` option: reward 0 per step and −1 on termination.
    public let suttonBartoReward: Bool

    public init(suttonBartoReward: Bool = false) {
        self.suttonBartoReward = suttonBartoReward
        super.init(name: "CartPole-v1")
    }

    public var observationSpace: Space {
        let high: [Float] = [Float(Self.xThreshold * 2), .infinity, Float(Self.thetaThreshold * 2), .infinity]
        return .box(low: high.map { -$0 }, high: high, shape: [4])
    }
    public var actionSpace: Space { .discrete(2) }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        state = Self.initialState(using: &rng)
        Self.write(state, to: observation.baseAddress!)
    }

    /// Sets the physical state directly (for replaying recordings) and starts an episode from it.
    public func setState(_ values: [Double]) throws {
        guard values.count == 4 else { throw EnvironmentError.invalidState("CartPole state has 4 values, got \(values.count)") }
        state = (values[0], values[1], values[2], values[3])
        beginEpisode(seed: nil)
    }

    /// Gymnasium's reset: each state variable uniform in [−0.05, 0.05), drawn in the order x, ẋ, θ, θ̇.
    @inline(__always)
    static func initialState(using rng: inout SeededGenerator) -> State {
        (rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05))
    }

    /// Writes the float32 observation of `s` to `o[0..<4]`.
    @inline(__always)
    static func write(_ s: State, to o: UnsafeMutablePointer<Float>) {
        o[0] = Float(s.x); o[1] = Float(s.xDot); o[2] = Float(s.theta); o[3] = Float(s.thetaDot)
    }

    /// The force of action 0 (push left) or 1 (push right).
    @inline(__always)
    static func force(action: Int) -> Double { action == 1 ? forceMagnitude : -forceMagnitude }

    /// One explicit-Euler step of the dynamics from `s` under `force`. `sinTheta` and `cosTheta` must be libm's
    /// `sin(s.theta)` and `cos(s.theta)`. Generic so that a vector steps four CartPoles at once in `SIMD4<Double>`
    /// lanes with exactly the operations, in exactly the order, of `step` (`Double`): lane-wise IEEE arithmetic makes
    /// every lane bit-identical to the scalar result.
    @inline(__always)
    static func advance<V: CartPoleNumber>(_ s: (x: V, xDot: V, theta: V, thetaDot: V), force: V, sinTheta: V, cosTheta: V)
        -> (x: V, xDot: V, theta: V, thetaDot: V) {
        let c = { (value: Double) in V(broadcast: value) }
        let (x, xDot, theta, thetaDot) = s
        let temp = (force + c(poleMassLength) * (thetaDot * thetaDot) * sinTheta) / c(totalMass)
        let thetaAcc = (c(gravity) * sinTheta - cosTheta * temp)
            / (c(length) * (c(4.0 / 3.0) - c(massPole) * (cosTheta * cosTheta) / c(totalMass)))
        let xAcc = temp - c(poleMassLength) * thetaAcc * cosTheta / c(totalMass)
        return (x + c(tau) * xDot, xDot + c(tau) * xAcc, theta + c(tau) * thetaDot, thetaDot + c(tau) * thetaAcc)
    }

    /// Whether `s` is beyond ±2.4 m or ±12°.
    @inline(__always)
    static func isTerminal(_ s: State) -> Bool {
        s.x < -xThreshold || s.x > xThreshold || s.theta < -thetaThreshold || s.theta > thetaThreshold
    }

    /// The reward of a step: 1, or with `suttonBartoReward` −1 on termination and 0 otherwise.
    @inline(__always)
    static func reward(terminated: Bool, suttonBartoReward: Bool) -> Double {
        suttonBartoReward ? (terminated ? -1.0 : 0.0) : 1.0
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        let a = try discreteAction(action, count: 2)
        state = Self.advance(state, force: Self.force(action: a), sinTheta: Foundation.sin(state.theta), cosTheta: Foundation.cos(state.theta))
        Self.write(state, to: observation.baseAddress!)
        let terminated = Self.isTerminal(state)
        endEpisode(if: terminated)
        let reward = Self.reward(terminated: terminated, suttonBartoReward: suttonBartoReward)
        return StepOutcome(reward: reward, terminated: terminated, truncated: false)
    }
}

/// The arithmetic `CartPole.advance` computes with: `Double` (one CartPole) or `SIMD4<Double>` (four, one per lane).
protocol CartPoleNumber {
    /// The constant `value` (in every lane).
    init(broadcast value: Double)
    static func + (lhs: Self, rhs: Self) -> Self
    static func - (lhs: Self, rhs: Self) -> Self
    static func * (lhs: Self, rhs: Self) -> Self
    static func / (lhs: Self, rhs: Self) -> Self
}

extension Double: CartPoleNumber {
    @inline(__always) init(broadcast value: Double) { self = value }
}

extension SIMD4: CartPoleNumber where Scalar == Double {
    @inline(__always) init(broadcast value: Double) { self.init(repeating: value) }
}
