import Foundation
import SeededRandom

/// The fast path of `VectorEnvironment` for vectors of CartPoles (each a `CartPole`, alone or inside one
/// `TimeLimit`, as `Registry.make("CartPole-v1")` builds them).
///
/// The generic path steps every sub-environment through the `Environment` existential, the `TimeLimit` wrapper and
/// the `Action` enum. Here each sub-environment's whole state — physics, generator, time-limit counter and episode
/// bookkeeping — is one 128-byte record (so the records of different threads never share a cache line), stepped
/// with `CartPole.advance`, `CartPole.initialState` and `CartPole.reward`, the very functions `CartPole` uses:
/// observations, rewards, flags, finished episodes and random streams are bit-identical to the generic path.
///
/// The records become the state of record at the vector's first `reset` (`activate()`, which takes each
/// sub-environment's generator and options); from then on the `CartPole` and `TimeLimit` objects are not stepped,
/// and `storeBack` copies the records into them when someone looks at `VectorEnvironment.envs`.
final class CartPoleVector: @unchecked Sendable {
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
    let timeLimits: [TimeLimit?]
    private let records: CacheLinePadded<Record>

    /// The fast path for `envs`, or nil unless every sub-environment is a distinct CartPole, alone or in a `TimeLimit`.
    init?(_ envs: [Environment]) {
        var poles: [CartPole] = [], limits: [TimeLimit?] = []
        var seen = Set<ObjectIdentifier>()
        for env in envs {
            let limit = env as? TimeLimit
            guard let pole = (limit?.inner ?? env) as? CartPole, seen.insert(ObjectIdentifier(pole)).inserted else { return nil }
            poles.append(pole)
            limits.append(limit)
        }
        cartPoles = poles
        timeLimits = limits
        records = CacheLinePadded(count: envs.count, repeating: Record())
    }

    deinit { records.deallocate() }

    /// Makes the records the state of record: each takes its sub-environment's generator, time limit and reward option.
    func activate() {
        for i in cartPoles.indices {
            records[i].rng = cartPoles[i].rng
            records[i].maxEpisodeSteps = timeLimits[i]?.maxEpisodeSteps ?? Int.max
            records[i].suttonBartoReward = cartPoles[i].suttonBartoReward
        }
    }

    /// Copies the records into the `CartPole` and `TimeLimit` objects, leaving them exactly as the generic path
    /// would have (`terminated`: the vector's flags of the last step).
    func storeBack(terminated: [Bool]) {
        for i in cartPoles.indices {
            let r = records[i]
            cartPoles[i].state = r.state
            cartPoles[i].rng = r.rng
            cartPoles[i].needsReset = r.needsReset && terminated[i]
            cartPoles[i].hasStarted = true
            timeLimits[i]?.elapsedSteps = r.elapsed
            timeLimits[i]?.ended = r.needsReset
            timeLimits[i]?.hasStarted = true
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

    /// Steps (or autoresets) sub-environments `range` with `action(i)`, appending their finished episodes to
    /// `finished` (in order); returns how many finished and the first invalid action's error (that sub-environment
    /// is left as it was, with reward 0 and both flags false — as the generic path leaves it).
    ///
    /// Works in blocks of `block` sub-environments, in three passes over a small scratch area (columns of `block`
    /// values): (1) autoresets, action checks, and each stepping sub-environment's state, force, sine and cosine
    /// (independent libm calls); (2) `CartPole.advance` four sub-environments at a time in `SIMD4<Double>` lanes;
    /// (3) each sub-environment's new state, flags and bookkeeping. Columns of sub-environments that do not step
    /// hold stale finite values (never denormal garbage) and their results are ignored.
    @inline(__always)
    func step(_ range: Range<Int>, into out: VectorOutputs, finished: UnsafeMutablePointer<FinishedEpisode>,
              action: (Int) -> Action) -> (finished: Int, error: Error?) {
        typealias Lanes = SIMD4<Double>
        let n = Self.block
        var count = 0
        var firstError: Error?
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 7 * n) { scratch in
            let x = scratch.baseAddress!, xDot = x + n, theta = x + 2 * n, thetaDot = x + 3 * n
            let force = x + 4 * n, sinTheta = x + 5 * n, cosTheta = x + 6 * n
            // Columns of sub-environments that do not step keep earlier, finite values (zeros at first).
            scratch.initialize(repeating: 0)
            func lanes(_ column: UnsafeMutablePointer<Double>, _ k: Int) -> Lanes {
                UnsafeRawPointer(column + k).loadUnaligned(as: Lanes.self)
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
                        continue
                    }
                    out.autoreset[i] = false
                    let given = action(i)
                    guard case let .discrete(a) = given, a == 0 || a == 1 else {
                        out.rewards[i] = 0; out.terminated[i] = false; out.truncated[i] = false
                        if firstError == nil { firstError = invalidActionError(i, given) }
                        continue
                    }
                    let s = r.pointee.state
                    x[k] = s.x; xDot[k] = s.xDot; theta[k] = s.theta; thetaDot[k] = s.thetaDot
                    force[k] = CartPole.force(action: a)
                    sinTheta[k] = Foundation.sin(s.theta); cosTheta[k] = Foundation.cos(s.theta)
                    stepping |= 1 << k
                }
                guard stepping != 0 else { first += size; continue }
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
                for k in 0..<size where stepping & (1 << k) != 0 {
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

    /// Sub-environments per block of `step` (a multiple of 4).
    static let block = 16

    /// The error sub-environment i's `CartPole` throws for `action` (the same message as the generic path).
    private func invalidActionError(_ i: Int, _ action: Action) -> Error {
        do { _ = try cartPoles[i].discreteAction(action, count: 2) } catch { return error }
        preconditionFailure("CartPole accepted the action \(action) the fast path refused")
    }
}
