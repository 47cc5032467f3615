import Agents
import Foundation
import RLCore
import SeededRandom
import TestSupport
import Testing
import Training

/// Checkpoint metadata (issues 28 and 31): one typed definition of every key, one validation naming every bad key,
/// done before `--resume` touches the run folder; the fallback to a periodic checkpoint; folders without a usable
/// checkpoint; deterministic errors for damaged files.
@Suite struct CheckpointMetadataTests {
    /// A short PPO run on CartPole with periodic checkpoints every 1,000 steps (PPO saves after each 512-step
    /// rollout past them): PPO is where a negative step trapped.
    static func ppoRun(steps: Int = 3000) throws -> URL {
        let dir = temporaryDirectory()
        var options = RunOptions(agent: "ppo", environment: "CartPole-v1", outputDirectory: dir)
        options.steps = steps
        options.checkpointEvery = 1000
        options.evaluationEpisodes = 0
        options.progress = .quiet
        _ = try TrainingRun(options).run()
        return dir
    }

    /// Rewrites `file` with the same tensors and its metadata changed by `change`.
    static func rewrite(_ file: URL, _ change: (inout [String: String]) -> Void) throws {
        let loaded = try SafeTensors.read(from: file)
        var meta = loaded.metadata
        change(&meta)
        try SafeTensors.write(loaded.tensors, metadata: meta, to: file)
    }

    static func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    /// A valid agent checkpoint's metadata (a tabular one: it has every optional key but env_options' content).
    static let validAgentMetadata: [String: String] = {
        var meta = CheckpointMetadata()
        meta[.format] = CheckpointMetadata.Kind.agent.format
        meta[.agent] = "qlearning"
        meta[.env] = "FrozenLake-v1"
        meta[.envOptions] = ["is_slippery": "false"]
        meta[.seed] = 3
        meta[.step] = 100
        meta[.rngState] = SeededGenerator(seed: 1)
        meta[.policy] = #"[{"type": "table", "tensor": "q_table"}]"#
        meta[.action] = "argmax"
        meta[.observation] = #"{"type": "index"}"#
        meta[.qTable] = [0.5, -1]
        meta[.hyperparameters] = #"{"learning_rate":0.1}"#
        return meta.values
    }()

    @Test func validMetadataHasNoProblems() {
        #expect(CheckpointMetadata(Self.validAgentMetadata).problems(as: .agent) == [])
        #expect(CheckpointMetadata(Self.validAgentMetadata).problems() == [])
        #expect(CheckpointMetadata(Self.validAgentMetadata).kind == .agent)
    }

    /// Each bad value is named with its key; several bad keys are all named, in one error.
    @Test(arguments: [
        ("step", "-5", "step \"-5\" is not a whole number ≥ 0"),
        ("step", "abc", "step \"abc\" is not a whole number ≥ 0"),
        ("seed", "-1", "seed \"-1\" is not a whole number from 0"),
        ("rng_state", "zz", "rng_state \"zz\" is not four whole numbers"),
        ("rng_state", "0,0,0,0", "rng_state \"0,0,0,0\" is not four whole numbers, not all 0"),
        ("rng_state", "1,2,3", "rng_state \"1,2,3\" is not four"),
        ("format", "rlbench-agent-99", "format \"rlbench-agent-99\" is not one this rlbench reads (rlbench-agent-1"),
        ("env_options", "{{{", "env_options \"{{{\" is not a JSON object of strings"),
        ("env_options", #"{"map": 4}"#, "env_options \"{\"map\": 4}\" is not a JSON object of strings"),
        ("policy", "[1]", "policy \"[1]\" is not a JSON list of layers"),
        ("policy", #"[{"weight": "pi.0.weight"}]"#, "policy \"[{\"weight\": \"pi.0.weight\"}]\" is not a JSON list of layers"),
        ("action", "sample", "action \"sample\" is not argmax or gaussian_mean"),
        ("observation", #"{"type": "whiten"}"#, "observation \"{\"type\": \"whiten\"}\" is not a JSON object of type index or normalize"),
        ("observation", #"{"type": "normalize", "mean": "obs_rms.mean"}"#, "observation \"{\"type\": \"normalize\", \"mean\": \"obs_rms.mean\"}\" is not"),
        ("hyperparameters", "[]", "hyperparameters \"[]\" is not a JSON object"),
        ("q_table_f64", "1,x", "q_table_f64 \"1,x\" is not numbers separated by commas"),
        ("agent", "", "agent \"\" is not a name"),
    ])
    func eachBadKeyIsNamed(key: String, value: String, expected: String) throws {
        var values = Self.validAgentMetadata
        values[key] = value
        let problems = CheckpointMetadata(values).problems(as: .agent)
        #expect(problems.count == 1 && problems[0].hasPrefix(expected), "\(problems)")
        let error = Self.message { try CheckpointMetadata(values).validated(as: .agent, source: "x.safetensors") }
        #expect(error.hasPrefix("x.safetensors: bad checkpoint metadata: \(expected)"), "\(error)")
    }

    @Test func allBadAndMissingKeysAreNamedTogether() {
        var values = Self.validAgentMetadata
        values["format"] = "rlbench-agent-99"
        values["seed"] = "-1"
        values["step"] = "abc"
        values["env"] = nil
        let problems = CheckpointMetadata(values).problems(as: .agent)
        #expect(problems.count == 4, "\(problems)")
        for key in ["format", "seed", "step", "env is missing"] {
            #expect(problems.contains { $0.hasPrefix(key) }, "\(key) not named in \(problems)")
        }
        // Without an expected kind, an unknown format still has the keys every kind shares checked.
        let anyKind = CheckpointMetadata(values).problems()
        #expect(anyKind.count == 3 && anyKind.contains { $0.hasPrefix("seed") } && anyKind.contains { $0.hasPrefix("step") },
                "\(anyKind)")
        // Another kind's checkpoint is named as such.
        values = Self.validAgentMetadata
        #expect(CheckpointMetadata(values).problems(as: .classifier)
                == ["format \"rlbench-agent-1\" marks an agent checkpoint, not a classifier checkpoint"])
    }

    @Test func dataRunKeysAreValidatedToo() {
        var meta = CheckpointMetadata()
        meta[.format] = CheckpointMetadata.Kind.generative.format
        meta[.model] = "gan"
        meta[.data] = "ring8"
        meta[.seed] = 0
        meta[.epoch] = 1
        meta[.batch] = 0
        meta[.step] = 10
        meta[.lossSums] = ["d_loss": 0.25]
        meta[.rngState] = SeededGenerator(seed: 2)
        meta[.hyperparameters] = "{}"
        meta[.generator] = #"[{"type": "linear", "weight": "g.0.weight"}]"#
        meta[.latentSize] = 2
        meta[.sampleShape] = [2]
        meta[.classes] = 8
        meta[.conditional] = false
        #expect(meta.problems(as: .generative) == [])
        var values = meta.values
        values["loss_sums"] = #"{"d_loss": "x"}"#
        values["sample_shape"] = "[0]"
        values["conditional"] = "yes"
        let problems = CheckpointMetadata(values).problems(as: .generative)
        #expect(problems.map { String($0.prefix(while: { $0 != " " })) } == ["sample_shape", "conditional", "loss_sums"], "\(problems)")

        var classifier = CheckpointMetadata()
        classifier[.epochSums] = EpochSums(lossSum: 1.5, correct: 3, seen: 4)
        classifier[.earlyStopping] = EarlyStopping(bestValidationLoss: .infinity, staleEpochs: 0, stopped: false)
        classifier[.dropoutStates] = []
        #expect(classifier[.epochSums] == EpochSums(lossSum: 1.5, correct: 3, seen: 4))
        #expect(classifier.values["early_stopping"] == "\(Double.infinity.bitPattern),0,false")
        #expect(classifier[.dropoutStates] == [])
        #expect(CheckpointMetadata(["epoch_sums": "1,2"])[.epochSums] == nil)
    }

    /// The strings written are exactly those rlbench has always written (checkpoints stay byte-identical).
    @Test func valuesAreWrittenAsBefore() {
        let rng = SeededGenerator(seed: 7)
        var meta = CheckpointMetadata()
        meta[.rngState] = rng
        meta[.envOptions] = ["b": "1", "a": "x"]
        meta[.step] = 42
        meta[.seed] = UInt64.max
        meta[.qTable] = [0.1, 2]
        meta[.dropoutStates] = [rng, rng]
        #expect(meta.values["rng_state"] == rng.stateWords.map(String.init).joined(separator: ","))
        #expect(meta.values["env_options"] == #"{"a":"x","b":"1"}"#)
        #expect(meta.values["step"] == "42" && meta.values["seed"] == "18446744073709551615")
        #expect(meta.values["q_table_f64"] == "0.1,2.0")
        #expect(meta[.rngState] == rng && meta[.dropoutStates] == [rng, rng])
        #expect(throws: CheckpointMetadataError.self) { try CheckpointMetadata().value(.step) }
    }

    /// A `last.safetensors` with a negative step (which trapped in PPO) or a bad generator state makes `--resume` an
    /// error naming both keys, and metrics.csv and config.yml keep their bytes.
    @Test func resumeWithBadMetadataLeavesTheFolderUntouched() throws {
        let dir = try Self.ppoRun()
        let folder = RunFolder(dir)
        try FileManager.default.removeItem(at: folder.checkpoints) // no periodic checkpoint to fall back to
        try Self.rewrite(folder.last) { $0["step"] = "-5"; $0["rng_state"] = "zz" }
        let before = try [folder.metrics, folder.config, folder.last].map { try Data(contentsOf: $0) }
        let error = Self.message {
            let run = try TrainingRun(resumeOptions("ppo", "CartPole-v1", directory: dir, steps: 6000))
            return try run.run()
        }
        #expect(error.contains("nothing to resume") && error.contains("step \"-5\"") && error.contains("rng_state \"zz\""), "\(error)")
        #expect(try [folder.metrics, folder.config, folder.last].map { try Data(contentsOf: $0) } == before)
        #expect(!FileManager.default.fileExists(atPath: folder.checkpoints.path))
    }

    /// When last.safetensors is missing, damaged or has bad metadata, `--resume` continues from the newest valid
    /// periodic checkpoint and says which.
    @Test func resumeFallsBackToTheNewestValidPeriodicCheckpoint() throws {
        let dir = try Self.ppoRun()
        let folder = RunFolder(dir)
        // (The training states beside the checkpoints are not checkpoints.)
        let periodic = try FileManager.default.contentsOfDirectory(atPath: folder.checkpoints.path)
            .filter { !$0.hasSuffix(".state.safetensors") }.sorted()
        #expect(periodic.count >= 2, "\(periodic)")
        let newest = folder.checkpoints.appendingPathComponent(periodic.last!)
        let newestStep = try #require(try CheckpointMetadata(contentsOf: newest)[.step])

        // last.safetensors truncated: the newest periodic checkpoint.
        let bytes = try Data(contentsOf: folder.last)
        try bytes.prefix(bytes.count / 2).write(to: folder.last)
        var point = try folder.resumePoint(kind: .agent)
        #expect(point.file.lastPathComponent == newest.lastPathComponent)
        #expect(point.note?.contains(newest.path) == true && point.note?.contains("last.safetensors") == true, "\(point.note ?? "")")

        // The newest periodic one with bad metadata too: the one before it.
        try Self.rewrite(newest) { $0["seed"] = "-1" }
        point = try folder.resumePoint(kind: .agent)
        #expect(point.file.lastPathComponent == periodic[periodic.count - 2])
        #expect(point.note?.contains("seed \"-1\"") == true, "\(point.note ?? "")")

        // last.safetensors missing: the run continues from the fallback, at its step.
        try FileManager.default.removeItem(at: folder.last)
        try FileManager.default.removeItem(at: newest)
        let run = try TrainingRun(resumeOptions("ppo", "CartPole-v1", directory: dir, steps: 4000))
        let fallbackStep = try #require(try CheckpointMetadata(contentsOf: point.file)[.step])
        #expect(run.agent.stepsDone == fallbackStep && fallbackStep < newestStep)
        let result = try run.run()
        #expect(result.steps >= 4000)
        #expect(try CheckpointMetadata(contentsOf: folder.last)[.step] == result.steps)
    }

    /// A run that diverges before its first checkpoint leaves config.yml and metrics.csv but nothing to resume: a
    /// new run may use the folder, and `--resume` says how to start it over.
    @Test func aFolderWithoutAUsableCheckpointIsReusable() throws {
        let dir = temporaryDirectory()
        var options = RunOptions(agent: "ppo", environment: "CartPole-v1", outputDirectory: dir)
        options.steps = 3000
        options.overrides = ["learning_rate=1e300"]
        options.evaluationEpisodes = 0
        options.progress = .quiet
        #expect(Self.message { try TrainingRun(options).run() }.contains("training diverged"))
        let folder = RunFolder(dir)
        #expect(FileManager.default.fileExists(atPath: folder.config.path))
        #expect(!FileManager.default.fileExists(atPath: folder.last.path))

        let resume = Self.message { try TrainingRun(resumeOptions("ppo", "CartPole-v1", directory: dir)) }
        #expect(resume.contains("nothing to resume") && resume.contains("start it over"), "\(resume)")
        // The data runs share the check.
        var data = DataRunOptions(model: "gan", data: "ring8", outputDirectory: dir)
        #expect(try data.openFolder(folder, kind: .generative).note?.contains("starting over") == true)

        options.overrides = []
        let result = try TrainingRun(options).run()
        #expect(result.steps >= 3000)
        // Now the folder holds a run: a new run is refused.
        #expect(Self.message { try TrainingRun(options) }.contains("already holds a run"))
        data.resume = true
        #expect(Self.message { try data.openFolder(folder, kind: .generative) }
                .contains("marks an agent checkpoint, not a generative-model checkpoint"))
    }

    /// `eval`'s and `play`'s loader validates the whole metadata too.
    @Test func savedAgentsRefuseBadMetadata() throws {
        let dir = try Self.ppoRun(steps: 1000)
        let file = dir.appendingPathComponent("final.safetensors")
        try Self.rewrite(file) { $0["step"] = "abc"; $0["env_options"] = "{{{"; $0["action"] = "sample" }
        let error = Self.message { try SavedAgent.load(file) }
        for key in ["step \"abc\"", "env_options \"{{{\"", "action \"sample\""] {
            #expect(error.contains(key), "\(key) not in \(error)")
        }
    }

    /// A damaged file gives the same error every time (the reader checks tensors in a fixed order).
    @Test func truncatedFilesGiveTheSameErrorEveryTime() throws {
        let dir = try Self.ppoRun(steps: 1000)
        let bytes = try Data(contentsOf: dir.appendingPathComponent("final.safetensors"))
        let file = dir.appendingPathComponent("truncated.safetensors")
        try bytes.prefix(bytes.count - 100).write(to: file)
        let errors = Set((0..<20).map { _ in Self.message { try SafeTensors.read(from: file) } })
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.contains("data_offsets") == true, "\(errors)")
    }
}
