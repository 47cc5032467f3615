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
/// Threads: with `threads > 1` the sub-environments are split into one contiguous chunk per thread, stepped in
/// parallel by the calling thread and `threads - 1` persistent worker threads (workers spin briefly, then park
/// between steps; a late worker's share is simply taken by the others, see `WorkerPool`). The caller's chunk grows
/// or shrinks by one sub-environment at a time towards the split where both sides finish together (handing work
/// to another core has a fixed cost). Sub-environments are independent and each is stepped exactly once per step,
/// whoever steps it, so results are bit-identical to a single thread for the same seeds.
/// Workers stop in `close()` (called by `deinit`).
///
/// When every sub-environment is a distinct object of one type that provides a batch stepper (`BatchSteppable`),
/// alone or in a `TimeLimit` (as `VectorEnvironment(id:…)` makes them), the vector steps them through it from the
/// first `reset` on, with the same results bit for bit; their state then lives in the stepper and is handed back to
/// `envs` when read.
///
/// Stepping allocates nothing per step for `step(discrete:)` / `step(_: [Int])`, `step(continuous:)` and
/// `step(_: [Action])` (beyond what the sub-environments themselves do) once `finishedEpisodes` has grown.
public final class VectorEnvironment {
    /// The sub-environments. (With a batch stepper, reading this hands their current state back to them;
    /// stepping or resetting them directly while they belong to the vector is not supported.)
    public var envs: [Environment] {
        stepper.handBack(terminated: terminated)
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
    private let pool: WorkerPool<VectorStepper.Job>?

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
        hasDiscreteActions = envs[0].actionSpace.discreteCount != nil
        let continuousSize: Int? = if case .box = envs[0].actionSpace { envs[0].actionSpace.flatCount } else { nil }
        // One contiguous chunk per thread: the fewer pieces, the fewer cache lines change hands per step.
        let chunks = self.threads
        stepper = VectorStepper(envs: envs, observationSize: observationSize, chunks: chunks, continuousActionSize: continuousSize)
        if self.threads > 1 {
            let stepper = stepper
            pool = WorkerPool(parties: self.threads, chunks: chunks, body: { stepper.run($0, chunk: $1) },
                              whole: { stepper.runWhole($0) })
        } else {
            pool = nil
        }
    }


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
    /// Whether `actionSpace` is discrete (checked once: asking a sub-environment each step costs a retain and two
    /// calls through the existential, a few percent of a small vector's step).
    private let hasDiscreteActions: Bool

    /// Whether steps go through the sub-environments' batch stepper (from the first `reset` on, when they provide one).
    public var usesFastPath: Bool { stepper.fastPathActive }

    /// Calls `body` with the observation buffer `[numEnvs × observationSize]` without copying it.
    /// The pointer is valid only inside `body`.
    public func withObservations<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try observations.withUnsafeBufferPointer(body)
    }

    /// Resets every sub-environment (sub-environment i with seed s + i when a seed is given) and clears
    /// the autoreset state and running episode statistics. A first reset without a seed is seed 0's, so that the
    /// copies draw different episodes (each would otherwise start from the same default stream); later resets
    /// without a seed continue each copy's stream.
    public func reset(seed: UInt64? = nil) {
        stepper.activateFastPath()
        let seed = seed ?? (hasBeenReset ? nil : 0)
        hasBeenReset = true
        // Reset cannot fail; the error slots stay empty.
        try? execute(.reset(seed: seed))
    }

    /// Whether `reset` has been called.
    private var hasBeenReset = false

    /// The vector's whole running state: each sub-environment's snapshot, where each copy's episode stands (the
    /// autoreset due, the return and length so far), and the outputs of the last step. Nil when a sub-environment
    /// cannot be captured (`Environment.snapshot()`).
    public func snapshot() -> EnvironmentSnapshot? {
        var writer = SnapshotWriter()
        writer.write(numEnvs)
        writer.write(observationSize)
        writer.write(hasBeenReset)
        writer.write(completedEpisodes)
        for (env, episode) in zip(envs, stepper.episodes) {
            guard let snapshot = env.snapshot() else { return nil }
            writer.write(snapshot)
            writer.write(episode.length)
            writer.write(episode.episodeReturn)
            writer.write(episode.needsReset)
        }
        writer.write(observations)
        writer.write(rewards)
        writer.write(terminated)
        writer.write(truncated)
        writer.write(autoreset)
        return EnvironmentSnapshot(words: writer.words)
    }

    /// Puts back what `snapshot()` took of a vector made the same way (same id, options and count), so that it
    /// steps on exactly as the vector it was taken from. An error names what does not fit; the vector may then be
    /// partly restored and should be discarded.
    public func restore(_ snapshot: EnvironmentSnapshot) throws {
        var reader = SnapshotReader(snapshot.words, of: "the snapshot of a vector of \(numEnvs) environments")
        let count = try reader.int(), size = try reader.int()
        guard count == numEnvs, size == observationSize else {
            throw reader.mismatch("it holds \(count) environments of \(size) observation values, not \(numEnvs) of \(observationSize)")
        }
        let wasReset = try reader.bool()
        let completed = try reader.int()
        var episodes: [EpisodeProgress] = []
        for env in subEnvironments {
            try env.restore(try reader.snapshot())
            episodes.append(EpisodeProgress(length: try reader.int(), episodeReturn: try reader.double(), needsReset: try reader.bool()))
        }
        observations = try reader.floats(count: numEnvs * observationSize)
        rewards = try reader.doubles(count: numEnvs)
        terminated = try reader.bools(count: numEnvs)
        truncated = try reader.bools(count: numEnvs)
        autoreset = try reader.bools(count: numEnvs)
        try reader.finish()
        hasBeenReset = wasReset
        completedEpisodes = completed
        finishedEpisodes.removeAll(keepingCapacity: true)
        stepper.resume(episodes, activatingFastPath: wasReset)
    }

    /// Steps sub-environment i with `actions[i]` (next-step autoreset as described on the type).
    /// Throws `EnvironmentError.invalidAction` for a wrong count; a sub-environment's own error is rethrown
    /// after the other sub-environments have stepped.
    public func step(_ actions: [Action]) throws {
        try checkCount(actions.count)
        try actions.withUnsafeBufferPointer { a in
            try execute(.actions(a.baseAddress!))
        }
    }

    /// Steps with one discrete action index per sub-environment.
    public func step(_ actions: [Int]) throws {
        try actions.withUnsafeBufferPointer { try step(discrete: $0) }
    }

    /// Steps with one discrete action index per sub-environment, read from `actions` (allocation-free).
    public func step(discrete actions: UnsafeBufferPointer<Int>) throws {
        try checkCount(actions.count)
        guard hasDiscreteActions else {
            throw EnvironmentError.invalidAction("discrete actions given to a vector of \(actionSpace) action spaces")
        }
        try execute(.discrete(actions.baseAddress!))
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
            try execute(.continuous(a.baseAddress!))
        }
    }

    private func checkCount(_ count: Int) throws {
        guard count == numEnvs else { throw EnvironmentError.invalidAction("\(count) actions for \(numEnvs) environments") }
    }

    /// Runs `mode` over every chunk with the output buffers bound, then gathers finished episodes and the first error.
    private func execute(_ mode: VectorStepper.Mode) throws {
        var soloFinished = 0
        observations.withUnsafeMutableBufferPointer { obs in
            rewards.withUnsafeMutableBufferPointer { rew in
                terminated.withUnsafeMutableBufferPointer { term in
                    truncated.withUnsafeMutableBufferPointer { trunc in
                        autoreset.withUnsafeMutableBufferPointer { auto in
                            let job = VectorStepper.Job(mode: mode, callerShare: stepper.callerShare, outputs: VectorOutputs(
                                observations: obs.baseAddress!, rewards: rew.baseAddress!, terminated: term.baseAddress!,
                                truncated: trunc.baseAddress!, autoreset: auto.baseAddress!))
                            if let pool { pool.run(job) } else { soloFinished = stepper.run(job, chunk: 0) }
                        }
                    }
                }
            }
        }
        // Most steps finish no episode: skip the array's (not inlined) removal then.
        if !finishedEpisodes.isEmpty { finishedEpisodes.removeAll(keepingCapacity: true) }
        stepper.collectFinished(into: &finishedEpisodes) { c in pool?.result(of: c) ?? soloFinished }
        if let pool { stepper.rebalance(after: pool.lastOutcome) }
        completedEpisodes += finishedEpisodes.count
        if let error = stepper.takeFirstError() { throw error }
    }
}

/// The per-sub-environment work of a vector step, shared with the worker threads.
///
/// `WorkerPool.run` hands every chunk the step's `Job`; chunk c then reads and writes only the entries of its own
/// sub-environments, so no two threads touch the same memory.
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
    let numEnvs: Int
    let chunks: Int

    /// What a step does, how it is split and where it writes.
    struct Job {
        var mode: Mode
        /// The size of chunk 0, the caller's (see `range(of:callerShare:)`).
        var callerShare: Int
        var outputs: VectorOutputs
    }

    /// The caller's share of the next step. It starts at an even split and moves one sub-environment at a time
    /// towards the side that finishes first (`rebalance`): handing a step to a worker and back costs a couple of
    /// cache-line transfers, which on some machines take as long as stepping several sub-environments.
    private(set) var callerShare: Int
    /// Evidence for moving `callerShare`: + when the caller waited for a worker, − when the workers were done first.
    private var imbalance = 0
    /// How much evidence moves `callerShare` by one (so a sub-environment does not hop between cores every step).
    static let rebalanceThreshold = 8

    /// Chunk c's sub-environments: chunk 0 (the caller's) holds the first `callerShare`, the workers' chunks share
    /// the rest evenly (the first ones one more when it does not divide).
    @inline(__always)
    func range(of c: Int, callerShare: Int) -> Range<Int> {
        if c == 0 { return 0..<callerShare }
        let rest = numEnvs - callerShare, workers = chunks - 1, k = c - 1
        let lower = callerShare + k * (rest / workers) + min(k, rest % workers)
        return lower..<(lower + rest / workers + (k < rest % workers ? 1 : 0))
    }

    /// Moves the caller's share after a parallel step: up when the caller waited for a worker, down when the
    /// workers were done first (each chunk keeps at least one sub-environment).
    func rebalance(after outcome: WorkerPool<Job>.Outcome) {
        switch outcome {
        case .callerWaited: imbalance += 1
        case .workersFirst: imbalance -= 1
        case .solo, .callerTook: return
        }
        if imbalance >= Self.rebalanceThreshold {
            callerShare = min(callerShare + 1, numEnvs - (chunks - 1))
            imbalance = 0
        } else if imbalance <= -Self.rebalanceThreshold {
            callerShare = max(callerShare - 1, 1)
            imbalance = 0
        }
    }
    /// The sub-environments' batch stepper, if they provide one; it steps them once `fastPathActive`.
    let batch: BatchPath?
    /// `batch`'s stepper for the chunks (`batch` keeps it alive).
    private let fastPath: UnretainedBatchStepper?
    private(set) var fastPathActive = false

    /// Generic path, per sub-environment: the episode ended at the last step, so the next step resets it.
    private let needsReset: UnsafeMutablePointer<Bool>
    private let runningReturn: UnsafeMutablePointer<Double>
    private let runningLength: UnsafeMutablePointer<Int>
    /// The episodes that finished at the last step: each chunk writes them from its first index on and returns their count.
    private let finished: UnsafeMutablePointer<FinishedEpisode>
    /// Per chunk: the first error a sub-environment of the chunk threw.
    private let chunkErrors: UnsafeMutablePointer<Error?>
    /// Per sub-environment scratch arrays for continuous actions (reused: no allocation per step).
    private let continuousScratch: UnsafeMutablePointer<[Float]>

    init(envs: [Environment], observationSize: Int, chunks: Int, continuousActionSize: Int?) {
        self.envs = ContiguousArray(envs)
        self.observationSize = observationSize
        self.continuousActionSize = continuousActionSize
        batch = BatchPath(envs)
        fastPath = batch.map { UnretainedBatchStepper($0.stepper) }
        let n = envs.count
        numEnvs = n
        self.chunks = chunks
        callerShare = n / chunks + (n % chunks > 0 ? 1 : 0)
        needsReset = .allocate(capacity: n); needsReset.initialize(repeating: false, count: n)
        runningReturn = .allocate(capacity: n); runningReturn.initialize(repeating: 0, count: n)
        runningLength = .allocate(capacity: n); runningLength.initialize(repeating: 0, count: n)
        finished = .allocate(capacity: n)
        finished.initialize(repeating: FinishedEpisode(env: 0, episodeReturn: 0, length: 0), count: n)
        chunkErrors = .allocate(capacity: chunks); chunkErrors.initialize(repeating: nil, count: chunks)
        continuousScratch = .allocate(capacity: n)
        continuousScratch.initialize(repeating: [], count: n)
        if let k = continuousActionSize { for i in 0..<n { continuousScratch[i] = [Float](repeating: 0, count: k) } }
    }

    deinit {
        let n = envs.count
        needsReset.deallocate(); runningReturn.deallocate(); runningLength.deallocate()
        finished.deallocate()
        chunkErrors.deinitialize(count: chunks); chunkErrors.deallocate()
        continuousScratch.deinitialize(count: n); continuousScratch.deallocate()
    }

    /// Switches to the batch stepper if there is one (at the vector's first reset; idempotent).
    func activateFastPath() {
        guard let batch, !fastPathActive else { return }
        batch.stepper.takeOver(episodes)
        fastPathActive = true
    }

    /// Where each sub-environment's episode stands (the generic path's bookkeeping; with the batch stepper active,
    /// as of the last `handBack`).
    var episodes: [EpisodeProgress] {
        (0..<numEnvs).map { EpisodeProgress(length: runningLength[$0], episodeReturn: runningReturn[$0], needsReset: needsReset[$0]) }
    }

    /// With the batch stepper active, imports its copies' state into the environment objects and its bookkeeping
    /// into the generic path's (as the generic path keeps it: an episode that ended has length and return 0).
    func handBack(terminated: [Bool]) {
        guard fastPathActive, let batch else { return }
        for (i, p) in batch.handBack(terminated: terminated).enumerated() {
            needsReset[i] = p.needsReset
            runningReturn[i] = p.needsReset ? 0 : p.episodeReturn
            runningLength[i] = p.needsReset ? 0 : p.length
        }
    }

    /// Continues from restored environment objects and `episodes` (a vector snapshot); the batch stepper, if any,
    /// takes over when the vector had been reset.
    func resume(_ episodes: [EpisodeProgress], activatingFastPath: Bool) {
        for (i, p) in episodes.enumerated() {
            needsReset[i] = p.needsReset; runningReturn[i] = p.episodeReturn; runningLength[i] = p.length
        }
        fastPathActive = false
        if activatingFastPath { activateFastPath() }
    }

    /// Appends the episodes that finished at the last step, in sub-environment order (`count(c)`: chunk c's result).
    /// Call before `rebalance`.
    func collectFinished(into list: inout [FinishedEpisode], count: (Int) -> Int) {
        for c in 0..<chunks {
            let first = range(of: c, callerShare: callerShare).lowerBound
            for k in 0..<count(c) { list.append(finished[first + k]) }
        }
    }

    /// The first error of the last step (lowest chunk first), clearing every error slot.
    func takeFirstError() -> Error? {
        var first: Error?
        for c in 0..<chunks where chunkErrors[c] != nil {
            if first == nil { first = chunkErrors[c] }
            chunkErrors[c] = nil
        }
        return first
    }

    /// Does `job` for the sub-environments of chunk `c`; returns how many episodes finished there.
    func run(_ job: Job, chunk c: Int) -> Int {
        run(job, range(of: c, callerShare: job.callerShare), slot: c)
    }

    /// Does `job` for every sub-environment in one piece, as if chunk 0 held them all (its finished episodes from
    /// index 0, its error slot); returns how many episodes finished. Bit-identical to the chunks one by one: each
    /// sub-environment is stepped once, whoever steps it.
    func runWhole(_ job: Job) -> Int {
        run(job, 0..<numEnvs, slot: 0)
    }

    /// Does `job` for the sub-environments `range`, with chunk `c`'s error slot.
    private func run(_ job: Job, _ range: Range<Int>, slot c: Int) -> Int {
        let out = job.outputs
        switch job.mode {
        case let .reset(seed): resetChunk(c, range, seed: seed, into: out); return 0
        case let .discrete(actions): return stepChunk(c, range, .discrete(actions), into: out)
        case let .actions(actions): return stepChunk(c, range, .actions(actions), into: out)
        case let .continuous(actions):
            return stepChunk(c, range, .continuous(actions, size: continuousActionSize!, scratch: continuousScratch), into: out)
        }
    }

    private func resetChunk(_ c: Int, _ range: Range<Int>, seed: UInt64?, into out: VectorOutputs) {
        if fastPathActive, let fastPath { return fastPath.reset(range, seed: seed, into: out) }
        let d = observationSize
        for i in range {
            envs[i].reset(seed: seed.map { $0 &+ UInt64(i) }, into: UnsafeMutableBufferPointer(start: out.observations + i * d, count: d))
            out.rewards[i] = 0; out.terminated[i] = false; out.truncated[i] = false; out.autoreset[i] = false
            needsReset[i] = false; runningReturn[i] = 0; runningLength[i] = 0
        }
    }

    /// Steps (or autoresets) `range`, chunk `c`, with `actions`: through the batch stepper once it is active,
    /// otherwise sub-environment by sub-environment.
    @inline(__always)
    private func stepChunk(_ c: Int, _ range: Range<Int>, _ actions: VectorActions, into out: VectorOutputs) -> Int {
        if fastPathActive, let fastPath {
            let (count, error) = fastPath.step(range, actions: actions, into: out, finished: finished + range.lowerBound)
            if let error, chunkErrors[c] == nil { chunkErrors[c] = error }
            return count
        }
        return actions.withActions { action in stepEach(c, range, into: out, action) }
    }

    /// The generic path of `stepChunk`, taking sub-environment i's action from `action(i)`.
    @inline(__always)
    private func stepEach(_ c: Int, _ range: Range<Int>, into out: VectorOutputs, _ action: (Int) -> Action) -> Int {
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
        return count
    }
}
