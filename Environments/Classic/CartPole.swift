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

    /// (x, ẋ, θ, θ̇) in float64.
    public private(set) var state: State = (x: 0.0, xDot: 0.0, theta: 0.0, thetaDot: 0.0)
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

    /// Gymnasium's drawing: a 600 × 400 picture, the cart and pole in y-up coordinates (`flip` turns a row over).
    public func render() -> RGBImage {
        let width = 600, height = 400
        var img = RGBImage(width: width, height: height, fill: .white)
        let worldWidth = Self.xThreshold * 2, scale = Double(width) / worldWidth
        let poleWidth = 10.0, poleLength = scale * (2 * Self.length), cartWidth = 50.0, cartHeight = 30.0
        let flip = { (y: Double) in Double(height) - y }
        let cartX = state.x * scale + Double(width) / 2, cartY = 100.0
        let l = -cartWidth / 2, r = cartWidth / 2, t = cartHeight / 2, b = -cartHeight / 2
        img.fillPolygon([(l, b), (l, t), (r, t), (r, b)].map { (cartX + $0.0, flip(cartY + $0.1)) }, color: .black)
        let axleOffset = cartHeight / 4
        let pole = [(-poleWidth / 2, -poleWidth / 2), (-poleWidth / 2, poleLength - poleWidth / 2),
                    (poleWidth / 2, poleLength - poleWidth / 2), (poleWidth / 2, -poleWidth / 2)].map { p -> (x: Double, y: Double) in
            // Rotate by −θ (Gymnasium's pygame.math.Vector2.rotate_rad(-x[2])).
            let c = Foundation.cos(-state.theta), s = Foundation.sin(-state.theta)
            return (cartX + p.0 * c - p.1 * s, flip(cartY + axleOffset + p.0 * s + p.1 * c))
        }
        img.fillPolygon(pole, color: RGB(202, 152, 101))
        img.fillCircle(cx: cartX, cy: flip(cartY + axleOffset), radius: poleWidth / 2, color: RGB(129, 132, 203))
        img.fillRect(x: 0, y: Int(flip(cartY)), width: width, height: 1, color: .black)
        return img
    }

    /// Takes back a copy's state from its batch stepper (`CartPoleVector`).
    fileprivate func resume(state: State, rng: SeededGenerator, ended: Bool) {
        self.state = state
        resumeEpisode(rng: rng, ended: ended)
    }
}

extension CartPole: ReplayableEnvironment {
    var recordedState: [Double] { [state.x, state.xDot, state.theta, state.thetaDot] }

    func setRecordedState(_ values: [Double], float32: Bool) throws -> [Float] {
        try setState(values)
        return observation(4) { Self.write(state, to: $0.baseAddress!) }
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

// MARK: - The vector fast path

extension CartPole: BatchSteppable {
    static func batchStepper(for copies: [CartPole], maxEpisodeSteps: [Int?]) -> any BatchStepper {
        CartPoleVector(copies, maxEpisodeSteps: maxEpisodeSteps)
    }
}

/// CartPole's batch stepper: N CartPoles (each alone or inside one `TimeLimit`, as `Registry.make("CartPole-v1")`
/// builds them) stepped together by a `VectorEnvironment` (Gymnasium's `CartPoleVectorEnv`).
///
/// The generic path steps every sub-environment through the `Environment` existential, the `TimeLimit` wrapper and
/// the `Action` enum. Here each sub-environment's whole state — physics, generator, time-limit counter and episode
/// bookkeeping — is one 128-byte record (so the records of different threads never share a cache line), stepped
/// with `CartPole.advance`, `CartPole.initialState` and `CartPole.reward`, the very functions `CartPole` uses:
/// observations, rewards, flags, finished episodes and random streams are bit-identical to the generic path.
///
/// The records become the state of record at the vector's first `reset` (`takeOver`, which takes each
/// sub-environment's state, generator and options; a restored vector's too); from then on the `CartPole` and `TimeLimit` objects are not stepped,
/// and `handBack` copies the records into them when someone looks at `VectorEnvironment.envs`.
final class CartPoleVector: BatchStepper, @unchecked Sendable {
    /// One sub-environment's state.
    struct Record {
        var state: CartPole.State = (0, 0, 0, 0)
        var rng = SeededGenerator(seed: 0)
        /// Steps since the episode began (`TimeLimit.elapsedSteps`; also the episode length so far).
        var elapsed = 0
        var episodeReturn = 0.0
        var maxEpisodeSteps = Int.max
        /// The episode ended at the last step: the next step autoresets.
        var needsReset = false
        var suttonBartoReward = false
    }

    let cartPoles: [CartPole]
    /// The time limit around each CartPole (nil: none).
    let maxEpisodeSteps: [Int?]
    private let records: CacheLinePadded<Record>

    init(_ cartPoles: [CartPole], maxEpisodeSteps: [Int?]) {
        self.cartPoles = cartPoles
        self.maxEpisodeSteps = maxEpisodeSteps
        records = CacheLinePadded(count: cartPoles.count, repeating: Record())
    }

    deinit { records.deallocate() }

    /// Makes the records the state of record: each takes its sub-environment's state, generator, time limit and
    /// reward option, and where its episode stands.
    func takeOver(_ episodes: [EpisodeProgress]) {
        for i in cartPoles.indices {
            records[i].state = cartPoles[i].state
            records[i].rng = cartPoles[i].rng
            records[i].elapsed = episodes[i].length
            records[i].episodeReturn = episodes[i].episodeReturn
            records[i].needsReset = episodes[i].needsReset
            records[i].maxEpisodeSteps = maxEpisodeSteps[i] ?? Int.max
            records[i].suttonBartoReward = cartPoles[i].suttonBartoReward
        }
    }

    /// Copies the records into the `CartPole` objects and returns where their episodes stand, leaving the objects
    /// exactly as the generic path would have (`terminated`: the vector's flags of the last step; a CartPole refuses
    /// to step only after terminating, its time limit after truncating too).
    func handBack(terminated: [Bool]) -> [EpisodeProgress] {
        cartPoles.indices.map { i in
            let r = records[i]
            cartPoles[i].resume(state: r.state, rng: r.rng, ended: r.needsReset && terminated[i])
            return EpisodeProgress(length: r.elapsed, episodeReturn: r.episodeReturn, needsReset: r.needsReset)
        }
    }

    /// Resets sub-environments `range` (sub-environment i reseeded with `seed + i` when a seed is given).
    func reset(_ range: Range<Int>, seed: UInt64?, into out: VectorOutputs) {
        for i in range {
            let r = records.pointer(i)
            if let seed { r.pointee.rng = SeededGenerator(seed: seed &+ UInt64(i)) }
            start(r, observation: out.observations + 4 * i)
            r.pointee.needsReset = false
            out.rewards[i] = 0; out.terminated[i] = false; out.truncated[i] = false; out.autoreset[i] = false
        }
    }

    @inline(__always)
    private func start(_ r: UnsafeMutablePointer<Record>, observation: UnsafeMutablePointer<Float>) {
        r.pointee.state = CartPole.initialState(using: &r.pointee.rng)
        r.pointee.elapsed = 0
        r.pointee.episodeReturn = 0
        CartPole.write(r.pointee.state, to: observation)
    }

    func step(_ range: Range<Int>, actions: VectorActions, into out: VectorOutputs,
              finished: UnsafeMutablePointer<FinishedEpisode>) -> (finished: Int, error: Error?) {
        actions.withActions { action in step(range, into: out, finished: finished, action: action) }
    }

    /// Steps (or autoresets) sub-environments `range` with `action(i)`, appending their finished episodes to
    /// `finished` (in order); returns how many finished and the first invalid action's error (that sub-environment
    /// is left as it was, with reward 0 and both flags false — as the generic path leaves it).
    ///
    /// Works in blocks of `block` sub-environments, in three passes over a small scratch area (columns of `block`
    /// values): (1) autoresets, action checks, and each stepping sub-environment's state, force, sine and cosine
    /// (independent libm calls); (2) `CartPole.advance` four sub-environments at a time in `SIMD4<Double>` lanes;
    /// (3) the new state, flags and bookkeeping of each sub-environment that stepped. Pass (1) writes zeros in the
    /// columns of the others and in the lanes past the block's end, so that pass (2) computes on defined, finite
    /// values (never denormal garbage) whose results are ignored; the scratch area is not cleared per call.
    @inline(__always)
    private func step(_ range: Range<Int>, into out: VectorOutputs, finished: UnsafeMutablePointer<FinishedEpisode>,
              action: (Int) -> Action) -> (finished: Int, error: Error?) {
        let n = Self.block
        var count = 0
        var firstError: Error?
        withUnsafeTemporaryAllocation(of: Double.self, capacity: Self.columns * n) { scratch in
            let x = scratch.baseAddress!, xDot = x + n, theta = x + 2 * n, thetaDot = x + 3 * n
            let force = x + 4 * n, sinTheta = x + 5 * n, cosTheta = x + 6 * n
            /// Fills column k with zeros: a sub-environment that does not step, or a lane past the block's end.
            func clear(_ k: Int) {
                for c in 0..<Self.columns { x[c * n + k] = 0 }
            }
            var first = range.lowerBound
            while first < range.upperBound {
                let size = min(n, range.upperBound - first)
                var stepping: UInt32 = 0
                for k in 0..<size {
                    let i = first + k, r = records.pointer(i)
                    if r.pointee.needsReset {
                        start(r, observation: out.observations + 4 * i)
                        r.pointee.needsReset = false
                        out.rewards[i] = 0; out.terminated[i] = false; out.truncated[i] = false; out.autoreset[i] = true
                        clear(k)
                        continue
                    }
                    out.autoreset[i] = false
                    let given = action(i)
                    guard case let .discrete(a) = given, a == 0 || a == 1 else {
                        out.rewards[i] = 0; out.terminated[i] = false; out.truncated[i] = false
                        if firstError == nil { firstError = invalidActionError(i, given) }
                        clear(k)
                        continue
                    }
                    let s = r.pointee.state
                    x[k] = s.x; xDot[k] = s.xDot; theta[k] = s.theta; thetaDot[k] = s.thetaDot
                    force[k] = CartPole.force(action: a)
                    sinTheta[k] = Foundation.sin(s.theta); cosTheta[k] = Foundation.cos(s.theta)
                    stepping |= 1 &<< k
                }
                guard stepping != 0 else { first += size; continue }
                for k in size..<((size + 3) & ~3) { clear(k) }
                Self.advanceBlock(scratch.baseAddress!, size: size)
                var pending = stepping
                while pending != 0 {
                    let k = pending.trailingZeroBitCount
                    pending &= pending &- 1
                    let i = first + k, r = records.pointer(i)
                    let state = (x: x[k], xDot: xDot[k], theta: theta[k], thetaDot: thetaDot[k])
                    r.pointee.state = state
                    CartPole.write(state, to: out.observations + 4 * i)
                    let terminated = CartPole.isTerminal(state)
                    let reward = CartPole.reward(terminated: terminated, suttonBartoReward: r.pointee.suttonBartoReward)
                    r.pointee.elapsed += 1
                    r.pointee.episodeReturn += reward
                    let truncated = r.pointee.elapsed >= r.pointee.maxEpisodeSteps
                    out.rewards[i] = reward; out.terminated[i] = terminated; out.truncated[i] = truncated
                    if terminated || truncated {
                        r.pointee.needsReset = true
                        finished[count] = FinishedEpisode(env: i, episodeReturn: r.pointee.episodeReturn, length: r.pointee.elapsed)
                        count += 1
                    }
                }
                first += size
            }
        }
        return (count, firstError)
    }

    /// Pass (2) of `step`: `CartPole.advance` over the first `size` columns of `scratch`, four at a time in
    /// `SIMD4<Double>` lanes. Not inlined, so that the constants it keeps in registers stay out of pass (1), whose
    /// libm calls would make them reload for every sub-environment.
    @inline(never)
    private static func advanceBlock(_ scratch: UnsafeMutablePointer<Double>, size: Int) {
        typealias Lanes = SIMD4<Double>
        let n = block
        let x = scratch, xDot = x + n, theta = x + 2 * n, thetaDot = x + 3 * n
        let force = x + 4 * n, sinTheta = x + 5 * n, cosTheta = x + 6 * n
        func lanes(_ column: UnsafeMutablePointer<Double>, _ k: Int) -> Lanes {
            UnsafeRawPointer(column + k).loadUnaligned(as: Lanes.self)
        }
        var k = 0
        while k < size {
            let next = CartPole.advance((lanes(x, k), lanes(xDot, k), lanes(theta, k), lanes(thetaDot, k)),
                                        force: lanes(force, k), sinTheta: lanes(sinTheta, k), cosTheta: lanes(cosTheta, k))
            UnsafeMutableRawPointer(x + k).storeBytes(of: next.x, as: Lanes.self)
            UnsafeMutableRawPointer(xDot + k).storeBytes(of: next.xDot, as: Lanes.self)
            UnsafeMutableRawPointer(theta + k).storeBytes(of: next.theta, as: Lanes.self)
            UnsafeMutableRawPointer(thetaDot + k).storeBytes(of: next.thetaDot, as: Lanes.self)
            k += 4
        }
    }

    /// Sub-environments per block of `step` (a multiple of 4).
    static let block = 16
    /// The scratch columns of `step`: x, ẋ, θ, θ̇, force, sin θ, cos θ.
    private static let columns = 7

    /// The error sub-environment i's `CartPole` throws for `action` (the same message as the generic path).
    private func invalidActionError(_ i: Int, _ action: Action) -> Error {
        do { _ = try cartPoles[i].discreteAction(action, count: 2) } catch { return error }
        preconditionFailure("CartPole accepted the action \(action) the fast path refused")
    }
}
