import Foundation
import Imaging

// Both MountainCars live here: they are one mountain (its height curve and its drawing are shared) under two
// different controls, discrete pushes and a continuous force with Gymnasium's float32 state.

/// MountainCar-v0 (Moore 1990) as Gymnasium 1.x: push left, none or right; reward −1 per step;
/// terminated at position ≥ 0.5 with velocity ≥ `goalVelocity` (Gymnasium's `goal_velocity`, default 0).
public final class MountainCar: EpisodicEnvironment, Environment {
    public static let minPosition = -1.2, maxPosition = 0.6, maxSpeed = 0.07, goalPosition = 0.5
    public static let force = 0.001, gravity = 0.0025

    public private(set) var state = (position: 0.0, velocity: 0.0)
    public let goalVelocity: Double

    public init(goalVelocity: Double = 0) {
        self.goalVelocity = goalVelocity
        super.init(name: "MountainCar-v0")
    }

    public var observationSpace: Space {
        .box(low: [Float(Self.minPosition), Float(-Self.maxSpeed)], high: [Float(Self.maxPosition), Float(Self.maxSpeed)], shape: [2])
    }
    public var actionSpace: Space { .discrete(3) }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        state = (rng.uniform(-0.6, -0.4), 0)
        observation[0] = Float(state.position); observation[1] = Float(state.velocity)
    }

    public func setState(_ values: [Double]) throws {
        guard values.count == 2 else { throw EnvironmentError.invalidState("MountainCar state has 2 values, got \(values.count)") }
        state = (values[0], values[1])
        beginEpisode(seed: nil)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        let a = try discreteAction(action, count: 3)
        var (position, velocity) = state
        velocity += Double(a - 1) * Self.force + Foundation.cos(3 * position) * (-Self.gravity)
        velocity = min(max(velocity, -Self.maxSpeed), Self.maxSpeed)
        position += velocity
        position = min(max(position, Self.minPosition), Self.maxPosition)
        if position == Self.minPosition && velocity < 0 { velocity = 0 }
        state = (position, velocity)
        observation[0] = Float(position); observation[1] = Float(velocity)
        let terminated = position >= Self.goalPosition && velocity >= goalVelocity
        endEpisode(if: terminated)
        return StepOutcome(reward: -1, terminated: terminated, truncated: false)
    }
}

extension MountainCar: ReplayableEnvironment {
    var recordedState: [Double] { [state.position, state.velocity] }

    func setRecordedState(_ values: [Double], float32: Bool) throws -> [Float] {
        try setState(values)
        return [Float(state.position), Float(state.velocity)]
    }
}

/// MountainCarContinuous-v0 as Gymnasium 1.x, including its float32 state: force = clip(a, −1, 1);
/// reward −0.1·a² (unclipped a) plus 100 on reaching position ≥ 0.45 with velocity ≥ `goalVelocity` (default 0).
public final class MountainCarContinuous: EpisodicEnvironment, Environment {
    public static let minPosition = -1.2, maxPosition = 0.6, maxSpeed = 0.07, goalPosition = 0.45, power = 0.0015

    /// The state; float32 values after the first step, float64 right after reset (as in Gymnasium).
    public private(set) var state = (position: 0.0, velocity: 0.0)
    /// Whether the state is currently stored as float32 (true after any step).
    public private(set) var stateIsFloat32 = false
    public let goalVelocity: Double

    public init(goalVelocity: Double = 0) {
        self.goalVelocity = goalVelocity
        super.init(name: "MountainCarContinuous-v0")
    }

    public var observationSpace: Space {
        .box(low: [Float(Self.minPosition), Float(-Self.maxSpeed)], high: [Float(Self.maxPosition), Float(Self.maxSpeed)], shape: [2])
    }
    public var actionSpace: Space { .box(low: -1, high: 1, shape: [1]) }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        state = (rng.uniform(-0.6, -0.4), 0)
        stateIsFloat32 = false
        observation[0] = Float(state.position); observation[1] = Float(state.velocity)
    }

    /// Sets the state (float64, as right after a reset) and starts an episode from it.
    public func setState(_ values: [Double], float32: Bool = false) throws {
        guard values.count == 2 else { throw EnvironmentError.invalidState("MountainCarContinuous state has 2 values, got \(values.count)") }
        state = (values[0], values[1])
        stateIsFloat32 = float32
        beginEpisode(seed: nil)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        let a = try continuousAction(action)
        let force = min(max(a, -1), 1)
        let inRange = force == a
        // The increment: NumPy evaluates force·power in float32 (a float32 array times a Python float) and
        // 0.0025·cos(3·position) in float64 then float32; out-of-range actions were clipped into a float64 value.
        let increment: Double
        if inRange {
            let threeP: Double = stateIsFloat32 ? Double(Float(3) * Float(state.position)) : 3 * state.position
            let gravityTerm = Float(0.0025 * Foundation.cos(threeP))
            increment = Double(force * Float(Self.power) - gravityTerm)
        } else {
            let threeP: Double = stateIsFloat32 ? Double(Float(3) * Float(state.position)) : 3 * state.position
            increment = stateIsFloat32 ? Double(Float(Double(force) * Self.power - 0.0025 * Foundation.cos(threeP)))
                                       : Double(force) * Self.power - 0.0025 * Foundation.cos(threeP)
        }
        var position = state.position, velocity = state.velocity
        if stateIsFloat32 {
            var v = Float(velocity) + Float(increment)
            v = min(max(v, Float(-Self.maxSpeed)), Float(Self.maxSpeed))
            var p = Float(position) + v
            p = min(max(p, Float(Self.minPosition)), Float(Self.maxPosition))
            if p == Float(Self.minPosition) && v < 0 { v = 0 }
            position = Double(p); velocity = Double(v)
        } else {
            velocity += increment
            velocity = min(max(velocity, -Self.maxSpeed), Self.maxSpeed)
            position += velocity
            position = min(max(position, Self.minPosition), Self.maxPosition)
            if position == Self.minPosition && velocity < 0 { velocity = 0 }
        }
        let terminated = position >= Self.goalPosition && velocity >= goalVelocity
        // The state is stored as float32 after every step.
        state = (Double(Float(position)), Double(Float(velocity)))
        stateIsFloat32 = true
        observation[0] = Float(state.position); observation[1] = Float(state.velocity)
        endEpisode(if: terminated)
        let reward = (terminated ? 100.0 : 0.0) - Foundation.pow(Double(a), 2) * 0.1
        return StepOutcome(reward: reward, terminated: terminated, truncated: false)
    }
}

extension MountainCarContinuous: ReplayableEnvironment {
    var recordedState: [Double] { [state.position, state.velocity] }
    var recordedStateIsFloat32: Bool { stateIsFloat32 }

    func setRecordedState(_ values: [Double], float32: Bool) throws -> [Float] {
        try setState(values, float32: float32)
        return [Float(state.position), Float(state.velocity)]
    }
}

/// The mountain's height at `x`, shared by both MountainCar variants.
func mountainHeight(_ x: Double) -> Double { Foundation.sin(3 * x) * 0.45 + 0.55 }

/// Draws the mountain, car and flag for a car at `position` (both MountainCar variants).
func renderMountainCar(position: Double, goal: Double) -> RGBImage {
    let width = 600, height = 400
    var img = RGBImage(width: width, height: height, fill: .white)
    let minX = -1.2, maxX = 0.6, scale = Double(width) / (maxX - minX)
    let flip = { (y: Double) in Double(height) - y }
    var previous: (x: Double, y: Double)?
    for i in 0...100 {
        let x = minX + (maxX - minX) * Double(i) / 100
        let p = ((x - minX) * scale, flip(mountainHeight(x) * scale))
        if let q = previous { img.drawLine(x0: q.x, y0: q.y, x1: p.0, y1: p.1, width: 2, color: .black) }
        previous = p
    }
    let clearance = 10.0, carWidth = 40.0, carHeight = 20.0
    let angle = Foundation.cos(3 * position)
    let origin = ((position - minX) * scale, clearance + mountainHeight(position) * scale)
    func place(_ p: (Double, Double)) -> (x: Double, y: Double) {
        let c = Foundation.cos(angle), s = Foundation.sin(angle)
        return (origin.0 + p.0 * c - p.1 * s, flip(origin.1 + p.0 * s + p.1 * c))
    }
    img.fillPolygon([(-carWidth / 2, 0), (-carWidth / 2, carHeight), (carWidth / 2, carHeight), (carWidth / 2, 0)].map(place), color: .black)
    for wheel in [(carWidth / 4, 0.0), (-carWidth / 4, 0.0)] {
        let c = place(wheel)
        img.fillCircle(cx: c.x, cy: c.y, radius: carHeight / 2.5, color: RGB(128, 128, 128))
    }
    let flagX = (goal - minX) * scale, flagBottom = mountainHeight(goal) * scale, flagTop = flagBottom + 50
    img.drawLine(x0: flagX, y0: flip(flagBottom), x1: flagX, y1: flip(flagTop), width: 2, color: .black)
    img.fillPolygon([(flagX, flip(flagTop)), (flagX, flip(flagTop - 10)), (flagX + 25, flip(flagTop - 5))], color: RGB(204, 204, 0))
    return img
}

extension MountainCar {
    public func render() -> RGBImage { renderMountainCar(position: state.position, goal: Self.goalPosition) }
}

extension MountainCarContinuous {
    public func render() -> RGBImage { renderMountainCar(position: state.position, goal: Self.goalPosition) }
}
