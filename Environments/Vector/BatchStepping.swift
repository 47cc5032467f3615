/// The seam through which an environment gives `VectorEnvironment` a faster way to step many copies of itself
/// (Gymnasium's `vector_entry_point`): the vector asks for it, the environment's own file provides it, and the
/// vector's code knows no environment by name.

/// An environment type that can step N copies of itself together, faster than the vector's generic path steps them
/// one by one through the `Environment` existential.
///
/// `VectorEnvironment` asks for a stepper when every sub-environment is a distinct object of the same conforming
/// type, alone or inside one `TimeLimit` (as `Registry.make` builds them). The stepper must give the generic path's
/// results bit for bit: observations, rewards, flags, finished episodes, errors and random streams.
protocol BatchSteppable: Environment {
    /// A stepper for `copies` (distinct objects). `maxEpisodeSteps[i]` is the time limit around copy i (nil: none);
    /// the stepper truncates as `TimeLimit` would, since it steps the copies without their wrappers.
    static func batchStepper(for copies: [Self], maxEpisodeSteps: [Int?]) -> any BatchStepper
}

/// N copies of an environment stepped together (see `BatchSteppable`).
///
/// Its copies' state lives in the stepper from `takeOver()` (the vector's first `reset`) on; the environment objects
/// are not stepped, and `handBack` imports the state back into them when someone reads `VectorEnvironment.envs`.
/// Chunks of copies are stepped by different threads at once: a call touches only the copies in its range.
protocol BatchStepper: AnyObject {
    /// Takes each copy's state of record from its object (its physical state, generator and options) and, from
    /// `episodes`, where its episode stands in the vector (at the vector's first reset: nothing done yet).
    func takeOver(_ episodes: [EpisodeProgress])

    /// Resets copies `range` (copy i reseeded with `seed + i` when a seed is given), writing their outputs
    /// (observation, reward 0, no flags, no autoreset).
    func reset(_ range: Range<Int>, seed: UInt64?, into out: VectorOutputs)

    /// Steps copies `range` with `actions` (a copy whose episode ended at the last step is autoreset instead),
    /// writing their outputs and appending the episodes that finish to `finished` in order; returns how many
    /// finished and the first error (a copy given an invalid action is left as it was, with reward 0 and both flags
    /// false, and throws what its environment's `step` throws).
    func step(_ range: Range<Int>, actions: VectorActions, into out: VectorOutputs,
              finished: UnsafeMutablePointer<FinishedEpisode>) -> (finished: Int, error: Error?)

    /// Imports every copy's state into its object, leaving it exactly as the generic path leaves it
    /// (`terminated`: the vector's flags of the last step), and returns where each copy's episode stands.
    func handBack(terminated: [Bool]) -> [EpisodeProgress]
}

/// Where a copy's episode stands in a vector environment: what its time limit counts, what the vector adds up for
/// `finishedEpisodes`, and whether the next step autoresets it.
struct EpisodeProgress: Equatable {
    /// Steps since the episode began.
    var length = 0
    /// The rewards of those steps, summed.
    var episodeReturn = 0.0
    /// The episode ended at the last step: the next step resets the copy instead.
    var needsReset = false
}

/// A batch stepper that the vector's chunks call without retaining it: every thread retaining one object each step
/// would bounce its reference count's cache line between the cores. Whoever makes one keeps the stepper alive.
struct UnretainedBatchStepper {
    private let object: Unmanaged<AnyObject>
    private let type: any BatchStepper.Type

    init(_ stepper: any BatchStepper) {
        object = .passUnretained(stepper)
        type = Swift.type(of: stepper)
    }

    func reset(_ range: Range<Int>, seed: UInt64?, into out: VectorOutputs) {
        type.reset(object, range, seed: seed, into: out)
    }

    func step(_ range: Range<Int>, actions: VectorActions, into out: VectorOutputs,
              finished: UnsafeMutablePointer<FinishedEpisode>) -> (finished: Int, error: Error?) {
        type.step(object, range, actions: actions, into: out, finished: finished)
    }
}

extension BatchStepper {
    /// `reset` of `object`, which is of this type, borrowed without a retain.
    fileprivate static func reset(_ object: Unmanaged<AnyObject>, _ range: Range<Int>, seed: UInt64?, into out: VectorOutputs) {
        object._withUnsafeGuaranteedRef { unsafeDowncast($0, to: Self.self).reset(range, seed: seed, into: out) }
    }

    /// `step` of `object`, which is of this type, borrowed without a retain.
    fileprivate static func step(_ object: Unmanaged<AnyObject>, _ range: Range<Int>, actions: VectorActions, into out: VectorOutputs,
                                 finished: UnsafeMutablePointer<FinishedEpisode>) -> (finished: Int, error: Error?) {
        object._withUnsafeGuaranteedRef {
            unsafeDowncast($0, to: Self.self).step(range, actions: actions, into: out, finished: finished)
        }
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

/// The actions of one vector step, as the caller gave them (bound for one step).
enum VectorActions {
    case actions(UnsafePointer<Action>)
    case discrete(UnsafePointer<Int>)
    /// `size` values per sub-environment; `scratch[i]` is sub-environment i's reusable `[Float]` of `size` values.
    case continuous(UnsafePointer<Float>, size: Int, scratch: UnsafeMutablePointer<[Float]>)

    /// Calls `body` with the function that gives sub-environment i's action. Each case passes its own closure, so
    /// an `@inline(__always)` body is specialised per case and makes no call per sub-environment.
    @inline(__always)
    func withActions<R>(_ body: ((Int) -> Action) -> R) -> R {
        switch self {
        case let .discrete(actions): return body { i in .discrete(actions[i]) }
        case let .actions(actions): return body { i in actions[i] }
        case let .continuous(actions, k, scratch):
            return body { i in
                scratch[i].withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: actions + i * k, count: k) }
                return .continuous(scratch[i])
            }
        }
    }
}

/// A vector's batch stepper with the time limits around its copies: what `VectorEnvironment` keeps when its
/// sub-environments provide one.
struct BatchPath {
    let stepper: any BatchStepper
    let timeLimits: [TimeLimit?]

    /// The stepper for `envs`, or nil unless every sub-environment is a distinct object of one `BatchSteppable`
    /// type, alone or in a `TimeLimit`.
    init?(_ envs: [Environment]) {
        let limits = envs.map { $0 as? TimeLimit }
        let inner = zip(envs, limits).map { env, limit in limit?.inner ?? env }
        guard let first = inner.first as? any BatchSteppable else { return nil }
        func make<E: BatchSteppable>(_: E) -> (any BatchStepper)? {
            var copies: [E] = [], seen = Set<ObjectIdentifier>()
            for env in inner {
                guard let copy = env as? E, seen.insert(ObjectIdentifier(copy)).inserted else { return nil }
                copies.append(copy)
            }
            return E.batchStepper(for: copies, maxEpisodeSteps: limits.map { $0?.maxEpisodeSteps })
        }
        guard let stepper = make(first) else { return nil }
        self.stepper = stepper
        timeLimits = limits
    }

    /// Imports the stepper's state into the environment objects and their time limits; returns where each copy's
    /// episode stands.
    func handBack(terminated: [Bool]) -> [EpisodeProgress] {
        let progress = stepper.handBack(terminated: terminated)
        for (limit, p) in zip(timeLimits, progress) {
            limit?.resume(TimeLimit.Progress(elapsedSteps: p.length, ended: p.needsReset))
        }
        return progress
    }
}
