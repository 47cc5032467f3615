import Agents
import Environments
import Foundation
import RLCore
import TestSupport
import Testing

func temporaryDirectory() -> URL { Scratch.directory("agents") }

/// Trains `agent` on `env` with the tuned defaults and returns the run's evaluation.
func train(_ agent: String, _ env: String, steps: Int? = nil, seed: UInt64 = 0, overrides: [String] = [],
           episodes: Int = 100, directory: URL = temporaryDirectory()) throws -> (RunResult, URL) {
    var options = RunOptions(agent: agent, environment: env, outputDirectory: directory)
    options.steps = steps
    options.seed = seed
    options.overrides = overrides
    options.evaluationEpisodes = episodes
    options.progress = .quiet
    return (try TrainingRun(options).run(), directory)
}

/// Options that resume the run in `directory` up to `steps`, quietly and without an evaluation.
func resumeOptions(_ agent: String, _ env: String, directory: URL, steps: Int? = nil) -> RunOptions {
    var options = RunOptions(agent: agent, environment: env, outputDirectory: directory)
    options.steps = steps
    options.resume = true
    options.evaluationEpisodes = 0
    options.progress = .quiet
    return options
}

/// Learning, asserted: the cheapest entries of the README's table, with fixed seeds.
@Suite struct LearningTests {
    @Test func ppoSolvesCartPole() throws {
        let (result, _) = try train("ppo", "CartPole-v1", seed: 0, episodes: 20)
        #expect(try #require(result.evaluation).mean >= 475)
    }

    @Test func a2cSolvesCartPole() throws {
        let (result, _) = try train("a2c", "CartPole-v1", seed: 0, episodes: 20)
        #expect(try #require(result.evaluation).mean >= 475)
    }

    @Test func reinforceSolvesCartPole() throws {
        let (result, _) = try train("reinforce", "CartPole-v1", seed: 0, episodes: 20)
        #expect(try #require(result.evaluation).mean >= 475)
    }

    /// The issue's target, as the zoo measures it: the median over seeds 0–4 reaches 475. With the zoo's keys alone
    /// DQN's policy after 5e4 steps solved CartPole for about half the seeds (a change of rounding redrew which);
    /// the default's two-step targets solved 38 of seeds 0–39, so a median of five fails about once in a thousand
    /// draws.
    @Test func dqnSolvesCartPole() throws {
        var means: [Double] = []
        for seed: UInt64 in 0..<5 {
            let (result, _) = try train("dqn", "CartPole-v1", seed: seed, episodes: 20)
            means.append(try #require(result.evaluation).mean)
        }
        #expect(means.sorted()[2] >= 475, "returns over seeds 0–4: \(means)")
    }

    /// Without velocities CartPole needs memory: at 3e4 steps (of the zoo's 1e5) the LSTM policy balances far longer than
    /// MLP PPO with CartPole's tuned settings, which stays near 45 whatever the budget (5 seeds at 1e5 steps: 42–46).
    /// Judged by the median of seeds 0–2: at this budget one seed's return swings with float rounding alone (seeds 0–4
    /// range from 184 to 500).
    @Test func recurrentPPORemembersWhatCartPoleNoVelHides() throws {
        var recurrent: [Double] = []
        for seed: UInt64 in 0..<3 {
            let (result, _) = try train("recurrent-ppo", "CartPoleNoVel-v1", steps: 30_000, seed: seed, episodes: 20)
            recurrent.append(try #require(result.evaluation).mean)
        }
        let (mlp, _) = try train("ppo", "CartPoleNoVel-v1", steps: 30_000, seed: 0, episodes: 20)
        let (r, m) = (recurrent.sorted()[1], try #require(mlp.evaluation).mean)
        #expect(r >= 200 && m < 100, "recurrent-ppo over seeds 0–2 \(recurrent), ppo \(m)")
    }

    @Test func qLearningOnSlipperyFrozenLake() throws {
        let (result, _) = try train("qlearning", "FrozenLake-v1", seed: 0)
        #expect(try #require(result.evaluation).mean >= 0.70)
    }

    @Test func cliffWalkingOptimalAndSafePaths() throws {
        let (q, _) = try train("qlearning", "CliffWalking-v1", seed: 0, episodes: 1)
        #expect(q.evaluation?.mean == -13, "Q-learning takes the optimal path along the cliff")
        let (s, _) = try train("sarsa", "CliffWalking-v1", seed: 0, episodes: 1)
        #expect(s.evaluation?.mean == -17, "SARSA takes the safe path")
    }
}

@Suite struct RunTests {
    @Test func runFolderHasEveryArtifact() throws {
        let (result, dir) = try train("ppo", "CartPole-v1", steps: 3000, episodes: 5)
        for name in ["config.yml", "metrics.csv", "learning_curve.png", "eval.json", "final.safetensors", "last.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path), "\(name) missing")
        }
        // A checkpoint after each fifth of the run (the first step past 600, 1200, ...), the fifth being final.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("checkpoints").path).sorted()
        let checkpoints = files.filter { !$0.hasSuffix(".state.safetensors") }
        let steps = checkpoints.compactMap { Int($0.dropFirst("step_".count).dropLast(".safetensors".count)) }
        #expect(steps.count == 4 && checkpoints.allSatisfy { $0.hasPrefix("step_") }, "periodic checkpoints: \(checkpoints)")
        for (i, step) in steps.enumerated() { #expect((600 * (i + 1) ..< 600 * (i + 1) + 600).contains(step), "\(checkpoints)") }
        // Beside each checkpoint --resume can continue from, its training state; none beside the final one.
        #expect(files.filter { $0.hasSuffix(".state.safetensors") } == checkpoints.map { $0.dropLast(".safetensors".count) + ".state.safetensors" })
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("last.state.safetensors").path))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("final.state.safetensors").path))
        #expect(try Data(contentsOf: dir.appendingPathComponent("last.safetensors")) == Data(contentsOf: result.finalCheckpoint))
        let eval = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("eval.json"))) as! [String: Any]
        #expect(Set(eval.keys) == ["episodes", "mean", "std", "min", "max"])
        #expect(eval["episodes"] as? Int == 5)
        let csv = try String(contentsOf: dir.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
        #expect(csv[0].hasPrefix("step,episode,return,length,wall_time_s,learning_rate"))
        #expect(csv.count == result.episodes + 1)
        let png = try Data(contentsOf: dir.appendingPathComponent("learning_curve.png"))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        // The checkpoint describes itself.
        let meta = try SafeTensors.read(from: result.finalCheckpoint).metadata
        #expect(meta["agent"] == "ppo" && meta["env"] == "CartPole-v1" && meta["action"] == "argmax")
        #expect(meta["policy"]?.contains("pi.0.weight") == true)
        #expect(meta["step"] == String(result.steps))
    }

    /// Same seed and config: identical metrics (but wall time), identical checkpoints (periodic and final) and
    /// evaluations, for every agent and the options that add randomness or state (gSDE, the normalizer, Double DQN
    /// with a dueling head and n-step targets).
    @Test(arguments: [("ppo", "CartPole-v1", []), ("dqn", "CartPole-v1", ["learning_starts=200", "train_freq=16", "gradient_steps=4"]),
                      ("dqn", "CartPole-v1", ["learning_starts=200", "train_freq=16", "gradient_steps=4", "double_q=true", "dueling=true",
                                              "n_steps=3"]),
                      ("a2c", "CartPole-v1", []), ("reinforce", "CartPole-v1", []), ("qlearning", "FrozenLake-v1", []),
                      ("sarsa", "CliffWalking-v1", []), ("ppo", "MountainCarContinuous-v0", [])])
    func sameSeedSameRun(agent: String, env: String, overrides: [String]) throws {
        let (a, dirA) = try train(agent, env, steps: 3000, seed: 7, overrides: overrides, episodes: 3)
        let (b, dirB) = try train(agent, env, steps: 3000, seed: 7, overrides: overrides, episodes: 3)
        func withoutWallTime(_ dir: URL) throws -> [String] {
            try String(contentsOf: dir.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n").map {
                var fields = $0.split(separator: ",", omittingEmptySubsequences: false)
                fields.remove(at: 4)
                return fields.joined(separator: ",")
            }
        }
        func checkpoints(_ dir: URL) throws -> [String: Data] {
            let folder = dir.appendingPathComponent("checkpoints")
            let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            return try Dictionary(uniqueKeysWithValues: names.map { ($0, try Data(contentsOf: folder.appendingPathComponent($0))) })
        }
        #expect(try withoutWallTime(dirA) == withoutWallTime(dirB))
        let periodic = try checkpoints(dirA)
        #expect(!periodic.isEmpty)
        #expect(try periodic == checkpoints(dirB))
        #expect(try Data(contentsOf: a.finalCheckpoint) == Data(contentsOf: b.finalCheckpoint))
        #expect(a.evaluation == b.evaluation)
        let (c, _) = try train(agent, env, steps: 3000, seed: 8, overrides: overrides, episodes: 3)
        #expect(try Data(contentsOf: a.finalCheckpoint) != Data(contentsOf: c.finalCheckpoint), "another seed must differ")
    }

    @Test func resumeContinuesFromTheLastCheckpoint() throws {
        let dir = temporaryDirectory()
        // PPO on MountainCarContinuous: gSDE's exploration matrices and the normalizer are state to restore too.
        _ = try train("ppo", "MountainCarContinuous-v0", steps: 2000, episodes: 0, directory: dir)
        let run = try TrainingRun(resumeOptions("ppo", "MountainCarContinuous-v0", directory: dir, steps: 4000))
        #expect(run.agent.stepsDone >= 2000)
        // Everything the checkpoint holds (the model, the optimizer, the normalizer, the generator) is restored bit
        // for bit.
        let file = try SafeTensors.read(from: dir.appendingPathComponent("last.safetensors"))
        let now = try run.agent.checkpoint()
        let saved = file.tensors.sorted { $0.name < $1.name }, restored = now.tensors.sorted { $0.name < $1.name }
        #expect(restored.map(\.name) == saved.map(\.name))
        #expect(now.metadata.values["rng_state"] != nil && now.metadata.values["rng_state"] == file.metadata["rng_state"])
        #expect(saved.contains { $0.name.hasPrefix("obs_rms.") } && saved.contains { $0.name.hasPrefix("optimizer.") })
        for (a, b) in zip(restored, saved) {
            #expect(a.tensor.shape == b.tensor.shape && a.tensor.data.map(\.bitPattern) == b.tensor.data.map(\.bitPattern), "\(a.name)")
        }
        let result = try run.run()
        #expect(result.steps >= 4000)
        #expect(try SafeTensors.read(from: result.finalCheckpoint).metadata["step"] == String(result.steps))
    }

    /// A resumed run keeps the run's own seed and environment options, whatever the options passed (their defaults
    /// here), and resuming the same folder twice gives the same result.
    @Test func resumeKeepsTheRunsSeedAndEnvironmentOptions() throws {
        let dir = temporaryDirectory()
        var first = RunOptions(agent: "qlearning", environment: "FrozenLake-v1", outputDirectory: dir)
        first.steps = 3000
        first.seed = 5
        first.environmentOptions = ["is_slippery": "false"]
        first.evaluationEpisodes = 0
        first.progress = .quiet
        _ = try TrainingRun(first).run()
        let copy = temporaryDirectory()
        try FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(at: dir, to: copy)

        func resume(_ directory: URL) throws -> RunResult {
            let run = try TrainingRun(resumeOptions("qlearning", "FrozenLake-v1", directory: directory, steps: 6000))
            #expect(run.options.seed == 5)
            #expect(run.options.environmentOptions == ["is_slippery": "false"])
            return try run.run()
        }
        let a = try resume(dir), b = try resume(copy)
        let meta = try SafeTensors.read(from: a.finalCheckpoint).metadata
        #expect(meta["seed"] == "5")
        #expect(meta["env_options"] == #"{"is_slippery":"false"}"#)
        #expect(a.steps == 6000)
        #expect(try Data(contentsOf: a.finalCheckpoint) == Data(contentsOf: b.finalCheckpoint))

        // Another agent or environment than the run's is refused; so is a folder with nothing to resume.
        #expect { try TrainingRun(resumeOptions("sarsa", "FrozenLake-v1", directory: dir)) } throws: {
            "\($0)".contains("trains qlearning on FrozenLake-v1")
        }
        #expect { try TrainingRun(resumeOptions("qlearning", "FrozenLake-v1", directory: temporaryDirectory())) } throws: {
            "\($0)".contains("it has no last.safetensors")
        }
    }

    @Test func savedAgentsEvaluateLikeTheRun() throws {
        let (result, _) = try train("a2c", "CartPole-v1", steps: 20000, episodes: 10)
        let loaded = try SavedAgent.load(result.finalCheckpoint)
        #expect(loaded.descriptor.name == "a2c")
        let again = try evaluate(loaded.agent, on: loaded.environment, episodes: 10, seed: 1_000_000)
        #expect(again == result.evaluation)
    }
}

/// The evaluation protocol: episode i starts from a reset with seed + i, whatever runs beside it.
@Suite struct EvaluationTests {
    /// Plays episode `i` alone, one `act` per step, as the protocol describes it.
    func episodeAlone(_ agent: Agent, _ factory: EnvironmentFactory, seed: UInt64) throws -> Double {
        let env = try factory.make()
        var observation = env.reset(seed: seed)
        (agent as? RecurrentAgent)?.beginEpisodes(count: 1)
        var total = 0.0
        while true {
            let result = try env.step(agent.act(observation, deterministic: true))
            total += result.reward
            observation = result.observation
            if result.terminated || result.truncated { return total }
        }
    }

    /// With `recurrent-ppo`, each episode's LSTM states also follow it through the batch as others finish.
    @Test(arguments: ["qlearning", "dqn", "ppo", "recurrent-ppo"])
    func batchedEpisodesEqualEpisodesPlayedAlone(agent name: String) throws {
        let env = ["qlearning": "FrozenLake-v1", "recurrent-ppo": "CartPoleNoVel-v1"][name] ?? "CartPole-v1"
        let (result, _) = try train(name, env, steps: name == "qlearning" ? 20_000 : 3000, episodes: 0)
        let loaded = try SavedAgent.load(result.finalCheckpoint)
        let summary = try evaluate(loaded.agent, on: loaded.environment, episodes: 12, seed: 500, batchSize: 5)
        let alone = try (0..<12).map { try episodeAlone(loaded.agent, loaded.environment, seed: 500 + UInt64($0)) }
        #expect(summary == EvaluationSummary(returns: alone), "batched \(summary) vs one at a time \(alone)")
    }
}

@Suite struct BadInputTests {
    func options(_ agent: String, _ env: String) -> RunOptions {
        var o = RunOptions(agent: agent, environment: env, outputDirectory: temporaryDirectory())
        o.progress = .quiet
        return o
    }

    @Test func unknownAgentListsTheKnownOnes() {
        #expect { try TrainingRun(options("sac", "CartPole-v1")) } throws: { "\($0)".contains("known agents: ppo") }
    }

    @Test func unknownEnvironmentListsTheKnownIds() {
        #expect { try TrainingRun(options("ppo", "CartPole-v9")) } throws: { "\($0)".contains("CartPole-v1") }
    }

    @Test func dqnRefusesContinuousActions() {
        #expect { try TrainingRun(options("dqn", "Pendulum-v1")) } throws: { "\($0)".contains("supports discrete") }
        #expect { try TrainingRun(options("qlearning", "CartPole-v1")) } throws: { "\($0)".contains("Discrete observation") }
    }

    @Test func configErrorsNameTheKeyAndFile() throws {
        let dir = temporaryDirectory()
        let file = dir.appendingPathComponent("my.yml")
        try "learning_rate: 0.001\nlerning_rate: 3\n".write(to: file, atomically: true, encoding: .utf8)
        var o = options("ppo", "CartPole-v1")
        o.configFile = file
        #expect { try TrainingRun(o) } throws: { "\($0)".contains("lerning_rate") && "\($0)".contains("my.yml") }
        try "learning_rate: [unclosed\n".write(to: file, atomically: true, encoding: .utf8)
        #expect { try TrainingRun(o) } throws: { "\($0)".contains("malformed config") && "\($0)".contains("my.yml") }
        try "gamma: fast\n".write(to: file, atomically: true, encoding: .utf8)
        #expect { try TrainingRun(o) } throws: { "\($0)".contains("gamma") && "\($0)".contains("my.yml") }
        var s = options("ppo", "CartPole-v1")
        s.overrides = ["n_steps=-5"]
        #expect { try TrainingRun(s) } throws: { "\($0)".contains("n_steps") }
        var d = options("dqn", "CartPole-v1")
        d.overrides = ["n_steps=0"]
        #expect { try TrainingRun(d) } throws: { "\($0)".contains("'n_steps'") }
        // The zoo's files name SB3's policy class: MlpPolicy is what rlbench builds, anything else is refused.
        try "policy: 'MlpPolicy'\nlearning_rate: 0.001\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(try TrainingRun(o).hyperParameters.values["learning_rate"] == .number(0.001))
        try "policy: 'CnnPolicy'\n".write(to: file, atomically: true, encoding: .utf8)
        #expect { try TrainingRun(o) } throws: { "\($0)".contains("'policy' in") && "\($0)".contains("not CnnPolicy") }
        try "learning_rate: -0.001\n".write(to: file, atomically: true, encoding: .utf8)
        #expect { try TrainingRun(o) } throws: { "\($0)".contains("'learning_rate' in \(file.path): must be > 0") }
    }

    @Test func checkpointOfAnotherAgentIsRefused() throws {
        let (result, _) = try train("a2c", "CartPole-v1", steps: 500, episodes: 0)
        let ppo = try TrainingRun(options("ppo", "CartPole-v1"))
        #expect { try TrainingRun.restore(ppo.agent, from: result.finalCheckpoint, descriptor: PPOAgent.descriptor, environment: "CartPole-v1") }
            throws: { "\($0)".contains("holds a a2c agent") }
        #expect { try TrainingRun.restore(ppo.agent, from: result.finalCheckpoint, descriptor: A2CAgent.descriptor, environment: "Acrobot-v1") }
            throws: { "\($0)".contains("trained on CartPole-v1") }
    }

    @Test func divergingLossStopsWithTheStep() throws {
        // A learning rate of 1e30 makes the weights, then the loss, non-finite within a few updates.
        var o = options("a2c", "CartPole-v1")
        o.steps = 20000
        o.overrides = ["learning_rate=1e30"]
        o.evaluationEpisodes = 0
        #expect { try TrainingRun(o).run() } throws: { "\($0)".contains("NaN or infinite at step") }
    }
}
