import Foundation
import Imaging

/// CartPole-v1 (Barto, Sutton & Anderson 1983), exactly as Gymnasium 1.x: explicit Euler on the
/// frictionless cart-pole, force ±10, terminated beyond ±2.4 m or ±12°, reward 1 per step.
public final class CartPole: EpisodicEnvironment, Environment {
    public static let gravity = 9.8, massCart = 1.0, massPole = 0.1, length = 0.5, forceMagnitude = 10.0, tau = 0.02
    public static let totalMass = massPole + massCart, poleMassLength = massPole * length
    public static let thetaThreshold = 12 * 2 * Double.pi / 360, xThreshold = 2.4

    /// (x, ẋ, θ, θ̇) in float64.
    public private(set) var state = (x: 0.0, xDot: 0.0, theta: 0.0, thetaDot: 0.0)
    /// Gymnasium's `sutton_barto_reward` option: reward 0 per step and −1 on termination.
    public let suttonBartoReward: Bool

    public init(suttonBartoReward: Bool = false) {
        self.suttonBartoReward = suttonBartoReward
        super.init(name: "CartPole-v1")
    }

    public var observationSpace: Space {
        let high: [Float] = [Float(Self.xThreshold * 2), .greatestFiniteMagnitude, Float(Self.thetaThreshold * 2), .greatestFiniteMagnitude]
        return .box(low: high.map { -$0 }, high: high, shape: [4])
    }
    public var actionSpace: Space { .discrete(2) }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        state = (rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05))
        write(observation)
    }

    /// Sets the physical state directly (for replaying recordings) and starts an episode from it.
    public func setState(_ values: [Double]) throws {
        guard values.count == 4 else { throw EnvironmentError.invalidState("CartPole state has 4 values, got \(values.count)") }
        state = (values[0], values[1], values[2], values[3])
        beginEpisode(seed: nil)
    }

    @inline(__always)
    func write(_ o: UnsafeMutableBufferPointer<Float>) {
        o[0] = Float(state.x); o[1] = Float(state.xDot); o[2] = Float(state.theta); o[3] = Float(state.thetaDot)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        let a = try discreteAction(action, count: 2)
        let force = a == 1 ? Self.forceMagnitude : -Self.forceMagnitude
        var (x, xDot, theta, thetaDot) = state
        let cosTheta = Foundation.cos(theta), sinTheta = Foundation.sin(theta)
        let temp = (force + Self.poleMassLength * (thetaDot * thetaDot) * sinTheta) / Self.totalMass
        let thetaAcc = (Self.gravity * sinTheta - cosTheta * temp)
            / (Self.length * (4.0 / 3.0 - Self.massPole * (cosTheta * cosTheta) / Self.totalMass))
        let xAcc = temp - Self.poleMassLength * thetaAcc * cosTheta / Self.totalMass
        x = x + Self.tau * xDot
        xDot = xDot + Self.tau * xAcc
        theta = theta + Self.tau * thetaDot
        thetaDot = thetaDot + Self.tau * thetaAcc
        state = (x, xDot, theta, thetaDot)
        write(observation)
        let terminated = x < -Self.xThreshold || x > Self.xThreshold || theta < -Self.thetaThreshold || theta > Self.thetaThreshold
        endEpisode(if: terminated)
        let reward = suttonBartoReward ? (terminated ? -1.0 : 0.0) : 1.0
        return StepOutcome(reward: reward, terminated: terminated, truncated: false)
    }
}
