import Imaging

/// Gymnasium's `TimeLimit`: sets `truncated` on the step at which the number of steps since `reset` reaches
/// `maxEpisodeSteps`, whether or not that step also terminates. Stepping past it without reset is refused.
public final class TimeLimit: Environment {
    public let inner: Environment
    public let maxEpisodeSteps: Int
    /// Steps since the last `reset`.
    public private(set) var elapsedSteps = 0
    /// Whether the episode has ended (or not yet started): `step` is refused until `reset`.
    private var ended = true
    /// Whether `reset` has been called at all.
    private var hasStarted = false

    public init(_ inner: Environment, maxEpisodeSteps: Int) {
        precondition(maxEpisodeSteps > 0, "time limit must be positive")
        self.inner = inner
        self.maxEpisodeSteps = maxEpisodeSteps
    }

    public var spec: EnvSpec? {
        get { inner.spec }
        set { inner.spec = newValue }
    }
    public var observationSpace: Space { inner.observationSpace }
    public var actionSpace: Space { inner.actionSpace }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        elapsedSteps = 0
        ended = false
        hasStarted = true
        inner.reset(seed: seed, into: observation)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        if ended {
            let id = spec?.id ?? "environment"
            throw hasStarted ? EnvironmentError.stepAfterEnd(id) : EnvironmentError.stepBeforeReset(id)
        }
        var outcome = try inner.step(action, into: observation)
        elapsedSteps += 1
        if elapsedSteps >= maxEpisodeSteps { outcome.truncated = true }
        ended = outcome.terminated || outcome.truncated
        return outcome
    }

    public func render() -> RGBImage { inner.render() }

    /// Where an episode stands, for a `BatchStepper` that steps the inner environment without this wrapper.
    struct Progress {
        /// Steps since the episode began.
        var elapsedSteps: Int
        /// Whether the episode ended (terminated or truncated) at the last step.
        var ended: Bool
    }

    /// Takes back the progress of an episode a `BatchStepper` has been stepping.
    func resume(_ progress: Progress) {
        elapsedSteps = progress.elapsedSteps
        ended = progress.ended
        hasStarted = true
    }

    /// Writes the count and flags (for `Environment.snapshot()`).
    func writeProgress(to writer: inout SnapshotWriter) {
        writer.write(elapsedSteps)
        writer.write(ended)
        writer.write(hasStarted)
    }

    /// Reads what `writeProgress` wrote.
    func restoreProgress(from reader: inout SnapshotReader) throws {
        let elapsed = try reader.int()
        guard elapsed >= 0 && elapsed <= maxEpisodeSteps else {
            throw reader.mismatch("\(elapsed) steps taken under a time limit of \(maxEpisodeSteps)")
        }
        elapsedSteps = elapsed
        ended = try reader.bool()
        hasStarted = try reader.bool()
    }
}
