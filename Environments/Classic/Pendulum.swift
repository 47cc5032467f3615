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

extension Pendulum: StateReplayable {
    var recordedState: [Double] { [state.theta, state.thetaDot] }
}

extension Pendulum {
    /// Gymnasium's drawing: a 500 × 500 picture of the rod, with the last torque as an arrow.
    public func render() -> RGBImage {
        let size = 500
        var img = RGBImage(width: size, height: size, fill: .white)
        let bound = 2.2, scale = Double(size) / (bound * 2), offset = Double(size) / 2
        let rodLength = 1 * scale, rodWidth = 0.2 * scale
        // θ = 0 is upright; Gymnasium rotates by θ + π/2 in y-up coordinates.
        let angle = state.theta + Double.pi / 2
        let end = (offset + rodLength * Foundation.cos(angle), Double(size) - (offset + rodLength * Foundation.sin(angle)))
        img.drawLine(x0: offset, y0: offset, x1: end.0, y1: end.1, width: rodWidth, color: RGB(204, 77, 77))
        img.fillCircle(cx: offset, cy: offset, radius: rodWidth / 2, color: RGB(204, 77, 77))
        img.fillCircle(cx: end.0, cy: end.1, radius: rodWidth / 2, color: RGB(204, 77, 77))
        img.fillCircle(cx: offset, cy: offset, radius: 0.05 * scale, color: .black)
        if let u = lastTorque, u != 0 {
            // The applied torque as an arrow along the bottom, scaled by its magnitude.
            let length = u / Self.maxTorque * scale * 0.8
            img.drawArrow(x0: offset, y0: Double(size) - 30, x1: offset + length, y1: Double(size) - 30, width: 4, color: .black)
        }
        return img
    }
}
