import Foundation
import Support
import Testing
import TestSupport

@Suite struct CLITests {
    @Test func badInputIsAClearErrorAndNonZeroExit() throws {
        let cases: [([String], String)] = [
            (["run", "sac"], "known agents: ppo"),
            (["run", "alexnet", "--data", "mnist"], "classifiers: mlp, lenet, resnet"),
            (["run", "lenet", "--data", "digits", "--set", "loss=l2"], "'l2' is not one of cross_entropy, hinge, focal"),
            (["run", "lenet", "--data", "digits", "--view"], "--view is not for a classifier"),
            (["run", "ppo", "--env", "Nope-v0"], "known ids: CartPole-v1"),
            (["run", "dqn", "--env", "Pendulum-v1"], "dqn supports discrete"),
            (["run", "ppo", "--set", "lerning_rate=1"], "unknown key 'lerning_rate' in --set"),
            (["run", "ppo", "--config", "/nonexistent/my.yml"], "cannot read config /nonexistent/my.yml"),
            (["eval", "/nonexistent.safetensors"], "cannot read /nonexistent.safetensors"),
            (["inspect", "/nonexistent.safetensors"], "cannot read"),
            (["env", "record", "Nope-v0"], "unknown environment id"),
            (["run", "ppo", "--set", "learning_rate=-1"], "'learning_rate' in --set: must be > 0"),
            (["run", "ppo", "--set", "clip_range=lin_-0.2"], "'clip_range' in --set: must start above 0"),
            (["run", "a2c", "--set", "max_grad_norm=0"], "'max_grad_norm' in --set: must be > 0"),
            (["run", "dqn", "--set", "policy_kwargs={net_arch: [100000, 100000]}"], "is too large"),
            (["run", "ppo", "--set", "use_sde=true"], "needs continuous (Box) actions"),
            (["run", "ppo", "--steps", "-5"], "--steps must be at least 1"),
            (["run", "ppo", "--seed", "-1"], "The value '-1' is invalid for '--seed <seed>': a seed is a whole number from 0"),
            (["eval", "/nonexistent.safetensors", "--seed", "1e3"], "The value '1e3' is invalid for '--seed <seed>'"),
            (["eval", "/nonexistent.safetensors", "--episodes", "-1"], "--episodes must be at least 1, got -1"),
            (["run", "ppo", "--set", "policy_kwargs.dueling=true"], "'dueling' is not an entry this agent's networks use"),
            (["bench", "agents", "--env", "Nope-v0"], "unknown environment id 'Nope-v0'; known ids: CartPole-v1"),
            (["bench", "agents", "--agent", "ppo", "--env", "FrozenLake-v1", "--sb3"], "no tuned config for ppo on FrozenLake-v1"),
            (["run", "ppo", "--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
            (["run", "ppo", "--eval-episodes=-1"], "--eval-episodes must be at least 0, got -1"),
            (["run", "ppo", "--eval-episodes", "99999999999999"], "--eval-episodes must be at most 1000000, got 99999999999999"),
            (["eval", "/nonexistent.safetensors", "--episodes", "99999999999999"], "--episodes must be at most 1000000"),
            (["run", "ppo", "--steps", "1.5"], "--steps must be a whole number, got 1.5"),
            (["run", "ppo", "--set", "n_steps=1e9", "--steps", "2000"], "'n_steps' in --set: must be at most 16777216, got 1000000000"),
            (["run", "ppo", "--set", "n_envs=100000"], "'n_envs' in --set: must be at most 1024, got 100000"),
            (["run", "vae", "--epochs", "1e9"], "--epochs must be at most 1048576, got 1000000000"),
            (["run", "ppo", "--env-option", "g=1", "--env-option", "g=2"], "--env-option g is given twice"),
            (["eval", "/tmp"], "cannot read /tmp: it is a directory, not a file"),
            (["eval", "/etc/passwd"], "cannot read /etc/passwd: not a valid safetensors file: header size"),
            (["inspect", "/etc/passwd"], "cannot read /etc/passwd: not a valid safetensors file: header size"),
            (["run", "ppo", "--out", "/etc/hostname/run"], "/etc/hostname is a file, not a folder"),
        ]
        for (arguments, message) in cases {
            let r = try CLI.run(arguments, in: CLI.temporaryDirectory())
            #expect(r.status != 0, "\(arguments) must fail")
            #expect(r.err.contains(message), "\(arguments): stderr '\(r.err)' should contain '\(message)'")
        }
    }

    /// A size refused by its limit leaves no run folder behind (nothing is written before the checks), and counts
    /// may be written as `1e3` or `1_000`.
    @Test func limitsAreCheckedBeforeAnythingIsWrittenAndCountsTakeOneSyntax() throws {
        let dir = CLI.temporaryDirectory()
        for flags in [["--set", "n_steps=1e9"], ["--eval-episodes", "1e14"], ["--set", "n_steps=1000000", "--set", "n_envs=1"]] {
            let refused = try CLI.run(["run", "ppo", "--steps", "2000", "--plain", "--out", "r"] + flags, in: dir)
            #expect(refused.status != 0, "\(flags)")
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("r").path), "\(flags) wrote r/")
        }
        let run = try CLI.run(["run", "ppo", "--steps", "1e3", "--eval-episodes", "1_0", "--plain", "--out", "r"], in: dir)
        #expect(run.status == 0, "\(run.err)")
        let done = run.out.firstMatch(of: /done: (\d+) steps/).flatMap { Int($0.1) } ?? 0
        #expect(done >= 1000 && done < 1000 + 256 && run.out.contains("over 10 episodes"), "\(run.out)")
    }

    @Test func trainEvaluateInspect() throws {
        let dir = CLI.temporaryDirectory()
        let run = try CLI.run(["run", "a2c", "--steps", "4000", "--eval-episodes", "3", "--plain", "--out", "r"], in: dir)
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("eval.json: mean"))
        let checkpoint = dir.appendingPathComponent("r/final.safetensors").path
        let eval = try CLI.run(["eval", checkpoint, "--episodes", "3", "--json"])
        #expect(eval.status == 0)
        let summary = try JSONSerialization.jsonObject(with: Data(eval.out.utf8)) as? [String: Any]
        #expect(summary?["episodes"] as? Int == 3)
        let inspect = try CLI.run(["inspect", checkpoint])
        #expect(inspect.status == 0)
        #expect(inspect.out.contains("pi.0.weight") && inspect.out.contains("\"type\" : \"linear\""))
        let list = try CLI.run(["list", "agents"])
        #expect(list.out.contains("ppo") && list.out.contains("dqn") && list.out.contains("qlearning"))
        // One row a key, from the agent's Config: the key, its default (a mapping whole) and its help.
        #expect(list.out.contains(/\n  clip_range +0\.2 +ε of the clipped surrogate objective/))
        #expect(list.out.contains(/\n  policy_kwargs +\{activation_fn: relu, net_arch: \[64, 64\]\} the Q-network/))
    }

    /// `env list` states Gymnasium's spaces, time limits and reward thresholds.
    /// `rlbench --help` names each subcommand once.
    @Test func helpListsEachSubcommandOnce() throws {
        let help = try CLI.run(["--help"])
        #expect(help.status == 0)
        let names = help.out.components(separatedBy: "SUBCOMMANDS:").last!.split(separator: "\n")
            .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }.compactMap { $0.split(separator: " ").first.map(String.init) }
        #expect(names.contains("run") && names.contains("export") && names.contains("bench"), "\(names)")
        #expect(Set(names).count == names.count, "listed twice: \(names)")
    }

    @Test func envListShowsGymnasiumsSpecs() throws {
        let r = try CLI.run(["env", "list"])
        #expect(r.status == 0, "\(r.err)")
        let rows = Dictionary(r.out.split(separator: "\n").dropFirst(2).map { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return (String(fields[0]), fields.suffix(3).map(String.init))
        }, uniquingKeysWith: { a, _ in a })
        #expect(rows["CartPole-v1"] == ["Discrete(2)", "500", "475"])
        #expect(rows["MountainCar-v0"] == ["Discrete(3)", "200", "-110"])
        #expect(rows["MountainCarContinuous-v0"] == ["[1])", "999", "90"])
        #expect(rows["Acrobot-v1"] == ["Discrete(3)", "500", "-100"])
        #expect(rows["Pendulum-v1"] == ["[1])", "200", "none"])
        #expect(rows["FrozenLake-v1"] == ["Discrete(4)", "100", "0.7"])
        #expect(rows["FrozenLake8x8-v1"] == ["Discrete(4)", "200", "0.85"])
        #expect(rows["CliffWalking-v1"] == ["Discrete(4)", "none", "none"])
        #expect(r.out.contains(/Pendulum-v1 +Box\(\[-1.0, -1.0, -8.0\], \[1.0, 1.0, 8.0\], \[3\]\) +Box\(-2.0, 2.0, \[1\]\)/))
    }

    /// `classify` trains the digits classifier past 97% test accuracy; an unknown data set is named.
    @Test func classifyLearnsTheDigits() throws {
        let dir = CLI.temporaryDirectory()
        let r = try CLI.run(["classify", "--out", "net.safetensors"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        let accuracy = try #require(r.out.firstMatch(of: /final test accuracy ([0-9.]+)%/).flatMap { Double($0.1) }, "\(r.out)")
        #expect(accuracy >= 97)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("net.safetensors").path))
        let bad = try CLI.run(["classify", "--dataset", "mnist"])
        #expect(bad.status != 0 && bad.err.contains("unknown dataset 'mnist'; known: digits"), "\(bad.err)")
    }

    @Test func envReplayPassesRecordingsAndFailsOnMismatch() throws {
        let fixtures = CLI.root.deletingLastPathComponent().appendingPathComponent("shared/fixtures/gymnasium")
        let files = try FileManager.default.contentsOfDirectory(atPath: fixtures.path).filter { $0.hasSuffix(".jsonl") }
            .map { fixtures.appendingPathComponent($0).path }
        let ok = try CLI.run(["env", "replay"] + files)
        #expect(ok.status == 0, "\(ok.out)")
        #expect(ok.out.components(separatedBy: "— ok").count - 1 == files.count)
        // Corrupt one recorded reward: the replay must name the step and fail.
        let original = try String(contentsOfFile: fixtures.appendingPathComponent("CartPole-v1.random_until_termination.jsonl").path, encoding: .utf8)
        var lines = original.split(separator: "\n").map(String.init)
        lines[3] = lines[3].replacingOccurrences(of: "\"reward\": 1.0", with: "\"reward\": 2.0")
        let bad = CLI.temporaryDirectory().appendingPathComponent("CartPole-v1.bad.jsonl")
        try lines.joined(separator: "\n").write(to: bad, atomically: true, encoding: .utf8)
        let mismatch = try CLI.run(["env", "replay", bad.path])
        #expect(mismatch.status != 0)
        #expect(mismatch.out.contains("step 3: reward"), "\(mismatch.out)")
        // So must a recorded initial observation that is not the one of the initial state.
        var badStart = lines
        badStart[0] = badStart[0].replacingOccurrences(of: "\"initial_observation\": [0.009999999776482582, -0.019999999552965164",
                                                       with: "\"initial_observation\": [0.009999999776482582, -0.02999999955296516")
        let startFile = CLI.temporaryDirectory().appendingPathComponent("CartPole-v1.badstart.jsonl")
        try badStart.joined(separator: "\n").write(to: startFile, atomically: true, encoding: .utf8)
        let start = try CLI.run(["env", "replay", startFile.path])
        #expect(start.status != 0 && start.out.contains("the initial observation[1] is -0.02"), "\(start.out)")
        // A recorded state the environment cannot take is a clear error, not a crash.
        for (from, to, message) in [("\"initial_state\": [0.01, -0.02, 0.03, 0.04]", "\"initial_state\": [0.01, -0.02, 0.03]",
                                     "invalid state: CartPole state has 4 values, got 3"),
                                    ("\"initial_state\": [0.01, -0.02, 0.03, 0.04]", "\"env\": \"FrozenLake-v1\", \"initial_state\": [2.5]",
                                     "a grid state is one whole number")] {
            var broken = lines
            broken[0] = broken[0].replacingOccurrences(of: from, with: to)
            if to.hasPrefix("\"env\"") { broken[0] = broken[0].replacingOccurrences(of: "{\"env\": \"CartPole-v1\", ", with: "{") }
            let file = CLI.temporaryDirectory().appendingPathComponent("broken.jsonl")
            try broken.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
            let r = try CLI.run(["env", "replay", file.path])
            #expect(r.status == 1, "status \(r.status): an error exit, not a crash")
            #expect((r.out + r.err).contains(message), "\(r.out) \(r.err)")
        }
    }

    @Test func envRecordWritesFilesThatPillowOpens() throws {
        let dir = CLI.temporaryDirectory()
        for (env, file) in [("CartPole-v1", "cart.gif"), ("MountainCar-v0", "car.gif"), ("CliffWalking-v1", "cliff.png")] {
            let r = try CLI.run(["env", "record", env, "--out", file, "--max-steps", "40"], in: dir)
            #expect(r.status == 0, "\(r.err)")
        }
        let python = try #require(CLI.executable(named: "python3"), "python3 is needed to decode with Pillow")
        let check = try CLI.runTool(python, ["-c", """
        from PIL import Image
        for name, size in [('cart.gif', (600, 400)), ('car.gif', (600, 400)), ('cliff.png', (720, 240))]:
            im = Image.open('\(dir.path)/' + name)
            assert im.size == size, (name, im.size)
            frames = getattr(im, 'n_frames', 1)
            if name.endswith('.gif'): assert frames > 1, (name, frames)
            im.seek(frames - 1); im.convert('RGB').load()
        print('ok')
        """])
        #expect(check.out.contains("ok"),
                "Pillow could not read the files (\(check.err)); if PIL is missing run scripts/setup --for-tests")
    }
}

@Suite struct RunFolderTests {
    /// A greedy policy that walks in circles on CliffWalking-v1 (no time limit) cannot hang the final evaluation: its
    /// episodes stop at the evaluation's step limit, and the run says so.
    @Test func evaluationWithoutATimeLimitEnds() throws {
        let dir = CLI.temporaryDirectory()
        let r = try CLI.run(["run", "qlearning", "--env", "CliffWalking-v1", "--steps", "50", "--eval-episodes", "3",
                             "--plain", "--out", "r"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("3 of 3 evaluation episodes were stopped at 1000 steps"), "\(r.err)")
        // Fifty random steps finish no episode on CliffWalking (the cliff sends the walker back to the start): the
        // run still writes its (empty) learning curve.
        #expect(r.out.contains("done: 50 steps, 0 episodes"), "\(r.out)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r/learning_curve.png").path))
        let eval = try CLI.run(["eval", dir.appendingPathComponent("r/final.safetensors").path, "--episodes", "2"])
        #expect(eval.status == 0 && eval.err.contains("2 of 2 episodes were stopped at 1000 steps"), "\(eval.err)")
    }

    /// Resuming from an older checkpoint drops the metrics rows after it and numbers the episodes on; config.yml
    /// records the run's --steps, so a resume without --steps trains to the run's own length.
    @Test func resumeFromAnOlderCheckpointKeepsMetricsInOrder() throws {
        let dir = CLI.temporaryDirectory()
        let first = try CLI.run(["run", "dqn", "--steps", "3000", "--checkpoint-every", "1000", "--eval-episodes", "0",
                                 "--plain", "--out", "r"], in: dir)
        #expect(first.status == 0, "\(first.err)")
        let run = dir.appendingPathComponent("r")
        let config = try String(contentsOf: run.appendingPathComponent("config.yml"), encoding: .utf8)
        #expect(config.contains("n_timesteps: 3000"), "\(config)")
        let metrics = run.appendingPathComponent("metrics.csv")
        let original = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n")
        let last = run.appendingPathComponent("last.safetensors")
        try FileManager.default.removeItem(at: last)
        try FileManager.default.copyItem(at: run.appendingPathComponent("checkpoints/step_000001000.safetensors"), to: last)
        let resumed = try CLI.run(["run", "--resume", "r", "--eval-episodes", "0", "--plain"], in: dir)
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.out.contains("done: 3000 steps"), "\(resumed.out)")
        let lines = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n")
        let rows = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let steps = rows.map { Int($0[0])! }, episodes = rows.map { Int($0[1])! }, wall = rows.map { Double($0[4])! }
        // The rows up to the checkpoint's step are the first run's, unchanged; the resumed run's rows follow.
        let kept = original.dropFirst().prefix { Int($0.split(separator: ",")[0])! <= 1000 }.count
        #expect(kept > 0 && kept < rows.count, "kept \(kept) of \(rows.count) rows")
        #expect(Array(lines.prefix(kept + 1)) == Array(original.prefix(kept + 1)))
        #expect(steps[kept] > 1000 && steps.last! <= 3000)
        #expect(steps == steps.sorted(), "metrics.csv steps go back: \(steps)")
        #expect(episodes == Array(1...rows.count), "episodes are not numbered 1...\(rows.count): \(episodes)")
        #expect(wall == wall.sorted(), "wall times go back: \(wall)")
    }

    /// `rlbench eval` without --seed plays the episodes of the run's own eval.json (seeds S + 1,000,000 + i).
    @Test func evalReproducesTheRunsEvalJSON() throws {
        let dir = CLI.temporaryDirectory()
        let r = try CLI.run(["run", "qlearning", "--env", "FrozenLake-v1", "--seed", "3", "--steps", "20000",
                             "--eval-episodes", "20", "--plain", "--out", "r"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        let run = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("r/eval.json"))) as? [String: Double]
        let eval = try CLI.run(["eval", dir.appendingPathComponent("r/final.safetensors").path, "--episodes", "20", "--json"])
        let again = try JSONSerialization.jsonObject(with: Data(eval.out.utf8)) as? [String: Double]
        #expect(run != nil && run == again, "eval.json \(String(describing: run)), rlbench eval \(String(describing: again))")
    }

    /// `eval --seed` plays other episodes than the run's own evaluation, the same ones each time.
    @Test func evalWithASeedIsReproducible() throws {
        let dir = CLI.temporaryDirectory()
        let r = try CLI.run(["run", "qlearning", "--env", "FrozenLake-v1", "--seed", "3", "--steps", "20000",
                             "--eval-episodes", "50", "--plain", "--out", "r"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        let checkpoint = dir.appendingPathComponent("r/final.safetensors").path
        func summary(_ seed: String) throws -> [String: Double]? {
            let eval = try CLI.run(["eval", checkpoint, "--episodes", "50", "--seed", seed, "--json"])
            return try JSONSerialization.jsonObject(with: Data(eval.out.utf8)) as? [String: Double]
        }
        let own = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("r/eval.json"))) as? [String: Double]
        let five = try summary("5"), again = try summary("5"), six = try summary("6")
        #expect(five != nil && five == again)
        // On slippery FrozenLake 50 episodes' success rates differ between episode seeds almost surely.
        #expect(five != own && five != six, "\(String(describing: five)) \(String(describing: own)) \(String(describing: six))")
    }

    /// A checkpoint trained on a map file carries the map's text: it evaluates as before after the file is gone.
    @Test func checkpointsCarryTheirMapFile() throws {
        let dir = CLI.temporaryDirectory()
        let map = dir.appendingPathComponent("corridor.txt")
        try "step_reward: -0.1\n#######\n#S...G#\n#######\n".write(to: map, atomically: true, encoding: .utf8)
        let r = try CLI.run(["run", "qlearning", "--env", "GridWorld-v0", "--env-option", "map=\(map.path)", "--steps", "3000",
                             "--eval-episodes", "5", "--plain", "--out", "r"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        try FileManager.default.removeItem(at: map)
        let eval = try CLI.run(["eval", dir.appendingPathComponent("r/final.safetensors").path, "--episodes", "5", "--json"])
        #expect(eval.status == 0, "\(eval.err)")
        let run = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("r/eval.json"))) as? [String: Double]
        let again = try JSONSerialization.jsonObject(with: Data(eval.out.utf8)) as? [String: Double]
        #expect(run != nil && run == again, "eval.json \(String(describing: run)), after the map file is gone \(String(describing: again))")
    }

    /// A map file over the size limit is refused before the run starts, by an error that names the map and the limit.
    @Test func anOversizeMapIsNamed() throws {
        let dir = CLI.temporaryDirectory()
        let map = dir.appendingPathComponent("huge.txt")
        try Data(repeating: UInt8(ascii: "."), count: Limits.mapBytes + 1).write(to: map)
        let r = try CLI.run(["run", "qlearning", "--env", "GridWorld-v0", "--env-option", "map=\(map.path)", "--plain",
                             "--out", "r"], in: dir)
        #expect(r.status != 0)
        #expect(r.err.contains("the map \(map.path) is unusable") && r.err.contains("more than the limit of \(Limits.mapBytes)"),
                "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("r").path), "nothing is written")
    }

    /// A diverging run says which checkpoint it keeps, or that it has none yet; a folder without a usable checkpoint
    /// is started over (saying so), a folder holding a run is not reused.
    @Test func divergenceNamesTheKeptCheckpointAndRunsAreNotOverwritten() throws {
        let dir = CLI.temporaryDirectory()
        let r = try CLI.run(["run", "dqn", "--steps", "8000", "--set", "learning_rate=1e30", "--plain", "--out", "r"], in: dir)
        #expect(r.status == 1)
        #expect(r.err.contains("NaN or infinite at step") && r.err.contains("no checkpoint was saved"), "\(r.err)")
        let again = try CLI.run(["run", "ppo", "--steps", "500", "--eval-episodes", "0", "--plain", "--out", "r"], in: dir)
        #expect(again.status == 0 && again.err.contains("holds no usable checkpoint of its earlier run: starting over"),
                "\(again.err)")
        let third = try CLI.run(["run", "ppo", "--steps", "500", "--plain", "--out", "r"], in: dir)
        #expect(third.status != 0 && third.err.contains("already holds a run"), "\(third.err)")
        // Diverging after checkpoints: the message names the kept checkpoint, which loads and plays.
        let later = try CLI.run(["run", "dqn", "--steps", "8000", "--checkpoint-every", "200", "--set", "learning_rate=1e30",
                                 "--plain", "--out", "later"], in: dir)
        #expect(later.status == 1)
        let kept = dir.appendingPathComponent("later/last.safetensors").path
        let match = later.err.firstMatch(of: /the last good checkpoint is (.+) \(step (\d+)\)/)
        #expect(match.map { String($0.1) } == kept, "\(later.err)")
        let step = try #require(match.flatMap { Int($0.2) })
        #expect(step >= 1000 && step < 8000)
        let inspect = try CLI.run(["inspect", kept])
        #expect(inspect.status == 0 && inspect.out.contains("  step: \(step)\n"), "\(inspect.out)")
        let eval = try CLI.run(["eval", kept, "--episodes", "2"])
        #expect(eval.status == 0, "\(eval.err)")
    }

    /// Results do not depend on the second core (RLBENCH_CORES=1 runs everything on one), and the config.yml a run
    /// writes, passed back with --config, trains the same run.
    @Test(arguments: ["ppo", "a2c", "dqn"])
    func oneCoreTwoCoresAndTheWrittenConfigGiveTheSameRun(agent: String) throws {
        let dir = CLI.temporaryDirectory()
        let common = ["run", agent, "--steps", "3000", "--seed", "5", "--eval-episodes", "3", "--plain"]
        let two = try CLI.run(common + ["--out", "two"], in: dir)
        let one = try CLI.run(common + ["--out", "one"], in: dir, environment: ["RLBENCH_CORES": "1"])
        let config = try CLI.run(common + ["--config", "two/config.yml", "--out", "config"], in: dir)
        for r in [two, one, config] { #expect(r.status == 0, "\(r.err)") }
        func bytes(_ run: String, _ file: String) throws -> Data { try Data(contentsOf: dir.appendingPathComponent("\(run)/\(file)")) }
        #expect(try bytes("one", "final.safetensors") == bytes("two", "final.safetensors"), "one core and two differ")
        #expect(try bytes("config", "final.safetensors") == bytes("two", "final.safetensors"), "--config two/config.yml differs")
        #expect(try bytes("one", "eval.json") == bytes("two", "eval.json"))
    }
}

@Suite struct InterruptTests {
    /// Ctrl-C (SIGINT) saves a checkpoint, says how to resume, and exits with code 130; --resume continues.
    @Test func ctrlCSavesACheckpointAndResumes() throws {
        let dir = CLI.temporaryDirectory()
        let running = try CLI.start(["run", "ppo", "--steps", "5000000", "--plain", "--out", "r", "--eval-episodes", "0"],
                                    in: dir)
        // Wait until training has started (the config is written first), then interrupt.
        let config = dir.appendingPathComponent("r/config.yml")
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: config.path) && Date() < deadline { usleep(50_000) }
        usleep(500_000)
        running.process.interrupt()
        let (status, _, stderr) = running.finish()
        #expect(status == 130, "\(stderr)")
        #expect(stderr.contains("continue with --resume"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r/last.safetensors").path))
        // The run stopped at some step N: --steps N + 3000 continues it for 3000 more, --steps N is too few.
        let stopped = try #require(stderr.firstMatch(of: /stopping at step (\d+)/).flatMap { Int($0.1) }, "\(stderr)")
        let tooFew = try CLI.run(["run", "--resume", "r", "--steps", "\(stopped)", "--plain"], in: dir)
        #expect(tooFew.status != 0 && tooFew.err.contains("give --steps above \(stopped)"), "\(tooFew.err)")
        let resumed = try CLI.run(["run", "--resume", "r", "--steps", "\(stopped + 3000)", "--plain", "--eval-episodes", "0"],
                                  in: dir)
        #expect(resumed.status == 0, "\(resumed.err)")
        let done = try #require(resumed.out.firstMatch(of: /done: (\d+) steps/).flatMap { Int($0.1) }, "\(resumed.out)")
        #expect(done >= stopped + 3000 && done < stopped + 3000 + 256, "PPO's rollouts are 256 steps: \(resumed.out)")
    }

    /// SIGTERM (a scheduler, `kill`) and SIGHUP (a closed terminal) stop a run as Ctrl-C does, for agents, classifiers
    /// and generative models: a checkpoint once the first periodic one exists, exit 128 + the signal, and --resume
    /// continues.
    @Test(arguments: [(["ppo", "--steps", "5000000", "--checkpoint-every", "2000", "--eval-episodes", "0"], SIGTERM),
                      (["lenet", "--data", "digits", "--epochs", "1000"], SIGHUP),
                      (["vae", "--data", "digits", "--epochs", "1000"], SIGTERM)])
    func stopSignalsSaveACheckpointAndResume(run: [String], signal: Int32) throws {
        let dir = CLI.temporaryDirectory()
        let running = try CLI.start(["run"] + run + ["--plain", "--out", "r"], in: dir)
        let last = dir.appendingPathComponent("r/last.safetensors")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: last.path) && running.isRunning && Date() < deadline { usleep(20_000) }
        kill(running.process.processIdentifier, signal)
        let (status, _, stderr) = running.finish()
        #expect(status == 128 + signal, "\(run[0]): \(stderr)")
        #expect(stderr.contains("continue with --resume"), "\(stderr)")
        let inspect = try CLI.run(["inspect", last.path])
        #expect(inspect.status == 0, "\(inspect.err)")
        // Resume for a little longer than where it stopped.
        var more: [String]
        if let step = stderr.firstMatch(of: /stopping at step (\d+)/).flatMap({ Int($0.1) }) {
            more = ["--steps", "\(step + 1000)", "--eval-episodes", "0"]
        } else {
            let epoch = try #require(stderr.firstMatch(of: /stopping in epoch (\d+)/).flatMap { Int($0.1) }, "\(stderr)")
            more = ["--epochs", "\(epoch)"]
        }
        let resumed = try CLI.run(["run", "--resume", "r", "--plain"] + more, in: dir)
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.out.contains("done:"), "\(resumed.out)")
    }

    /// `--resume DIR` continues the run as it was started (its agent need not be named); a flag that would change
    /// its agent, environment, seed or hyperparameters is an error naming the run's own, and so is a folder with
    /// nothing to resume.
    @Test func resumeContinuesTheRunAsStarted() throws {
        let dir = CLI.temporaryDirectory()
        let started = try CLI.run(["run", "qlearning", "--env", "FrozenLake-v1", "--seed", "5", "--steps", "2000", "--plain",
                                   "--eval-episodes", "0", "--out", "r"], in: dir)
        #expect(started.status == 0, "\(started.err)")
        let resumed = try CLI.run(["run", "--resume", "r", "--steps", "4000", "--plain", "--eval-episodes", "0"], in: dir)
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.out.contains("done: 4000 steps"), "\(resumed.out)")
        for (flags, named) in [(["dqn"], "own agent (qlearning)"), (["--seed", "6"], "own seed (5)"),
                               (["--env", "CliffWalking-v1"], "own environment (FrozenLake-v1)"),
                               (["--set", "gamma=0.9"], "own hyperparameters"), (["--out", "elsewhere"], "drop --out"),
                               (["--env-option", "is_slippery=false"], "own environment options (none); drop --env-option"),
                               (["--config", "r/config.yml"], "own hyperparameters (r/config.yml); drop --config")] {
            let refused = try CLI.run(["run"] + flags + ["--resume", "r", "--plain"], in: dir)
            #expect(refused.status != 0, "\(flags)")
            #expect(refused.err.contains(named), "\(flags): \(refused.err)")
        }
        let nothing = try CLI.run(["run", "--resume", "missing", "--plain"], in: dir)
        #expect(nothing.status != 0)
        #expect(nothing.err.contains("nothing to resume"), "\(nothing.err)")
    }

    /// `bench agents --env` times the agents on another environment with their tuned defaults for it, and says so in
    /// every record.
    @Test func benchAgentsOnAnotherEnvironment() throws {
        let r = try CLI.run(["bench", "agents", "--agent", "qlearning", "--env", "FrozenLake-v1", "--runs", "2", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let records = r.out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(records.map { $0["name"] as? String } == ["machine", "train", "train", "summary"], "\(r.out)")
        #expect(records.dropFirst().allSatisfy { $0["env"] as? String == "FrozenLake-v1" }, "\(r.out)")
        #expect(records[1]["steps"] as? Int == 300_000, "the tuned FrozenLake budget: \(records[1])")
    }

    /// `bench agents --sb3` against a stand-in `python3` that reports a 120-second Stable-Baselines3 run: the tuned
    /// hyperparameters reach it, its record is printed beside rlbench's, and the summary divides the two medians.
    @Test func benchAgentsComparesWithStableBaselines3() throws {
        let dir = CLI.temporaryDirectory()
        let python = dir.appendingPathComponent("python3")
        // Arguments: -c SCRIPT, then --probe, or agent, environment, seed, the tuned keys as JSON.
        try """
        #!/bin/sh
        [ "$3" = "--probe" ] && exit 0
        printf '%s' "$6" > "\(dir.path)/config.json"
        echo '{"name": "sb3_train", "agent": "'$3'", "env": "'$4'", "seed": '$5', "steps": 500000, "wall_s": 120.0, \
        "steps_per_s": 4166.7, "eval_mean": 500.0, "eval_std": 0.0, "peak_rss_mb": 400.0, "versions": "2.9.2, torch 2.13.0"}'
        """.write(to: python, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python.path)
        let path = dir.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let r = try CLI.run(["bench", "agents", "--agent", "a2c", "--sb3", "--json"], environment: ["PATH": path])
        #expect(r.status == 0, "\(r.err)")
        let records = r.out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(records.map { $0["name"] as? String } == ["machine", "train", "sb3_train", "summary"], "\(r.out)")
        try #require(records.count == 4)
        let wall = try #require(records[1]["wall_s"] as? Double), speedup = try #require(records[3]["speedup"] as? Double)
        #expect(records[1]["eval_mean"] as? Double == 500)
        #expect(abs(speedup - 120 / wall) < 1e-9 * speedup)
        #expect(records[3]["sb3_wall_s_median"] as? Double == 120)
        // On a CPU with AVX2 and FMA the products run on OpenBLAS's vector kernels, even where Debian's OpenBLAS does not
        // know the CPU (it falls back to SSE3 ones, and rlbench restarts itself with OPENBLAS_CORETYPE).
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? []
        if flags.contains("avx2") && flags.contains("fma") && ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil {
            let kernels = records[0]["blas_kernels"] as? String ?? ""
            #expect(["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"].contains(kernels), "\(records[0])")
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(config?["n_envs"] as? Int == 8 && config?["ent_coef"] as? Double == 0, "\(String(describing: config))")

        try "#!/bin/sh\nexit 3\n".write(to: python, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python.path)
        let missing = try CLI.run(["bench", "agents", "--agent", "ppo", "--sb3"], environment: ["PATH": path])
        #expect(missing.status != 0)
        #expect(missing.err.contains("cannot import stable_baselines3"), "\(missing.err)")
        #expect(!missing.out.contains("ppo on CartPole-v1"), "checks SB3 before timing rlbench: \(missing.out)")
    }

    /// `bench layers --torch` without an importable torch (a stand-in `python3` that exits 3, as the peer does): a
    /// clear note on stderr, and the core's rows still come out.
    @Test func benchLayersWithoutTorchStillPrintsTheCoreRows() throws {
        let dir = CLI.temporaryDirectory()
        let python = dir.appendingPathComponent("python3")
        try "#!/bin/sh\nexit 3\n".write(to: python, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python.path)
        let path = dir.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let r = try CLI.run(["bench", "layers", "--json", "--torch", "--model", "lstm", "--no-epoch", "--seconds", "0.05",
                             "--rounds", "1"], environment: ["PATH": path])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("cannot import torch"), "\(r.err)")
        let records = r.out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(records.map { $0["name"] as? String } == ["machine", "gemm_peak_gflops", "layer_step_us"], "\(r.out)")
        #expect(records.last?["backend"] as? String == "core" && records.last?["model"] as? String == "lstm")
        #expect((records.last?["value"] as? Double ?? 0) > 0)
    }
}
