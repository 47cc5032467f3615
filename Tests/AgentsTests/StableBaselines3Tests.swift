import Agents
import Environments
import Foundation
import RLCore
import SeededRandom
import TestSupport
import Testing
import Interop
import Training

/// `rlbench export --sb3` and `rlbench import` against Stable-Baselines3 2.9.2 itself: the zips rlbench writes load
/// with `PPO.load` / `A2C.load` / `DQN.load` and pick the same deterministic actions; models SB3 trains import and act
/// as SB3 does. Without Python the round trip through rlbench alone and the refusals still run.
@Suite struct StableBaselines3Tests {
    /// 1,000 observations of a random walk in `environment` (new episodes after each end).
    static func observations(_ environment: String, count: Int = 1000) throws -> [[Float]] {
        try randomWalkObservations(try Registry.make(environment), count: count, resetSeed: 5)
    }

    /// The actions as rows of floats (a discrete action as its index).
    static func rows(_ actions: [Action]) -> [[Double]] {
        actions.map {
            switch $0 {
            case let .discrete(a): [Double(a)]
            case let .continuous(a): a.map(Double.init)
            }
        }
    }

    static func expectSame(_ ours: [[Double]], _ theirs: [[Double]], _ what: String) {
        #expect(ours.count == theirs.count, "\(what): \(ours.count) actions against \(theirs.count)")
        var mismatches = 0
        for (a, b) in zip(ours, theirs) where a.count != b.count || zip(a, b).contains(where: { abs($0 - $1) > 1e-4 * max(1, abs($1)) }) {
            if mismatches < 3 { Issue.record("\(what): rlbench \(a), SB3 \(b)") }
            mismatches += 1
        }
        #expect(mismatches == 0, "\(what): \(mismatches) of \(ours.count) actions differ")
    }

    /// python3 with stable_baselines3 importable, else nil.
    static let python: String? = {
        guard let python = CLI.executable(named: "python3"),
              let probe = try? CLI.runTool(python, ["-c", "import stable_baselines3; print(stable_baselines3.__version__)"]),
              probe.status == 0 else { return nil }
        return python
    }()
    static let sb3Missing = "stable-baselines3 is not importable by python3 (scripts/setup --for-tests installs it)"

    /// A short rlbench run of `agent` on `environment`; returns its final checkpoint.
    static func train(_ agent: String, _ environment: String, steps: Int, overrides: [String] = []) throws -> URL {
        var options = RunOptions(agent: agent, environment: environment, outputDirectory: temporaryDirectory())
        options.steps = steps
        options.overrides = overrides
        options.evaluationEpisodes = 0
        options.progress = .quiet
        return try TrainingRun(options).run().finalCheckpoint
    }

    // MARK: rlbench → SB3

    struct ExportCase: CustomStringConvertible, Sendable {
        var agent, environment: String
        var steps: Int
        var overrides: [String] = []
        var description: String { "\(agent) on \(environment) \(overrides)" }
    }

    static let exportCases = [
        ExportCase(agent: "ppo", environment: "CartPole-v1", steps: 2048),
        ExportCase(agent: "ppo", environment: "Pendulum-v1", steps: 2048),   // continuous, gSDE (the zoo's settings)
        ExportCase(agent: "a2c", environment: "CartPole-v1", steps: 1000, overrides: ["policy_kwargs.activation_fn=relu"]),
        ExportCase(agent: "dqn", environment: "CartPole-v1", steps: 2000, overrides: ["learning_starts=500"]),
    ]

    /// The last line of a Python run's output, as JSON.
    static func json(_ out: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data((out.split(separator: "\n").last.map(String.init) ?? "").utf8))
    }

    /// Every export case loads in SB3 (one Python process for all, as importing torch takes seconds).
    @Test(.enabled(if: python != nil, Comment(rawValue: sb3Missing)))
    func exportedModelsLoadInSB3AndActTheSame() throws {
        let python = try #require(Self.python)
        let dir = temporaryDirectory()
        var jobs: [[String]] = [], expected: [(ExportCase, SavedAgent.Loaded, [[Double]])] = []
        for (i, c) in Self.exportCases.enumerated() {
            let checkpoint = try Self.train(c.agent, c.environment, steps: c.steps, overrides: c.overrides)
            let zip = dir.appendingPathComponent("model\(i).zip")
            let export = try CLI.run(["export", checkpoint.path, "--sb3", zip.path])
            try #require(export.status == 0, "\(c): \(export.err)")
            let observations = try Self.observations(c.environment)
            let saved = try SavedAgent.load(checkpoint)
            expected.append((c, saved, Self.rows(saved.agent.act(batch: observations.flatMap { $0 }, count: observations.count, deterministic: true))))
            let file = dir.appendingPathComponent("observations\(i).json")
            try JSONSerialization.data(withJSONObject: observations.map { $0.map(Double.init) }).write(to: file)
            jobs.append([c.agent, zip.path, file.path])
        }
        let script = """
            import json, sys, numpy as np
            from stable_baselines3 import PPO, A2C, DQN
            results = []
            for algorithm, path, observations in json.loads(sys.argv[1]):
                model = {"ppo": PPO, "a2c": A2C, "dqn": DQN}[algorithm].load(path, device="cpu")
                obs = np.array(json.load(open(observations)), dtype=np.float32)
                actions, _ = model.predict(obs, deterministic=True)
                results.append({"class": type(model).__name__, "gamma": model.gamma, "timesteps": model.num_timesteps,
                                "actions": np.asarray(actions, dtype=float).reshape(len(obs), -1).tolist()})
            print(json.dumps(results))
            """
        let run = try CLI.runTool(python, ["-c", script, String(decoding: try JSONSerialization.data(withJSONObject: jobs), as: UTF8.self)])
        try #require(run.status == 0, "SB3 could not load the exports: \(run.err)")
        let results = try #require(try Self.json(run.out) as? [[String: Any]])
        try #require(results.count == expected.count)
        for ((c, saved, ours), result) in zip(expected, results) {
            #expect(result["class"] as? String == c.agent.uppercased())
            let hp = try JSONSerialization.jsonObject(with: Data(try saved.metadata.value(.hyperparameters).utf8)) as? [String: Any]
            #expect((result["gamma"] as? Double) == (hp?["gamma"] as? Double), "\(c): gamma \(String(describing: result["gamma"]))")
            #expect(result["timesteps"] as? Int == (try saved.metadata.value(.step)))
            Self.expectSame(ours, try #require(result["actions"] as? [[Double]]), "\(c)")
        }
    }

    // MARK: SB3 → rlbench

    struct ImportCase: CustomStringConvertible, Sendable {
        var algorithm, environment: String
        var steps: Int
        var arguments: String
        var description: String { "SB3 \(algorithm) on \(environment)" }
    }

    static let importCases = [
        ImportCase(algorithm: "PPO", environment: "CartPole-v1", steps: 4096, arguments: "n_steps=512, batch_size=64"),
        ImportCase(algorithm: "A2C", environment: "CartPole-v1", steps: 500,
                   arguments: "policy_kwargs=dict(net_arch=[32, 32], activation_fn=th.nn.ReLU)"),
        ImportCase(algorithm: "DQN", environment: "CartPole-v1", steps: 500, arguments: "learning_starts=100, buffer_size=2000"),
        ImportCase(algorithm: "PPO", environment: "Pendulum-v1", steps: 512,
                   arguments: "n_steps=256, batch_size=64, use_sde=True, policy_kwargs=dict(net_arch=dict(pi=[32], vf=[16]))"),
    ]

    /// Models SB3 trains (a few hundred to a few thousand steps; one Python process) import and act as in SB3;
    /// `eval` runs them, and the SB3-trained CartPole agent plays in the viewer (a private Xvfb display) the same
    /// episode `eval` scores.
    @Test(.enabled(if: python != nil, Comment(rawValue: sb3Missing)))
    func sb3TrainedModelsImportAndActTheSame() throws {
        let python = try #require(Self.python)
        let dir = temporaryDirectory()
        var training = "import json, sys, numpy as np, torch as th\nth.set_num_threads(1)\n"
            + "from stable_baselines3 import PPO, A2C, DQN\nresults = []\n"
        for (i, c) in Self.importCases.enumerated() {
            let observations = try Self.observations(c.environment)
            try JSONSerialization.data(withJSONObject: observations.map { $0.map(Double.init) })
                .write(to: dir.appendingPathComponent("observations\(i).json"))
            training += """
                model = \(c.algorithm)("MlpPolicy", "\(c.environment)", seed=0, device="cpu", \(c.arguments))
                model.learn(\(c.steps)).save("\(dir.path)/sb3-\(i).zip")
                obs = np.array(json.load(open("\(dir.path)/observations\(i).json")), dtype=np.float32)
                results.append(np.asarray(model.predict(obs, deterministic=True)[0], dtype=float).reshape(len(obs), -1).tolist())

                """
        }
        training += "print(json.dumps(results))\n"
        let run = try CLI.runTool(python, ["-c", training])
        try #require(run.status == 0, "SB3 failed: \(run.err)")
        let results = try #require(try Self.json(run.out) as? [[[Double]]])
        try #require(results.count == Self.importCases.count)

        for (i, c) in Self.importCases.enumerated() {
            let out = dir.appendingPathComponent("imported\(i)")
            let imported = try CLI.run(["import", dir.appendingPathComponent("sb3-\(i).zip").path, "--out", out.path])
            try #require(imported.status == 0, "\(c): \(imported.err)")
            #expect(imported.out.contains("(\(c.algorithm.lowercased()) on \(c.environment))"), "\(imported.out)")
            let checkpoint = out.appendingPathComponent("final.safetensors")
            let observations = try Self.observations(c.environment)
            let saved = try SavedAgent.load(checkpoint)
            Self.expectSame(Self.rows(saved.agent.act(batch: observations.flatMap { $0 }, count: observations.count, deterministic: true)),
                            results[i], "\(c)")
            let eval = try CLI.run(["eval", checkpoint.path, "--episodes", "1", "--seed", "3"])
            #expect(eval.status == 0, "\(c): eval failed: \(eval.err)")
            guard i == 0 else { continue }
            let server = try XvfbServer.start()
            defer { server.stop() }
            let play = try CLI.run(["play", checkpoint.path, "--episodes", "1", "--fps", "1000", "--seed", "3"],
                                   environment: ["DISPLAY": server.display])
            #expect(play.status == 0, "play failed: \(play.err)")
            // The deterministic policy on the same seed: the same episode in the window as in eval.
            let played = try #require(play.out.firstMatch(of: /episode 1: return (-?[0-9.]+)/).map { String($0.1) }, "\(play.out)")
            #expect(eval.out.contains("mean return \(played)"), "play: \(play.out)\neval: \(eval.out)")
        }
    }

    // MARK: Without Python

    /// rlbench → zip → rlbench gives back every parameter bit for bit, and the same actions.
    @Test(arguments: [("ppo", "Pendulum-v1", 1024), ("a2c", "CartPole-v1", 500), ("dqn", "CartPole-v1", 600)])
    func exportThenImportGivesTheSameAgent(_ agent: String, _ environment: String, _ steps: Int) throws {
        let checkpoint = try Self.train(agent, environment, steps: steps)
        let dir = temporaryDirectory()
        let zip = dir.appendingPathComponent("m.zip")
        try StableBaselines3.export(checkpoint: checkpoint, to: zip)
        let imported = try StableBaselines3.importModel(zip, environment: nil, into: dir.appendingPathComponent("back"))
        #expect(imported.agent == agent && imported.environment == environment)
        let original = try SafeTensors.read(from: checkpoint).tensors, back = try SafeTensors.read(from: imported.checkpoint).tensors
        for (name, tensor) in original where !name.hasPrefix("optimizer.") {
            #expect(back.first { $0.name == name }?.tensor.data == tensor.data, "\(agent): \(name) changed")
        }
        let observations = try Self.observations(environment, count: 200)
        let a = try SavedAgent.load(checkpoint).agent, b = try SavedAgent.load(imported.checkpoint).agent
        #expect(Self.rows(a.act(batch: observations.flatMap { $0 }, count: 200, deterministic: true))
                == Self.rows(b.act(batch: observations.flatMap { $0 }, count: 200, deterministic: true)))
    }

    @Test func exportRefusesWhatSB3CannotHold() throws {
        let dir = temporaryDirectory()
        let reinforce = try Self.train("reinforce", "CartPole-v1", steps: 300)
        #expect(throws: StableBaselines3.Failure.self) { try StableBaselines3.export(checkpoint: reinforce, to: dir.appendingPathComponent("r.zip")) }
        let normalized = try Self.train("a2c", "Acrobot-v1", steps: 100)
        do {
            try StableBaselines3.export(checkpoint: normalized, to: dir.appendingPathComponent("n.zip"))
            Issue.record("a normalized checkpoint was exported")
        } catch {
            #expect("\(error)".contains("VecNormalize"), "\(error)")
        }
        let dueling = try Self.train("dqn", "CartPole-v1", steps: 100, overrides: ["dueling=true"])
        #expect(throws: StableBaselines3.Failure.self) { try StableBaselines3.export(checkpoint: dueling, to: dir.appendingPathComponent("d.zip")) }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("n.zip").path))
    }

    /// Pickles that name anything outside the allow-lists are refused by name, never run.
    @Test func forbiddenGlobalsAreRefusedByName() throws {
        let osSystem = Data([0x80, 0x02] + Array("cos\nsystem\nX\u{02}\u{00}\u{00}\u{00}lsq\u{00}\u{85}R.".utf8))
        #expect(throws: PickleError.self) { try PickleReader(allowedGlobals: TorchSave.allowedGlobals).read(osSystem, source: "p") }
        do { _ = try PickleReader(allowedGlobals: TorchSave.allowedGlobals).read(osSystem, source: "p") } catch {
            #expect("\(error)".contains("os.system"), "\(error)")
        }
        // STACK_GLOBAL builtins.eval inside an SB3 zip's observation space.
        let evalPickle = PickleWriter.encode(.object(PickleObject(callable: .global(module: "builtins", name: "eval"),
                                                                  arguments: [.string("print('ran')")])), protocol: 4)
        let data = try JSONSerialization.data(withJSONObject: [
            "observation_space": [":type:": "x", ":serialized:": evalPickle.base64EncodedString()],
            "action_space": [":type:": "x", ":serialized:": evalPickle.base64EncodedString()]])
        var zip = ZipWriter()
        zip.add("data", data)
        zip.add("policy.pth", TorchSave.encode(stateDict: [(name: "action_net.weight", tensor: Tensor([1, 2], shape: [1, 2]))]))
        let file = temporaryDirectory().appendingPathComponent("evil.zip")
        try zip.finish().write(to: file)
        let r = try CLI.run(["import", file.path, "--out", temporaryDirectory().appendingPathComponent("x").path])
        #expect(r.status != 0 && r.err.contains("builtins.eval") && !r.out.contains("ran"), "\(r.err)")
        // Not a zip at all.
        let text = temporaryDirectory().appendingPathComponent("model.zip")
        try Data("not a zip".utf8).write(to: text)
        let notZip = try CLI.run(["import", text.path, "--out", temporaryDirectory().appendingPathComponent("y").path])
        #expect(notZip.status != 0 && notZip.err.contains("not a zip archive"), "\(notZip.err)")
    }

    /// Thousands of damaged variants of a real export (bit flips, truncations, extreme length fields, …): the zip
    /// reader, the torch.save reader, the pickle reader and the whole import each load or refuse, never trap or hang.
    @Test func damagedZipsAndPicklesAreRefusedCleanly() throws {
        let checkpoint = try Self.train("ppo", "CartPole-v1", steps: 64, overrides: ["n_steps=16", "n_envs=1", "batch_size=16"])
        let dir = temporaryDirectory()
        let zipFile = dir.appendingPathComponent("m.zip")
        try StableBaselines3.export(checkpoint: checkpoint, to: zipFile)
        let zipBytes = try Data(contentsOf: zipFile)
        let archive = try ZipReader(zipBytes, source: "m.zip")
        let policy = try #require(try archive.read("policy.pth"))
        let pickle = try #require(try ZipReader(policy, source: "policy.pth").read("archive/data.pkl"))
        let dataBytes = try #require(try archive.read("data"))
        let data = try #require(try JSONSerialization.jsonObject(with: dataBytes) as? [String: Any])
        let text = try #require((data["observation_space"] as? [String: Any])?[":serialized:"] as? String)
        let space = try #require(Data(base64Encoded: text))

        var fuzz = Fuzz(seed: 34)
        let n = Fuzz.iterations(default: 2000)
        var refused = 0
        for variant in fuzz.variants(of: [[UInt8](policy)], count: n) {
            do { _ = try TorchSave.readStateDict(Data(variant), source: "v") } catch { refused += 1 }
        }
        for variant in fuzz.variants(of: [[UInt8](pickle), [UInt8](space)], count: n) {
            do { _ = try PickleReader(allowedGlobals: TorchSave.allowedGlobals.union(StableBaselines3.readableGlobals)).read(Data(variant), source: "v") }
            catch { refused += 1 }
        }
        for (i, variant) in fuzz.variants(of: [[UInt8](zipBytes)], count: n / 20).enumerated() {
            let file = dir.appendingPathComponent("v\(i).zip")
            try Data(variant).write(to: file)
            do { _ = try StableBaselines3.importModel(file, environment: nil, into: dir.appendingPathComponent("v\(i)")) } catch { refused += 1 }
        }
        #expect(refused > 0)
        // A pickle nested deeper than the reader allows.
        let deep = Data([0x80, 0x02] + [UInt8](repeating: 0x28, count: 100) + [0x4E, 0x2E])
        #expect(throws: PickleError.self) { try PickleReader(allowedGlobals: []).read(deep, source: "deep") }
    }
}
