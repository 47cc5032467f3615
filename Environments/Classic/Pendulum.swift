import Foundation
import Imaging

/// Pendulum-v1 as Gymnasium 1.x: swing a pendulum up with torque in [−2, 2]; reward
/// −(θ̂² + 0.1·θ̇² + 0.001·u²) with θ̂ the angle normalized to [−π, π); never terminates.
public final class Pendulum: EpisodicEnvironment, Environment {
    public static let maxSpeed = 8.0, maxTorque = 2.0, dt = 0.05, mass = 1.0, length = 1.0
    public let g: Double

    /// (θ, θ̇), θ = 0 upright, not wrapped.
    public private(set) var state = (theta: 0.0, thetaDot: 0.0)
    /// The last torque applied (for rendering).
    public private(set) var lastTorque: Double?

    public init(g: Double = 10.0) {
        self.g = g
        super.init(name: "Pendulum-v1")
    }

    public var observationSpace: Space { .box(low: [-1, -1, -8], high: [1, 1, 8], shape: [3]) }
    public var actionSpace: Space { .box(low: -2, high: 2, shape: [1]) }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        state = (rng.uniform(-Double.pi, Double.pi), rng.uniform(-1, 1))
        lastTorque = nil
        write(observation)
    }

    public func setState(_ values: [Double]) throws {
        guard values.count == 2 else { throw EnvironmentError.invalidState("Pendulum state has 2 values, got \(values.count)") }
        state = (values[0], values[1])
        beginEpisode(seed: nil)
    }

    @inline(__always)
    func write(_ o: UnsafeMutableBufferPointer<Float>) {
        o[0] = Float(Foundation.cos(state.theta)); o[1] = Float(Foundation.sin(state.theta)); o[2] = Float(state.thetaDot)
    }

    /// ((x + π) mod 2π) − π with a floored modulo.
    @inline(__always)
    static func angleNormalize(_ x: Double) -> Double {
        let m = (x + Double.pi).truncatingRemainder(dividingBy: 2 * Double.pi)
        return (m < 0 ? m + 2 * Double.pi : m) - Double.pi
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        // NumPy clips the float32 action in float32; u·u, 0.001·u² and 3·u are float32 products.
        let u = min(max(try continuousAction(action), Float(-Self.maxTorque)), Float(Self.maxTorque))
        lastTorque = Double(u)
        let (th, thdot) = state
        let uSquared = Double(u * u)
        let costs = Self.angleNormalize(th) * Self.angleNormalize(th) + 0.1 * thdot * thdot + Double(Float(0.001) * Float(uSquared))
        var newThdot = thdot + (3 * g / (2 * Self.length) * Foundation.sin(th) + Double(Float(3) * u) / (Self.mass * Self.length * Self.length)) * Self.dt
        newThdot = min(max(newThdot, -Self.maxSpeed), Self.maxSpeed)
        state = (th + newThdot * Self.dt, newThdot)
        write(observation)
        return StepOutcome(reward: -costs, terminated: false, truncated: false)
    }
}

/// Acrobot-v1 (Sutton 1996; "book" dynamics) as Gymnasium 1.x: torque −1, 0, +1 on the middle joint, one RK4 step
/// of 0.2 s; terminated when the free end rises above the bar (−cos θ₁ − cos(θ₁+θ₂) > 1); reward −1 per step, 0 at the goal.
public final class Acrobot: EpisodicEnvironment, Environment {
    public static let dt = 0.2, linkLength1 = 1.0, linkLength2 = 1.0, linkMass1 = 1.0, linkMass2 = 1.0
    public static let linkCOM1 = 0.5, linkCOM2 = 0.5, linkMOI = 1.0, maxVel1 = 4 * Double.pi, maxVel2 = 9 * Double.pi
    public static let torques = [-1.0, 0.0, 1.0]

    /// (θ₁, θ₂, θ̇₁, θ̇₂).
    public private(set) var state = (0.0, 0.0, 0.0, 0.0)

    public init() { super.init(name: "Acrobot-v1") }

    public var observationSpace: Space {
        .box(low: [-1, -1, -1, -1, Float(-Self.maxVel1), Float(-Self.maxVel2)],
             high: [1, 1, 1, 1, Float(Self.maxVel1), Float(Self.maxVel2)], shape: [6])
    }
    public var actionSpace: Space { .discrete(3) }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        // Gymnasium stores the reset state as float32.
        func draw() -> Double { Double(Float(rng.uniform(-0.1, 0.1))) }
        state = (draw(), draw(), draw(), draw())
        write(observation)
    }

    public func setState(_ values: [Double]) throws {
        guard values.count == 4 else { throw EnvironmentError.invalidState("Acrobot state has 4 values, got \(values.count)") }
        state = (values[0], values[1], values[2], values[3])
        beginEpisode(seed: nil)
    }

    @inline(__always)
    func write(_ o: UnsafeMutableBufferPointer<Float>) {
        o[0] = Float(Foundation.cos(state.0)); o[1] = Float(Foundation.sin(state.0))
        o[2] = Float(Foundation.cos(state.1)); o[3] = Float(Foundation.sin(state.1))
        o[4] = Float(state.2); o[5] = Float(state.3)
    }

    /// Time derivative of (θ₁, θ₂, θ̇₁, θ̇₂) under torque `a`.
    @inline(__always)
    static func derivatives(_ s: (Double, Double, Double, Double), _ a: Double) -> (Double, Double, Double, Double) {
        let m1 = linkMass1, m2 = linkMass2, l1 = linkLength1, lc1 = linkCOM1, lc2 = linkCOM2, i1 = linkMOI, i2 = linkMOI
        let g = 9.8
        let (theta1, theta2, dtheta1, dtheta2) = s
        let sinTheta2 = Foundation.sin(theta2)
        let d1 = m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * Foundation.cos(theta2)) + i1 + i2
        let d2 = m2 * (lc2 * lc2 + l1 * lc2 * Foundation.cos(theta2)) + i2
        let phi2 = m2 * lc2 * g * Foundation.cos(theta1 + theta2 - Double.pi / 2)
        let phi1 = -m2 * l1 * lc2 * dtheta2 * dtheta2 * sinTheta2
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sinTheta2
            + (m1 * lc1 + m2 * l1) * g * Foundation.cos(theta1 - Double.pi / 2) + phi2
        let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1 * dtheta1 * sinTheta2 - phi2)
            / (m2 * lc2 * lc2 + i2 - d2 * d2 / d1)
        let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return (dtheta1, dtheta2, ddtheta1, ddtheta2)
    }

    @inline(__always)
    static func wrap(_ x: Double) -> Double {
        var x = x
        while x > Double.pi { x -= 2 * Double.pi }
        while x < -Double.pi { x += 2 * Double.pi }
        return x
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        let torque = Self.torques[try discreteAction(action, count: 3)]
        let s = state, h = Self.dt
        func add(_ a: (Double, Double, Double, Double), _ k: (Double, Double, Double, Double), _ c: Double) -> (Double, Double, Double, Double) {
            (a.0 + c * k.0, a.1 + c * k.1, a.2 + c * k.2, a.3 + c * k.3)
        }
        let k1 = Self.derivatives(s, torque)
        let k2 = Self.derivatives(add(s, k1, h / 2), torque)
        let k3 = Self.derivatives(add(s, k2, h / 2), torque)
        let k4 = Self.derivatives(add(s, k3, h), torque)
        let y = (s.0 + h / 6 * (k1.0 + 2 * k2.0 + 2 * k3.0 + k4.0),
                 s.1 + h / 6 * (k1.1 + 2 * k2.1 + 2 * k3.1 + k4.1),
                 s.2 + h / 6 * (k1.2 + 2 * k2.2 + 2 * k3.2 + k4.2),
                 s.3 + h / 6 * (k1.3 + 2 * k2.3 + 2 * k3.3 + k4.3))
        state = (Self.wrap(y.0), Self.wrap(y.1), min(max(y.2, -Self.maxVel1), Self.maxVel1), min(max(y.3, -Self.maxVel2), Self.maxVel2))
        write(observation)
        let terminated = -Foundation.cos(state.0) - Foundation.cos(state.1 + state.0) > 1.0
        endEpisode(if: terminated)
        return StepOutcome(reward: terminated ? 0 : -1, terminated: terminated, truncated: false)
    }
}
