import Environments
import Foundation
import Imaging
import RLCore
import Support
import Training

/// Everything `rlbench run` was asked for.
public struct RunOptions: Sendable {
    public var agent: String
    public var environment: String
    public var environmentOptions: [String: String] = [:]
    /// Total environment steps; nil: the config's `n_timesteps`.
    public var steps: Int?
    public var seed: UInt64 = 0
    public var configFile: URL?
    /// `key=value` overrides, applied last.
    public var overrides: [String] = []
    public var outputDirectory: URL
    /// Continue the run in `outputDirectory` from its last checkpoint, with the run's own seed, environment options and
    /// `config.yml` (`seed`, `environmentOptions`, `configFile` and `overrides` are not used).
    public var resume = false
    /// Steps between periodic checkpoints; nil: a fifth of the run.
    public var checkpointEvery: Int?
    public var evaluationEpisodes = 100
    public var progress: ProgressStyle = .automatic
    /// The folder of TensorBoard logs (`run --tensorboard`): sets `tensorboard_log` over the config's, also when
    /// resuming.
    public var tensorboardLog: String?

    public init(agent: String, environment: String, outputDirectory: URL) {
        self.agent = agent; self.environment = environment; self.outputDirectory = outputDirectory
    }
}

/// What a run folder's resume point says about the run: what `--resume` continues.
public struct ResumableRun: Sendable {
    public var agent: String
    public var environment: String
    public var environmentOptions: [String: String]
    public var seed: UInt64
    /// Environment steps done.
    public var step: Int
    /// The checkpoint it continues from (`last.safetensors`, or the newest valid periodic one), metadata validated.
    public var point: ResumePoint

    /// Finds the checkpoint to continue in `directory` (see `RunFolder.resumePoint`); a folder without a valid agent
    /// checkpoint is an error naming each problem.
    public init(directory: URL) throws {
        point = try RunFolder(directory).resumePoint(kind: .agent)
        let meta = point.metadata
        agent = try meta.value(.agent)
        environment = try meta.value(.env)
        environmentOptions = meta[.envOptions] ?? [:]
        seed = try meta.value(.seed)
        step = try meta.value(.step)
    }
}

/// What a finished run reports.
public struct RunResult: Sendable {
    public var steps: Int
    public var episodes: Int
    public var wallSeconds: Double
    public var evaluation: EvaluationSummary?
    public var finalCheckpoint: URL
}

/// A run's state as a live view shows it, published from the training thread a few times a second.
public struct TrainingProgress: Sendable, Equatable {
    public var step: Int
    public var totalSteps: Int
    public var episodes: Int
    public var lastReturn: Double?
    /// Mean return of the last 100 training episodes.
    public var meanReturn: Double?
    public var stepsPerSecond: Double
    /// Every finished training episode's return, in order.
    public var returns: [Double]
}

/// One training run: resolves the agent and its hyperparameters, trains, and writes the run folder:
///
/// - `config.yml` — the exact hyperparameters used (loadable with `--config`)
/// - `metrics.csv` — one row per finished training episode: step, episode, return, length, wall_time_s and the
///   agent's latest diagnostics
/// - `checkpoints/step_<N>.safetensors` (periodic), `last.safetensors` (newest), `final.safetensors`, and beside the
///   first two the training state (`<name>.state.safetensors`, `TrainingState`) that lets `--resume` continue bit for bit
/// - `learning_curve.png` — episode return against step, with a 100-episode moving average
/// - `eval.json` — the deterministic policy over `evaluationEpisodes` episodes
public final class TrainingRun: TrainingContext {
    public let options: RunOptions
    public let descriptor: AgentDescriptor
    public let hyperParameters: HyperParameters
    public let agent: Agent
    public let totalSteps: Int
    /// Called every `liveInterval` seconds with the run's progress (for live views); runs on the training thread.
    public var onProgress: (@Sendable (TrainingProgress) -> Void)?
    /// Called every `liveInterval` seconds, and once before training starts, with the agent's current checkpoint
    /// encoded as safetensors bytes, so another thread can act with a copy of the policy (`SavedAgent.load(data:)`)
    /// without ever touching the training agent. Runs on the training thread.
    public var onPolicySnapshot: (@Sendable (Data) -> Void)?
    /// Seconds between `onProgress` and `onPolicySnapshot` calls.
    public var liveInterval: TimeInterval = 0.5

    private let folder: RunFolder
    private let factory: EnvironmentFactory
    /// The environment options as checkpoints record them: a map read from a file is stored as its text, so the
    /// checkpoint does not depend on the file (moved, or edited, after training).
    private let checkpointEnvironmentOptions: [String: String]
    private var episodeReturns: [Double] = []
    private var episodeSteps: [Int] = []
    private var latestDiagnostics: [String: Double] = [:]
    private var metrics: MetricsLog?
    private let startTime = Date()
    /// Wall time of the run before this process (a resumed run's metrics.csv continues from it).
    private var earlierWallSeconds = 0.0
    /// metrics.csv's rows up to the resumed checkpoint's step (rows after it are dropped: the run repeats those steps).
    private var resumedMetricRows: [String] = []
    private var startStep = 0
    private var nextCheckpoint: Int
    private let checkpointInterval: Int
    private var lastLiveUpdate = Date.distantPast
    private var progress: ProgressReporter
    /// The newest checkpoint written (or resumed from) and its step: what a diverged run keeps.
    private var lastGoodCheckpoint: (file: URL, step: Int)?
    /// What the run says when it starts, about the folder: a fallback checkpoint resumed, an earlier run started over.
    private var folderNote: String?
    /// What a resumed run says when it starts: whether it continues its training state bit for bit.
    private var resumeNote: String?

    /// Resolves everything and builds the agent; throws clear errors for unknown agents or environments,
    /// unsupported spaces, bad configs, and (with `resume`) missing or mismatched checkpoints.
    public init(_ options: RunOptions) throws {
        var options = options
        var resumed: ResumableRun?
        if options.resume {
            let run = try ResumableRun(directory: options.outputDirectory)
            resumed = run
            guard run.agent == options.agent, run.environment == options.environment else {
                throw AgentError.checkpointMismatch("the run in \(options.outputDirectory.path) trains \(run.agent) on "
                                                    + "\(run.environment), not \(options.agent) on \(options.environment)")
            }
            options.seed = run.seed
            options.environmentOptions = run.environmentOptions
        }
        try checkEvaluationEpisodes(options.evaluationEpisodes, allowingNone: true)
        folder = RunFolder(options.outputDirectory)
        if !options.resume { folderNote = try folder.checkUnused() }
        self.options = options
        let agentType = try AgentCatalog.agent(named: options.agent)
        descriptor = agentType.descriptor
        factory = EnvironmentFactory(id: options.environment, options: options.environmentOptions)
        var recorded = options.environmentOptions
        if let map = recorded["map"], !map.contains("\n"), FileManager.default.fileExists(atPath: map) {
            do { recorded["map"] = try Files.text(URL(fileURLWithPath: map), maxBytes: Limits.mapBytes) } catch {
                throw EnvironmentError.invalidMap("the map \(map) is unusable: \(error)")
            }
        }
        checkpointEnvironmentOptions = recorded
        let probe = try factory.make()
        try TrainingRun.checkCompatible(descriptor, probe, id: options.environment)

        var hp = HyperParameters(defaults: descriptor.defaults)
        if options.resume {
            do {
                try hp.apply(file: folder.config)
            } catch let error as ConfigError {
                guard case .unknownKey = error else { throw error }
                throw AgentError.checkpointMismatch("\(options.outputDirectory.path)/last.safetensors holds a \(options.agent) "
                                                    + "agent, but config.yml beside it is not for \(options.agent) (\(error))")
            }
        } else {
            if let tuned = TunedDefaults.text(agent: descriptor.name, environment: options.environment) {
                try hp.apply(yaml: tuned, source: "tuned defaults for \(descriptor.name) on \(options.environment)")
            }
            if let file = options.configFile { try hp.apply(file: file, environment: options.environment) }
            for o in options.overrides { try hp.apply(override: o) }
        }
        if let steps = options.steps {
            // config.yml records the run's real length, so that --resume and --config repeat it.
            let key = AgentDescriptor.timestepsKey
            guard steps >= 1 else { throw ConfigError.badValue(key: key, source: "--steps", reason: "must be ≥ 1, got \(steps)") }
            try hp.set(key, .number(Double(steps)), source: "--steps")
        }
        if let log = options.tensorboardLog { try hp.set(HyperParameters.tensorboardLogKey, .string(log), source: "--tensorboard") }
        hyperParameters = hp
        totalSteps = try descriptor.timesteps(hp)
        agent = try agentType.init(environment: factory, hyperParameters: hp, seed: options.seed)
        checkpointInterval = max(1, options.checkpointEvery ?? max(totalSteps / 5, 1))
        nextCheckpoint = checkpointInterval
        progress = ProgressReporter(options.progress)
        if let resumed {
            let point = resumed.point
            folderNote = point.note
            try agent.restore(AgentCheckpoint(tensors: try SafeTensors.read(from: point.file).tensors, metadata: point.metadata))
            startStep = agent.stepsDone
            guard startStep < totalSteps || options.steps == nil else {
                throw AgentError.runFolder("the run in \(options.outputDirectory.path) has done \(startStep) steps, --steps "
                                           + "\(totalSteps) is no more; give --steps above \(startStep) to train it further")
            }
            nextCheckpoint = (startStep / checkpointInterval + 1) * checkpointInterval
            lastGoodCheckpoint = (point.file, startStep)
            try readEarlierMetrics()
            // A run stopped after its last step (while it wrote its final files) has only its outputs left to write.
            resumeNote = resumeTrainingState(savedWith: point.file)
            if startStep >= totalSteps {
                resumeNote = "the run has done all its \(startStep) steps: writing its final checkpoint, learning curve and "
                    + "evaluation (give --steps above \(startStep) to train it further)"
            }
        }
    }

    /// Continues the training state saved beside `checkpoint` (the agent's environments, episodes and replay buffer,
    /// and this run's latest diagnostics), so that the run goes on exactly as an uninterrupted one. Without one that
    /// fits, the agent starts new episodes, as it would from a checkpoint alone; the note returned says which.
    private func resumeTrainingState(savedWith checkpoint: URL) -> String {
        let file = folder.stateFile(of: checkpoint)
        do {
            let state = try TrainingState.read(file, checkpoint: checkpoint, step: startStep)
            var reader = try state.reader("run")
            var diagnostics: [String: Double] = [:]
            for key in descriptor.diagnostics {
                let present = try reader.bool(), value = try reader.double()
                if present { diagnostics[key] = value }
            }
            try reader.finish()
            try agent.resumeTraining(from: state, totalSteps: totalSteps)
            latestDiagnostics = diagnostics
            return "continuing the training state of step \(startStep) from \(file.path): environments, episodes and any "
                + "replay buffer go on where they were, bit for bit"
        } catch {
            return "resuming from step \(startStep) without its training state (\(error)): the environments start new episodes "
                + "and any replay buffer starts empty, so the run will not be the same bits as an uninterrupted one"
        }
    }

    /// A resumed run's metrics.csv rows up to its checkpoint's step: the episodes, returns and wall time it continues.
    private func readEarlierMetrics() throws {
        let url = folder.metrics
        for line in try MetricsLog.rows(of: url) {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count >= 5, let step = Int(fields[0]), let episodeReturn = Double(fields[2]),
                  let wall = Double(fields[4]) else {
                throw AgentError.badCheckpoint("\(url.path) has a malformed row: \(line.prefix(80))")
            }
            guard step <= startStep else { break }
            resumedMetricRows.append(String(line))
            episodeReturns.append(episodeReturn)
            episodeSteps.append(step)
            earlierWallSeconds = wall
        }
    }

    /// Refuses an environment whose spaces the agent cannot handle.
    static func checkCompatible(_ d: AgentDescriptor, _ env: Environment, id: String) throws {
        let kind = ActionKind(of: env.actionSpace)
        guard d.actionKinds.contains(kind) else {
            throw AgentError.unsupportedActionSpace(agent: d.name, env: id, space: "\(env.actionSpace)",
                                                    supported: d.actionKinds.map(\.rawValue).sorted())
        }
        if d.needsDiscreteObservations, env.observationSpace.discreteCount == nil {
            throw AgentError.unsupportedObservationSpace(
                agent: d.name, env: id, reason: "it needs a Discrete observation space, \(id) has \(env.observationSpace)")
        }
    }

    /// Trains, writes the run folder and evaluates. On Ctrl-C it saves a checkpoint and rethrows
    /// `AgentError.interrupted`; on a NaN loss it keeps the last good checkpoint and rethrows `nonFinite`.
    @discardableResult
    public func run() throws -> RunResult {
        let dir = options.outputDirectory
        let lock = try folder.claim(resuming: options.resume)
        defer { withExtendedLifetime(lock) {} }
        if let folderNote { log(folderNote) }
        if !options.resume || options.steps != nil { try folder.writeConfig(hyperParameters.yaml) }
        // A resumed run keeps the rows up to its checkpoint; a new one starts with the header.
        let header = ["step", "episode", "return", "length", "wall_time_s"] + descriptor.diagnostics
        let metrics = try MetricsLog(url: folder.metrics, header: header, keptRows: resumedMetricRows,
                                     tensorboard: hyperParameters.tensorboardLog.map(folder.tensorboardDirectory(under:)))
        self.metrics = metrics
        defer { try? metrics.flush(); self.metrics = nil }

        log("training \(descriptor.name) on \(options.environment) for \(totalSteps) steps (seed \(options.seed)) → \(dir.path)")
        if let resumeNote { log(resumeNote) }
        if onPolicySnapshot != nil { try publishLiveState(step: agent.stepsDone) }
        do {
            if agent.stepsDone < totalSteps { try agent.train(totalSteps: totalSteps, context: self) }
        } catch let error as AgentError {
            if case .nonFinite = error {
                try? metrics.flush()  // the divergence is the error to report
                progress.finishLine()
                if let (file, step) = lastGoodCheckpoint {
                    log("the last good checkpoint is \(file.path) (step \(step)); nothing after it was saved")
                } else {
                    log("no checkpoint was saved: the run diverged before its first one (due at step \(nextCheckpoint))")
                }
            }
            throw error
        }
        try publishLiveState(step: agent.stepsDone)
        try metrics.flush()
        let final = try saveCheckpoint(named: "final.safetensors")
        progress.finishLine()

        try writeLearningCurve()
        var evaluation: EvaluationSummary?
        if options.evaluationEpisodes > 0 {
            let summary: EvaluationSummary
            do {
                summary = try evaluate(agent, on: factory, episodes: options.evaluationEpisodes,
                                       seed: options.seed &+ 1_000_000)
            } catch AgentError.interrupted {
                log("evaluation interrupted: no eval.json; the trained agent is in \(final.path)")
                throw AgentError.interrupted(step: agent.stepsDone)
            }
            try AtomicFile.write(Data((summary.json + "\n").utf8), to: dir.appendingPathComponent("eval.json"))
            log(String(format: "evaluation over %d episodes: mean %.2f ± %.2f (min %.2f, max %.2f)",
                       summary.episodes, summary.mean, summary.std, summary.min, summary.max))
            if summary.episodesAtStepLimit > 0 {
                log("\(summary.episodesAtStepLimit) of \(summary.episodes) evaluation episodes were stopped at "
                    + "\(evaluationStepLimit) steps (\(options.environment) has no time limit)")
            }
            evaluation = summary
        }
        return RunResult(steps: agent.stepsDone, episodes: episodeReturns.count,
                         wallSeconds: earlierWallSeconds + Date().timeIntervalSince(startTime), evaluation: evaluation,
                         finalCheckpoint: final)
    }

    // MARK: TrainingContext

    public func episodeFinished(step: Int, episodeReturn: Double, length: Int) {
        episodeReturns.append(episodeReturn)
        episodeSteps.append(step)
        let wall = String(format: "%.3f", earlierWallSeconds + Date().timeIntervalSince(startTime))
        metrics?.append(["\(step)", "\(episodeReturns.count)", "\(episodeReturn)", "\(length)", wall]
                        + descriptor.diagnostics.map { latestDiagnostics[$0].map { "\($0)" } ?? "" })
    }

    public func recordDiagnostics(step: Int, _ values: [String: Double]) throws {
        for (key, value) in values.sorted(by: { $0.key < $1.key }) where !value.isFinite {
            throw AgentError.nonFinite(step: step, quantity: key)
        }
        latestDiagnostics.merge(values) { _, new in new }
    }

    public func tick(step: Int) throws {
        // A stop asked for once every step is done waits for the final checkpoint, which follows at once (a run
        // stopped there would have nothing left to resume).
        if StopRequest.isRequested && step < totalSteps {
            try metrics?.flush()
            let saved = try saveCheckpoint(named: nil)
            progress.finishLine()
            log("stopping at step \(step): checkpoint saved to \(saved.path); continue with --resume \(options.outputDirectory.path)")
            throw AgentError.interrupted(step: step)
        }
        if step >= nextCheckpoint && step < totalSteps {
            try metrics?.flush()
            _ = try saveCheckpoint(named: nil)
            while nextCheckpoint <= step { nextCheckpoint += checkpointInterval }
        }
        if onProgress != nil || onPolicySnapshot != nil, Date().timeIntervalSince(lastLiveUpdate) >= liveInterval {
            try publishLiveState(step: step)
        }
        drawProgress(step: step)
    }

    /// Hands the live-view callbacks the current progress and policy.
    private func publishLiveState(step: Int) throws {
        lastLiveUpdate = Date()
        if let onProgress {
            onProgress(TrainingProgress(step: step, totalSteps: totalSteps, episodes: episodeReturns.count,
                                        lastReturn: episodeReturns.last, meanReturn: recentMean,
                                        stepsPerSecond: stepsPerSecond(at: step), returns: episodeReturns))
        }
        if let onPolicySnapshot {
            let cp = try describedCheckpoint()
            onPolicySnapshot(try SafeTensors.encode(cp.tensors, metadata: cp.metadata.values))
        }
    }

    private func stepsPerSecond(at step: Int) -> Double {
        Double(step - startStep) / max(Date().timeIntervalSince(startTime), 1e-9)
    }

    // MARK: Checkpoints

    /// Writes the agent's checkpoint as `checkpoints/step_<N>.safetensors` (or `name`) and `last.safetensors`, with
    /// the training state beside those `--resume` continues from (`RunFolder.saveCheckpoint(_:trainingState:…)`).
    @discardableResult
    func saveCheckpoint(named name: String?) throws -> URL {
        let cp = try describedCheckpoint()
        let checkpoint = try SafeTensors.encode(cp.tensors, metadata: cp.metadata.values)
        let state = try trainingState()?.encoded(step: agent.stepsDone, checkpoint: checkpoint)
        let file = try folder.saveCheckpoint(checkpoint, trainingState: state, step: agent.stepsDone, named: name)
        lastGoodCheckpoint = (folder.last, agent.stepsDone)
        return file
    }

    /// The agent's training state with the run's own part (`run`): its latest diagnostics, which the next metrics
    /// rows repeat until the next update. Episode numbers and returns come back from metrics.csv.
    private func trainingState() -> TrainingState? {
        guard var state = agent.trainingState() else { return nil }
        var run = SnapshotWriter()
        for key in descriptor.diagnostics {
            run.write(latestDiagnostics[key] != nil)
            run.write(latestDiagnostics[key] ?? 0)
        }
        state.words["run"] = run.words
        return state
    }

    /// The agent's checkpoint with the metadata that makes it self-describing.
    private func describedCheckpoint() throws -> AgentCheckpoint {
        var cp = try agent.checkpoint()
        cp.metadata[.format] = CheckpointMetadata.Kind.agent.format
        cp.metadata[.agent] = descriptor.name
        cp.metadata[.env] = options.environment
        cp.metadata[.envOptions] = checkpointEnvironmentOptions
        cp.metadata[.hyperparameters] = hyperParameters.json
        cp.metadata[.step] = agent.stepsDone
        cp.metadata[.seed] = options.seed
        return cp
    }

    /// Loads `file` into `agent`, refusing bad metadata and a checkpoint of another agent or environment.
    public static func restore(_ agent: Agent, from file: URL, descriptor: AgentDescriptor, environment: String) throws {
        let loaded = try SafeTensors.read(from: file)
        let meta = try CheckpointMetadata(loaded.metadata).validated(as: .agent, source: file.path)
        let name = try meta.value(.agent), env = try meta.value(.env)
        guard name == descriptor.name else {
            throw AgentError.checkpointMismatch("\(file.path) holds a \(name) agent, not \(descriptor.name)")
        }
        guard env == environment else {
            throw AgentError.checkpointMismatch("\(file.path) was trained on \(env), not \(environment)")
        }
        try agent.restore(AgentCheckpoint(tensors: loaded.tensors, metadata: meta))
    }

    // MARK: Output

    /// The chart of the episodes so far (empty axes when no episode has finished yet: every run writes one).
    private func writeLearningCurve() throws {
        let image = LearningCurve.draw(steps: episodeSteps.map(Double.init), returns: episodeReturns,
                                       title: "\(descriptor.name) on \(options.environment) (seed \(options.seed))")
        try image.writePNG(to: options.outputDirectory.appendingPathComponent("learning_curve.png"))
    }

    // MARK: Progress

    private var recentMean: Double? {
        guard !episodeReturns.isEmpty else { return nil }
        let recent = episodeReturns.suffix(100)
        return recent.reduce(0, +) / Double(recent.count)
    }

    private func drawProgress(step: Int) {
        let rate = stepsPerSecond(at: step)
        let eta = rate > 0 ? Double(totalSteps - step) / rate : 0
        let mean = recentMean.map { String(format: "%.2f", $0) } ?? "-"
        progress.draw(fraction: Double(step) / Double(totalSteps),
                      stats: String(format: "%d/%d steps | %d episodes | mean return (last 100) %@ | %.0f steps/s | ETA %@",
                                    step, totalSteps, episodeReturns.count, mean, rate, formatDuration(eta)))
    }

    private func log(_ message: String) { progress.log(message) }
}
