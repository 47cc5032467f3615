import Foundation
import Imaging

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

extension Acrobot: StateReplayable {
    var recordedState: [Double] { [state.0, state.1, state.2, state.3] }
}

extension Acrobot {
    /// Gymnasium's drawing: a 500 × 500 picture of the two links and the goal line.
    public func render() -> RGBImage {
        let size = 500
        var img = RGBImage(width: size, height: size, fill: .white)
        let bound = Self.linkLength1 + Self.linkLength2 + 0.2, scale = Double(size) / (bound * 2), offset = Double(size) / 2
        let flip = { (y: Double) in Double(size) - y }
        // The goal line at height 1.
        img.drawLine(x0: -2.2 * scale + offset, y0: flip(1 * scale + offset), x1: 2.2 * scale + offset, y1: flip(1 * scale + offset),
                     width: 1, color: .black)
        let p1 = (-Self.linkLength1 * Foundation.cos(state.0) * scale, Self.linkLength1 * Foundation.sin(state.0) * scale)
        let p2 = (p1.0 - Self.linkLength2 * Foundation.cos(state.0 + state.1) * scale, p1.1 + Self.linkLength2 * Foundation.sin(state.0 + state.1) * scale)
        // Gymnasium's points are (y, x) pairs of the pendulum frame: x = p.1, y = p.0 upward.
        let joints = [(0.0, 0.0), (p1.1, p1.0), (p2.1, p2.0)].map { (x: $0.0 + offset, y: flip($0.1 + offset)) }
        for k in 0..<2 {
            img.drawLine(x0: joints[k].x, y0: joints[k].y, x1: joints[k + 1].x, y1: joints[k + 1].y, width: 0.2 * scale, color: RGB(0, 204, 204))
            img.fillCircle(cx: joints[k].x, cy: joints[k].y, radius: 0.1 * scale, color: RGB(204, 204, 0))
        }
        return img
    }
}
