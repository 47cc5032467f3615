import Foundation

/// A finished episode of one sub-environment of a vector environment.
public struct FinishedEpisode: Sendable, Equatable {
    /// The index of the sub-environment.
    public var env: Int
    public var episodeReturn: Double
    public var length: Int
    public init(env: Int, episodeReturn: Double, length: Int) {
        self.env = env; self.episodeReturn = episodeReturn; self.length = length
    }
}

/// N copies of an environment stepped together, with Gymnasium 1.x's default **next-step autoreset**:
///
/// - When sub-environment i ends (terminated or truncated) at a step, that step returns its *final* observation,
///   reward and flags as usual, and the episode's return and length appear in `finishedEpisodes`.
/// - At the next `step`, sub-environment i ignores its action, is reset (continuing its own random stream), and
///   returns the reset observation with reward 0 and both flags false; `autoreset[i]` is true for that step.
///   No transition happened there: learners mask that row (it must not be stored as obs → reset-obs).
///
/// Observations live in one contiguous buffer `[numEnvs × observationSize]`, row i for sub-environment i
/// (`observations`, or `withObservations` for a pointer without copying). `reset(seed: s)` seeds sub-environment i
/// with s + i (Gymnasium's convention); `reset()` without a seed continues every stream.
///
/// Threads: with `threads > 1` the sub-environments are split into contiguous chunks that the calling thread and
/// `threads - 1` persistent worker threads claim and step in parallel (workers spin briefly, then park between
/// steps; a busy worker's share is simply taken by the others). Sub-environments are independent and each is
/// stepped exactly once per step, so results are bit-identical to a single thread for the same seeds.
/// Workers stop in `close()` (called by `deinit`).
///
/// Vectors of CartPoles (every sub-environment a distinct `CartPole`, alone or in a `TimeLimit`, as
/// `VectorEnvironment(id: "CartPole-v1", …)` makes them) take a specialised path (`CartPoleVector`) with the same
/// results bit for bit; its sub-environments' state lives in the vector and is copied into `envs` when read.
///
/// Stepping allocates nothing per step for `step(discrete:)` / `step(_: [Int])`, `step(continuous:)` and
/// `step(_: [Action])` (beyond what the sub-environments themselves do) once `finishedEpisodes` has grown.
public final class VectorEnvironment {
    /// The sub-environments. (With the CartPole fast path, reading this copies their current state into them;
    /// stepping or resetting them directly while they belong to the vector is not supported.)
    public var envs: [Environment] {
        if stepper.fastPathActive, let fast = stepper.cartPoles { fast.storeBack(terminated: terminated) }
        return subEnvironments
    }
    private let subEnvironments: [Environment]
    public let numEnvs: Int
    public let observationSize: Int
    /// The number of chunks stepped in parallel (1: everything on the calling thread).
    public let threads: Int
    /// The latest observations, row-major `[numEnvs, observationSize]`.
    public private(set) var observations: [Float]
    /// The rewards of the last `step` (0 for sub-environments that were autoreset).
    public private(set) var rewards: [Double]
    public private(set) var terminated: [Bool]
    public private(set) var truncated: [Bool]
    /// True for the sub-environments that were reset (and ignored their action) in the last `step`.
    public private(set) var autoreset: [Bool]
    /// Episodes that ended in the last `step`, in sub-environment order.
    public private(set) var finishedEpisodes: [FinishedEpisode] = []
    /// Every episode finished since the vector was made.
    public private(set) var completedEpisodes = 0

    private let stepper: VectorStepper
    private let pool: WorkerPool?

    /// Builds `count` environments with `make` (called with the index), stepped by `threads` threads
    /// (clamped to 1...count). Every sub-environment must have the same spaces as the first.
    public init(count: Int, threads: Int = 1, make: (Int) throws -> Environment) throws {
        guard count > 0 else { throw EnvironmentError.invalidOption("a vector environment needs at least one environment, got \(count)") }
        guard threads > 0 else { throw EnvironmentError.invalidOption("threads must be positive, got \(threads)") }
        let envs = try (0..<count).map(make)
        subEnvironments = envs
        for (i, env) in envs.enumerated() where env.observationSpace != envs[0].observationSpace || env.actionSpace != envs[0].actionSpace {
            throw EnvironmentError.invalidOption("sub-environment \(i) has spaces \(env.observationSpace)/\(env.actionSpace), "
                + "sub-environment 0 has \(envs[0].observationSpace)/\(envs[0].actionSpace)")
        }
        numEnvs = count
        observationSize = envs[0].observationSpace.flatCount
        self.threads = min(threads, count)
        observations = [Float](repeating: 0, count: count * observationSize)
        rewards = [Double](repeating: 0, count: count)
        terminated = [Bool](repeating: false, count: count)
        truncated = [Bool](repeating: false, count: count)
        autoreset = [Bool](repeating: false, count: count)
        finishedEpisodes.reserveCapacity(count)
        let continuousSize: Int? = if case .box = envs[0].actionSpace { envs[0].actionSpace.flatCount } else { nil }
        let chunks = Self.chunkCount(numEnvs: count, threads: self.threads)
        stepper = VectorStepper(envs: envs, observationSize: observationSize, chunks: chunks, continuousActionSize: continuousSize)
        if self.threads > 1 {
            let stepper = stepper
            pool = WorkerPool(parties: self.threads, chunks: chunks) { stepper.run(chunk: $0) }
        } else {
            pool = nil
        }
    }

    /// How many pieces a step is split into: one per thread, two per thread when each piece still holds at least
    /// `chunkEnvironments` sub-environments (so a thread that is late or slow leaves less work to wait for).
    static func chunkCount(numEnvs: Int, threads: Int) -> Int {
        guard threads > 1 else { return 1 }
        return numEnvs >= 2 * threads * chunkEnvironments ? 2 * threads : threads
    }
    static let chunkEnvironments = 16

    /// `count` copies of a registered environment (`Registry.make(id, options:)`).
    public convenience init(id: String, options: [String: String] = [:], count: Int, threads: Int = 1) throws {
        try self.init(count: count, threads: threads) { _ in try Registry.make(id, options: options) }
    }

    deinit { pool?.shutdown() }

    /// Stops the worker threads now (otherwise `deinit` does). The vector keeps working afterwards, on the
    /// calling thread alone.
    public func close() { pool?.shutdown() }

    public var observationSpace: Space { subEnvironments[0].observationSpace }
    public var actionSpace: Space { subEnvironments[0].actionSpace }

    /// Whether steps take the CartPole fast path (from the first `reset` on, for vectors of CartPoles).
    public var usesCartPoleFastPath: Bool { stepper.fastPathActive }

    /// Calls `body` with the observation buffer `[numEnvs × observationSize]` without copying it.
    /// The pointer is valid only inside `body`.
    public func withObservations<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try observations.withUnsafeBufferPointer(body)
    }

    /// Resets every sub-environment (sub-environment i with seed s + i when a seed is given) and clears
    /// the autoreset state and running episode statistics.
    public func reset(seed: UInt64? = nil) {
        stepper.activateFastPath()
        stepper.mode = .reset(seed: seed)
        // Reset cannot fail; the error slots stay empty.
        try? execute()
    }

    /// Steps sub-environment i with `actions[i]` (next-step autoreset as described on the type).
    /// Throws `EnvironmentError.invalidAction` for a wrong count; a sub-environment's own error is rethrown
    /// after the other sub-environments have stepped.
    public func step(_ actions: [Action]) throws {
        try checkCount(actions.count)
        try actions.withUnsafeBufferPointer { a in
            stepper.mode = .actions(a.baseAddress!)
            try execute()
        }
    }

    /// Steps with one discrete action index per sub-environment.
    public func step(_ actions: [Int]) throws {
        try actions.withUnsafeBufferPointer { try step(discrete: $0) }
    }

    /// Steps with one discrete action index per sub-environment, read from `actions` (allocation-free).
    public func step(discrete actions: UnsafeBufferPointer<Int>) throws {
        try checkCount(actions.count)
        guard actionSpace.discreteCount != nil else {
            throw EnvironmentError.invalidAction("discrete actions given to a vector of \(actionSpace) action spaces")
        }
        stepper.mode = .discrete(actions.baseAddress!)
        try execute()
    }

    /// Steps with continuous actions laid out row-major `[numEnvs × actionDimension]` (allocation-free).
    public func step(continuous actions: [Float]) throws {
        guard let size = stepper.continuousActionSize else {
            throw EnvironmentError.invalidAction("continuous actions given to a vector of \(actionSpace) action spaces")
        }
        guard actions.count == numEnvs * size else {
            throw EnvironmentError.invalidAction("\(actions.count) continuous action values for \(numEnvs) environments × \(size)")
        }
        try actions.withUnsafeBufferPointer { a in
            stepper.mode = .continuous(a.baseAddress!)
            try execute()
        }
    }

    private func checkCount(_ count: Int) throws {
        guard count == numEnvs else { throw EnvironmentError.invalidAction("\(count) actions for \(numEnvs) environments") }
    }

    /// Runs the stepper's current mode over every chunk with the output buffers bound, then gathers
    /// finished episodes and the first error.
    private func execute() throws {
        observations.withUnsafeMutableBufferPointer { obs in
            rewards.withUnsafeMutableBufferPointer { rew in
                terminated.withUnsafeMutableBufferPointer { term in
                    truncated.withUnsafeMutableBufferPointer { trunc in
                        autoreset.withUnsafeMutableBufferPointer { auto in
                            stepper.outputs = VectorOutputs(observations: obs.baseAddress!, rewards: rew.baseAddress!,
                                                            terminated: term.baseAddress!, truncated: trunc.baseAddress!,
                                                            autoreset: auto.baseAddress!)
                            if let pool { pool.run() } else { stepper.run(chunk: 0) }
                        }
                    }
                }
            }
        }
        finishedEpisodes.removeAll(keepingCapacity: true)
        stepper.collectFinished(into: &finishedEpisodes)
        completedEpisodes += finishedEpisodes.count
        if let error = stepper.takeFirstError() { throw error }
    }
}

/// Where a vector step writes its per-sub-environment outputs (the vector's own arrays, bound for one step).
struct VectorOutputs {
    var observations: UnsafeMutablePointer<Float>
    var rewards: UnsafeMutablePointer<Double>
    var terminated: UnsafeMutablePointer<Bool>
    var truncated: UnsafeMutablePointer<Bool>
    var autoreset: UnsafeMutablePointer<Bool>
}

/// The per-sub-environment work of a vector step, shared with the worker threads.
///
/// The calling thread writes `mode` and `outputs` before `WorkerPool.run()` publishes them; chunk c then reads and
/// writes only the entries of its own sub-environments, so no two threads touch the same memory.
final class VectorStepper: @unchecked Sendable {
    enum Mode {
        case reset(seed: UInt64?)
        case actions(UnsafePointer<Action>)
        case discrete(UnsafePointer<Int>)
        case continuous(UnsafePointer<Float>)
    }

    let envs: ContiguousArray<Environment>
    let observationSize: Int
    let continuousActionSize: Int?
    /// Chunk c covers sub-environments `bounds[c]..<bounds[c + 1]`.
    let bounds: [Int]
    var mode: Mode = .reset(seed: nil)
    var outputs: VectorOutputs?
    /// The CartPole fast path, when every sub-environment is a CartPole; it steps them once `fastPathActive`.
    let cartPoles: CartPoleVector?
    private(set) var fastPathActive = false

    /// Generic path, per sub-environment: the episode ended at the last step, so the next step resets it.
    private let needsReset: UnsafeMutablePointer<Bool>
    private let runningReturn: UnsafeMutablePointer<Double>
    private let runningLength: UnsafeMutablePointer<Int>
    /// The episodes that finished at the last step: chunk c writes `finishedCount[c]` of them from `bounds[c]` on.
    private let finished: UnsafeMutablePointer<FinishedEpisode>
    private let finishedCount: CacheLinePadded<Int>
    /// Per chunk: the first error a sub-environment of the chunk threw.
    private let chunkErrors: UnsafeMutablePointer<Error?>
    /// Per sub-environment scratch arrays for continuous actions (reused: no allocation per step).
    private let continuousScratch: UnsafeMutablePointer<[Float]>

    init(envs: [Environment], observationSize: Int, chunks: Int, continuousActionSize: Int?) {
        self.envs = ContiguousArray(envs)
        self.observationSize = observationSize
        self.continuousActionSize = continuousActionSize
        cartPoles = CartPoleVector(envs)
        let n = envs.count
        // Balanced contiguous chunks: the first n % chunks chunks get one extra sub-environment.
        var b = [0]
        for c in 0..<chunks { b.append(b[c] + n / chunks + (c < n % chunks ? 1 : 0)) }
        bounds = b
        needsReset = .allocate(capacity: n); needsReset.initialize(repeating: false, count: n)
        runningReturn = .allocate(capacity: n); runningReturn.initialize(repeating: 0, count: n)
        runningLength = .allocate(capacity: n); runningLength.initialize(repeating: 0, count: n)
        finished = .allocate(capacity: n)
        finished.initialize(repeating: FinishedEpisode(env: 0, episodeReturn: 0, length: 0), count: n)
        finishedCount = CacheLinePadded(count: chunks, repeating: 0)
        chunkErrors = .allocate(capacity: chunks); chunkErrors.initialize(repeating: nil, count: chunks)
        continuousScratch = .allocate(capacity: n)
        continuousScratch.initialize(repeating: [], count: n)
        if let k = continuousActionSize { for i in 0..<n { continuousScratch[i] = [Float](repeating: 0, count: k) } }
    }

    deinit {
        let n = envs.count, chunks = bounds.count - 1
        needsReset.deallocate(); runningReturn.deallocate(); runningLength.deallocate()
        finished.deallocate(); finishedCount.deallocate()
        chunkErrors.deinitialize(count: chunks); chunkErrors.deallocate()
        continuousScratch.deinitialize(count: n); continuousScratch.deallocate()
    }

    /// Switches to the CartPole fast path if there is one (at the vector's first reset; idempotent).
    func activateFastPath() {
        guard let cartPoles, !fastPathActive else { return }
        cartPoles.activate()
        fastPathActive = true
    }

    /// Appends the episodes that finished at the last step, in sub-environment order.
    func collectFinished(into list: inout [FinishedEpisode]) {
        for c in 0..<(bounds.count - 1) {
            for k in 0..<finishedCount[c] { list.append(finished[bounds[c] + k]) }
        }
    }

    /// The first error of the last step (lowest chunk first), clearing every error slot.
    func takeFirstError() -> Error? {
        var first: Error?
        for c in 0..<(bounds.count - 1) where chunkErrors[c] != nil {
            if first == nil { first = chunkErrors[c] }
            chunkErrors[c] = nil
        }
        return first
    }

    /// Does the current mode for the sub-environments of chunk `c`.
    func run(chunk c: Int) {
        switch mode {
        case let .reset(seed): resetChunk(c, seed: seed)
        case let .discrete(actions): stepChunk(c) { i in .discrete(actions[i]) }
        case let .actions(actions): stepChunk(c) { i in actions[i] }
        case let .continuous(actions):
            let k = continuousActionSize!
            stepChunk(c) { i in
                continuousScratch[i].withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: actions + i * k, count: k) }
                return .continuous(continuousScratch[i])
            }
        }
    }

    private func resetChunk(_ c: Int, seed: UInt64?) {
        let out = outputs!
        finishedCount[c] = 0
        if fastPathActive, let cartPoles { return cartPoles.reset(bounds[c]..<bounds[c + 1], seed: seed, into: out) }
        let d = observationSize
        for i in bounds[c]..<bounds[c + 1] {
            envs[i].reset(seed: seed.map { $0 &+ UInt64(i) }, into: UnsafeMutableBufferPointer(start: out.observations + i * d, count: d))
            out.rewards[i] = 0; out.terminated[i] = false; out.truncated[i] = false; out.autoreset[i] = false
            needsReset[i] = false; runningReturn[i] = 0; runningLength[i] = 0
        }
    }

    /// Steps (or autoresets) the sub-environments of chunk `c`, taking sub-environment i's action from `action(i)`.
    @inline(__always)
    private func stepChunk(_ c: Int, _ action: (Int) -> Action) {
        let out = outputs!
        let range = bounds[c]..<bounds[c + 1]
        if fastPathActive, let cartPoles {
            let (count, error) = cartPoles.step(range, into: out, finished: finished + range.lowerBound, action: action)
            finishedCount[c] = count
            if let error, chunkErrors[c] == nil { chunkErrors[c] = error }
            return
        }
        let d = observationSize
        var count = 0
        envs.withUnsafeBufferPointer { envs in
            for i in range {
                let row = UnsafeMutableBufferPointer(start: out.observations + i * d, count: d)
                if needsReset[i] {
                    envs[i].reset(seed: nil, into: row)
                    out.rewards[i] = 0; out.terminated[i] = false; out.truncated[i] = false; out.autoreset[i] = true
                    needsReset[i] = false
                    continue
                }
                out.autoreset[i] = false
                do {
                    let outcome = try envs[i].step(action(i), into: row)
                    out.rewards[i] = outcome.reward; out.terminated[i] = outcome.terminated; out.truncated[i] = outcome.truncated
                    runningReturn[i] += outcome.reward
                    runningLength[i] += 1
                    if outcome.terminated || outcome.truncated {
                        needsReset[i] = true
                        finished[range.lowerBound + count] = FinishedEpisode(env: i, episodeReturn: runningReturn[i], length: runningLength[i])
                        count += 1
                        runningReturn[i] = 0; runningLength[i] = 0
                    }
                } catch {
                    out.rewards[i] = 0; out.terminated[i] = false; out.truncated[i] = false
                    if chunkErrors[c] == nil { chunkErrors[c] = error }
                }
            }
        }
        finishedCount[c] = count
    }
}
