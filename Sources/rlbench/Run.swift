import Agents
import Datasets
import Classifiers
import Generative
import ArgumentParser
import CLIKit
import Environments
import Foundation
import Glibc
import RLCore
import Support
import Viewer
import Training

/// `rlbench run [agent] --env ID ...`: trains an agent headless and writes the run folder.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an agent (default: PPO on CartPole-v1) and write config, metrics, checkpoints, curve and eval.",
        discussion: """
        Without --env the agent's default environment is used; without --config the tuned rl-baselines3-zoo \
        hyperparameters for that environment. The run folder (default runs/<agent>-<env>-seed<S>) receives config.yml, \
        metrics.csv, checkpoints/, last.safetensors, final.safetensors, learning_curve.png and eval.json.
        """)

    @Argument(help: "The agent (\(AgentCatalog.names.joined(separator: ", "))) generative model (\(ModelCatalog.names.joined(separator: ", "))) or classifier (\(ClassifierCatalog.names.joined(separator: ", "))) (default: ppo; with --resume, the run's).")
    var agent: String?

    @Option(name: .long, help: "Data set of a generative model or classifier: \(Datasets.names.joined(separator: ", ")) (default: the model's own).")
    var data: String?

    @Option(name: .long, help: "Folder holding the IDX files of --data mnist or fashion-mnist (default: $RLBENCH_DATA/<name>, then /usr/share/datasets/<name>).")
    var dataDir: String?

    @Option(name: .long, parsing: .unconditional, help: "Training epochs of a generative model or classifier (default: the config's epochs).",
            transform: parseCount("--epochs", in: 1...Limits.dataEpochs))
    var epochs: Int?

    @Option(name: .long, help: "Environment id (see `rlbench env list`).")
    var env: String?

    @Option(name: .long, parsing: .unconditional, help: "Total environment steps, e.g. 100000, 100_000 or 1e5 (default: the config's n_timesteps).",
            transform: parseCount("--steps", in: 1...Limits.timesteps))
    var steps: Int?

    @Option(name: .long, parsing: .unconditional, help: "Random seed; the same seed and config give the same run (default: 0; with --resume, the run's).", transform: parseSeed)
    var seed: UInt64?

    @Option(name: .long, help: "A YAML file of hyperparameters (rl-zoo key names) applied over the tuned defaults.")
    var config: String?

    @Option(name: .customLong("set"), help: "Override one hyperparameter, e.g. --set learning_rate=3e-4 (repeatable).")
    var overrides: [String] = []

    @Option(name: .long, help: "Environment option key=value, e.g. --env-option is_slippery=false (repeatable).")
    var envOption: [String] = []

    @Option(name: .long, help: "Output folder (default runs/<agent>-<env>-seed<S>).")
    var out: String?

    @Option(name: .long, help: "Continue the run in this folder from its last checkpoint, with its own agent, environment, seed and config.yml (--steps may raise its total).")
    var resume: String?

    @Option(name: .long, parsing: .unconditional, help: "Episodes of the final deterministic evaluation (0 to skip).",
            transform: parseCount("--eval-episodes", in: 0...Limits.evaluationEpisodes))
    var evalEpisodes = 100

    @Option(name: .long, parsing: .unconditional, help: "Steps between periodic checkpoints (default: a fifth of the run).",
            transform: parseCount("--checkpoint-every", in: 1...Limits.timesteps))
    var checkpointEvery: Int?

    @Option(name: .long, help: ArgumentHelp("Also write TensorBoard event files into DIR/<run folder name>/ (the metrics under SB3's tags; a generative model's samples each epoch). The config key tensorboard_log does the same.", valueName: "dir"))
    var tensorboard: String?

    @Flag(name: .long, help: "Plain log lines instead of a live progress bar.")
    var plain = false

    @Flag(name: .long, help: "Show live episodes in a window while training (needs a display; keys: space pause, +/- speed, R restart, S screenshot, Q close).")
    var view = false

    @Option(name: .long, parsing: .unconditional, help: "Frames per second of the --view window (default: the environment's own).")
    var fps: Double?

    func validate() throws {
        if let out, out.isEmpty { throw ValidationError("--out needs a folder name") }
        if let resume, resume.isEmpty { throw ValidationError("--resume needs the folder of a run") }
        if let tensorboard, tensorboard.isEmpty { throw ValidationError("--tensorboard needs a folder name") }
        if let fps, !(fps > 0 && fps.isFinite) { throw ValidationError("--fps must be a positive number, got \(fps)") }
        if fps != nil && !view { throw ValidationError("--fps sets the speed of the --view window; add --view") }
    }

    mutating func run() throws {
        if data != nil, let agent, !ModelCatalog.names.contains(agent), !ClassifierCatalog.names.contains(agent),
           !AgentCatalog.names.contains(agent) {
            throw ValidationError("unknown model '\(agent)' for --data; generative models: \(ModelCatalog.names.joined(separator: ", ")); "
                                  + "classifiers: \(ClassifierCatalog.names.joined(separator: ", "))")
        }
        if isClassifierRun() { return try runClassifier() }
        if try isModelRun() { return try runModel() }
        if let (_, flag) = [(data != nil, "--data"), (dataDir != nil, "--data-dir"), (epochs != nil, "--epochs")].first(where: { $0.0 }) {
            throw ValidationError("\(flag) is for generative models and classifiers (\((ModelCatalog.names + ClassifierCatalog.names).joined(separator: ", "))); "
                                  + "an agent trains for --steps on --env")
        }
        var envOptions: [String: String] = [:]
        for item in envOption {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ValidationError("--env-option expects key=value, got '\(item)'")
            }
            let key = String(item[..<eq])
            guard envOptions[key] == nil else { throw ValidationError("--env-option \(key) is given twice") }
            envOptions[key] = String(item[item.index(after: eq)...])
        }
        let descriptor: AgentDescriptor, environment: String, runSeed: UInt64, directory: URL
        if let resume {
            // A resumed run continues as it was started: the same agent, environment, seed and hyperparameters.
            directory = URL(fileURLWithPath: resume)
            let run = try fail { try ResumableRun(directory: directory) }
            func conflict(_ what: String, _ given: String, _ own: String) -> ValidationError {
                ValidationError("--resume continues the run in \(resume) with its own \(what) (\(own)); drop \(given)")
            }
            if let agent, agent != run.agent { throw conflict("agent", "'\(agent)'", run.agent) }
            if let env, env != run.environment { throw conflict("environment", "--env \(env)", run.environment) }
            if let seed, seed != run.seed { throw conflict("seed", "--seed \(seed)", String(run.seed)) }
            if !envOption.isEmpty {
                let own = run.environmentOptions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                throw conflict("environment options", "--env-option", own.isEmpty ? "none" : own.joined(separator: ", "))
            }
            if config != nil || !overrides.isEmpty {
                throw conflict("hyperparameters", config != nil ? "--config" : "--set", "\(resume)/config.yml")
            }
            if out != nil { throw ValidationError("--resume writes into the run's own folder; drop --out") }
            descriptor = try fail { try AgentCatalog.agent(named: run.agent).descriptor }
            environment = run.environment; runSeed = run.seed
        } else {
            descriptor = try fail { try AgentCatalog.agent(named: agent ?? "ppo").descriptor }
            environment = env ?? descriptor.defaultEnvironment
            runSeed = seed ?? 0
            directory = out.map { URL(fileURLWithPath: $0) } ?? Run.freshDirectory("runs/\(descriptor.name)-\(environment)-seed\(runSeed)")
        }
        var options = RunOptions(agent: descriptor.name, environment: environment, outputDirectory: directory)
        options.environmentOptions = envOptions
        options.steps = steps
        options.seed = runSeed
        options.configFile = config.map { URL(fileURLWithPath: $0) }
        options.overrides = overrides
        options.resume = resume != nil
        options.evaluationEpisodes = evalEpisodes
        options.checkpointEvery = checkpointEvery
        options.progress = plain ? .lines : .automatic
        options.tensorboardLog = tensorboard

        StopRequest.reset()
        StopRequest.installInterruptHandler()
        let training = try fail { try TrainingRun(options) }
        let result: RunResult
        do {
            if view {
                let viewOptions = LiveTraining.Options(fps: fps, screenshotDirectory: directory)
                result = try LiveTraining.run(training, options: viewOptions) {
                    FileHandle.standardError.write(Data(($0 + "\n").utf8))
                }
            } else {
                result = try training.run()
            }
        } catch AgentError.interrupted {
            throw ExitCode(StopRequest.exitCode)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        print("done: \(result.steps) steps, \(result.episodes) episodes in \(String(format: "%.1f", result.wallSeconds)) s; "
              + "final checkpoint \(result.finalCheckpoint.path)")
        if let e = result.evaluation {
            print(String(format: "eval.json: mean %.2f ± %.2f over %d episodes", e.mean, e.std, e.episodes))
        }
    }
}

extension Run {
    /// `base`, or `base-2`, `base-3`, … if it exists: a default run folder never overwrites an earlier run.
    static func freshDirectory(_ base: String) -> URL {
        var candidate = base, n = 1
        while FileManager.default.fileExists(atPath: candidate) {
            n += 1
            candidate = "\(base)-\(n)"
        }
        return URL(fileURLWithPath: candidate)
    }
}
