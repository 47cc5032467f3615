import Dispatch
import Foundation

/// A finished episode of one sub-environment of a vector environment.
public struct FinishedEpisode: Sendable, Equatable {
    public var env: Int
    public var episodeReturn: Double
    public var length: Int
}

/// N copies of an environment stepped together, with Gymnasium 1.x's default **next-step autoreset**:
///
/// - When sub-environment i ends (terminated or truncated) at a step, that step returns its *final* observation,
///   reward and flags as usual.
/// - At the next `step`, sub-environment i ignores its action, is reset, and returns the reset observation with
///   reward 0 and both flags false; `autoreset[i]` is true for that step (no transition happened: learners mask it).
///
/// Observations live in one contiguous buffer `[numEnvs × observationSize]`, row i for sub-environment i.
/// `reset(seed: s)` seeds sub-environment i with s + i (Gymnasium's convention). With `threads > 1` the
/// sub-environments are stepped in parallel chunks; results are identical to a single thread for the same seeds.
public final class VectorEnvironment {
    public let envs: [Environment]
    public let numEnvs: Int
    public let observationSize: Int
    public let threads: Int
    /// The latest observations, row-major `[numEnvs, observationSize]`.
    public private(set) var observations: [Float]
    public private(set) var rewards: [Double]
    public private(set) var terminated: [Bool]
    public private(set) var truncated: [Bool]
    /// True for the sub-environments that were reset (and ignored their action) in the last `step`.
    public private(set) var autoreset: [Bool]
    /// Episodes that ended in the last `step`.
    public private(set) var finishedEpisodes: [FinishedEpisode] = []
    private var needsReset: [Bool]
    private var runningReturns: [Double]
    private var runningLengths: [Int]

    /// Builds `count` environments with `make` (called with the index).
    public init(count: Int, threads: Int = 1, make: (Int) throws -> Environment) throws {
        precondition(count > 0, "a vector environment needs at least one environment")
        envs = try (0..<count).map(make)
        numEnvs = count
        observationSize = envs[0].observationSpace.flatCount
        self.threads = max(1, min(threads, count))
        observations = [Float](repeating: 0, count: count * observationSize)
        rewards = [Double](repeating: 0, count: count)
        terminated = [Bool](repeating: false, count: count)
        truncated = [Bool](repeating: false, count: count)
        autoreset = [Bool](repeating: false, count: count)
        needsReset = [Bool](repeating: false, count: count)
        runningReturns = [Double](repeating: 0, count: count)
        runningLengths = [Int](repeating: 0, count: count)
    }

    /// `count` copies of a registered environment.
    public convenience init(id: String, options: [String: String] = [:], count: Int, threads: Int = 1) throws {
        try self.init(count: count, threads: threads) { _ in try Registry.make(id, options: options) }
    }

    public var observationSpace: Space { envs[0].observationSpace }
    public var actionSpace: Space { envs[0].actionSpace }

    /// Resets every sub-environment (sub-environment i with seed s + i when a seed is given).
    public func reset(seed: UInt64? = nil) {
        let d = observationSize
        observations.withUnsafeMutableBufferPointer { obs in
            for i in 0..<numEnvs {
                envs[i].reset(seed: seed.map { $0 &+ UInt64(i) }, into: UnsafeMutableBufferPointer(rebasing: obs[(i * d)..<((i + 1) * d)]))
            }
        }
        for i in 0..<numEnvs {
            needsReset[i] = false; autoreset[i] = false; terminated[i] = false; truncated[i] = false
            rewards[i] = 0; runningReturns[i] = 0; runningLengths[i] = 0
        }
        finishedEpisodes.removeAll(keepingCapacity: true)
    }

    /// Steps every sub-environment with `actions[i]` (next-step autoreset as described above).
    public func step(_ actions: [Action]) throws {
        precondition(actions.count == numEnvs, "\(actions.count) actions for \(numEnvs) environments")
        finishedEpisodes.removeAll(keepingCapacity: true)
        let d = observationSize
        var firstError: Error?
        let errorLock = NSLock()
        // Raw pointers to the per-environment outputs: each thread writes only the rows of its own chunk.
        let obs = observations.withUnsafeMutableBufferPointer { $0.baseAddress! }
        let rew = rewards.withUnsafeMutableBufferPointer { $0.baseAddress! }
        let term = terminated.withUnsafeMutableBufferPointer { $0.baseAddress! }
        let trunc = truncated.withUnsafeMutableBufferPointer { $0.baseAddress! }
        let auto = autoreset.withUnsafeMutableBufferPointer { $0.baseAddress! }
        let needs = needsReset.withUnsafeMutableBufferPointer { $0.baseAddress! }
        let chunk = (numEnvs + threads - 1) / threads
        let work = { (t: Int) in
            for i in (t * chunk)..<min((t + 1) * chunk, self.numEnvs) {
                let row = UnsafeMutableBufferPointer(start: obs + i * d, count: d)
                if needs[i] {
                    self.envs[i].reset(seed: nil, into: row)
                    rew[i] = 0; term[i] = false; trunc[i] = false; auto[i] = true; needs[i] = false
                    continue
                }
                auto[i] = false
                do {
                    let o = try self.envs[i].step(actions[i], into: row)
                    rew[i] = o.reward; term[i] = o.terminated; trunc[i] = o.truncated
                    needs[i] = o.terminated || o.truncated
                } catch {
                    errorLock.lock(); if firstError == nil { firstError = error }; errorLock.unlock()
                }
            }
        }
        if threads == 1 {
            work(0)
        } else {
            nonisolated(unsafe) let parallelWork = work
            DispatchQueue.concurrentPerform(iterations: threads) { parallelWork($0) }
        }
        if let firstError { throw firstError }
        for i in 0..<numEnvs where !autoreset[i] {
            runningReturns[i] += rewards[i]
            runningLengths[i] += 1
            if terminated[i] || truncated[i] {
                finishedEpisodes.append(FinishedEpisode(env: i, episodeReturn: runningReturns[i], length: runningLengths[i]))
                runningReturns[i] = 0
                runningLengths[i] = 0
            }
        }
    }
}
