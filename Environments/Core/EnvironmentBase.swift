import Imaging
import SeededRandom

/// Shared episode bookkeeping for the built-in environments: the seeded generator, and the rule that
/// `step` needs a `reset` first and is refused after the episode ended.
open class EpisodicEnvironment {
    public var spec: EnvSpec?
    /// The environment's generator; `reset(seed:)` with a seed replaces it.
    public var rng = SeededGenerator(seed: 0)
    /// Whether the episode has ended (terminated); `step` then throws until `reset`.
    public private(set) var needsReset = true
    /// Whether `reset` has been called at all (stepping before it is a different mistake from stepping after the end).
    private(set) var hasStarted = false
    let name: String

    init(name: String) { self.name = name }

    /// Reseeds when a seed is given and marks a new episode.
    func beginEpisode(seed: UInt64?) {
        if let seed { rng = SeededGenerator(seed: seed) }
        needsReset = false
        hasStarted = true
    }

    /// Takes back the bookkeeping of a copy a `BatchStepper` has been stepping: its generator, and whether its
    /// episode ended (terminated) at the last step.
    func resumeEpisode(rng: SeededGenerator, ended: Bool) {
        self.rng = rng
        needsReset = ended
        hasStarted = true
    }

    /// Writes the generator and the episode flags (for `Environment.snapshot()`).
    func writeEpisode(to writer: inout SnapshotWriter) {
        writer.write(rng)
        writer.write(needsReset)
        writer.write(hasStarted)
    }

    /// Reads what `writeEpisode` wrote.
    func restoreEpisode(from reader: inout SnapshotReader) throws {
        rng = try reader.generator()
        needsReset = try reader.bool()
        hasStarted = try reader.bool()
    }

    /// Throws unless an episode is running.
    @inline(__always)
    func checkRunning() throws {
        if needsReset {
            throw hasStarted ? EnvironmentError.stepAfterEnd(spec?.id ?? name) : EnvironmentError.stepBeforeReset(spec?.id ?? name)
        }
    }

    /// Records the end of an episode (so the next `step` is refused).
    @inline(__always)
    func endEpisode(if terminated: Bool) { if terminated { needsReset = true } }

    /// The discrete action index, or an error naming the problem.
    @inline(__always)
    func discreteAction(_ action: Action, count n: Int) throws -> Int {
        guard case let .discrete(a) = action else {
            throw EnvironmentError.invalidAction("\(spec?.id ?? name) takes a discrete action in 0..<\(n), got \(action)")
        }
        guard a >= 0 && a < n else {
            throw EnvironmentError.invalidAction("\(spec?.id ?? name) takes actions 0..<\(n), got \(a)")
        }
        return a
    }

    /// The single continuous action value, or an error naming the problem.
    @inline(__always)
    func continuousAction(_ action: Action) throws -> Float {
        guard case let .continuous(values) = action, values.count == 1 else {
            throw EnvironmentError.invalidAction("\(spec?.id ?? name) takes one continuous value, got \(action)")
        }
        guard values[0].isFinite else { throw EnvironmentError.invalidAction("\(spec?.id ?? name): action \(values[0]) is not finite") }
        return values[0]
    }
}
