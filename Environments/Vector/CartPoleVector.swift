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
            timeLimits[i]?.elapsedSteps = r.elapsed
            timeLimits[i]?.ended = r.needsReset
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
    /// Works in blocks of `block` sub-environments: first every sine and cosine of the block (independent libm
    /// calls), then the dynamics, whose divisions then overlap from one sub-environment to the next.
    @inline(__always)
    func step(_ range: Range<Int>, into out: VectorOutputs, finished: UnsafeMutablePointer<FinishedEpisode>,
              action: (Int) -> Action) -> (finished: Int, error: Error?) {
        var count = 0
        var firstError: Error?
        withUnsafeTemporaryAllocation(of: (sin: Double, cos: Double).self, capacity: Self.block) { trig in
            var blockStart = range.lowerBound
            while blockStart < range.upperBound {
                let blockEnd = min(blockStart + Self.block, range.upperBound)
                for i in blockStart..<blockEnd {
                    let theta = records.pointer(i).pointee.state.theta
                    trig[i - blockStart] = (Foundation.sin(theta), Foundation.cos(theta))
                }
                for i in blockStart..<blockEnd {
                    let r = records.pointer(i)
                    let o = out.observations + 4 * i
                    if r.pointee.needsReset {
                        start(r, observation: o)
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
                    let t = trig[i - blockStart]
                    let (next, terminated) = CartPole.advance(r.pointee.state, action: a, sinTheta: t.sin, cosTheta: t.cos)
                    r.pointee.state = next
                    CartPole.write(next, to: o)
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
                blockStart = blockEnd
            }
        }
        return (count, firstError)
    }

    /// Sub-environments per block of `step`.
    static let block = 16

    /// The error sub-environment i's `CartPole` throws for `action` (the same message as the generic path).
    private func invalidActionError(_ i: Int, _ action: Action) -> Error {
        do { _ = try cartPoles[i].discreteAction(action, count: 2) } catch { return error }
        preconditionFailure("CartPole accepted the action \(action) the fast path refused")
    }
}
