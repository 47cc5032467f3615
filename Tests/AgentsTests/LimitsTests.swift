import Agents
import Environments
import Foundation
import Support
import TestSupport
import Testing
import Training

/// Bounded inputs: sizes that scale a run's memory or time are refused where the configs are decoded, naming the
/// key, its value and the limit; counts are read in one syntax; the YAML config reader refuses alias bombs and is
/// fuzzed.
@Suite struct LimitsTests {
    static let ppoDefaults = PPOAgent.descriptor.defaults

    /// The error of decoding PPO's config (and building the agent) with `overrides`, or nil when it builds.
    func ppoError(_ overrides: [String], agent: String = "ppo") throws -> String? {
        let type = try AgentCatalog.agent(named: agent)
        var hp = HyperParameters(defaults: type.descriptor.defaults)
        for o in overrides { try hp.apply(override: o) }
        do {
            _ = try type.init(environment: EnvironmentFactory(id: "CartPole-v1"), hyperParameters: hp, seed: 0)
            return nil
        } catch { return "\(error)" }
    }

    @Test func sizesAboveTheirLimitsAreErrorsNamingKeyValueAndLimit() throws {
        let cases: [([String], String, String)] = [
            (["n_steps=1e9"], "ppo", "'n_steps' in --set: must be at most \(Limits.rolloutSteps), got 1000000000"),
            (["n_envs=100000"], "ppo", "'n_envs' in --set: must be at most \(Limits.environments), got 100000"),
            (["n_envs=1024", "n_steps=1000000"], "a2c", "a rollout of n_envs × n_steps = 1024 × 1000000 = 1024000000 steps is above the limit"),
            (["n_steps=1000000", "n_timesteps=2000"], "ppo", "more than \(Limits.rolloutOverrun) times the run's 2000 steps"),
            (["batch_size=1e9"], "dqn", "'batch_size' in --set: must be at most \(Limits.batchSize)"),
            (["buffer_size=1e12"], "dqn", "'buffer_size' in --set: must be at most \(Limits.replayTransitions)"),
            (["n_epochs=1e7"], "ppo", "'n_epochs' in --set: must be at most \(Limits.updateEpochs)"),
            (["n_timesteps=1e20"], "reinforce", "'n_timesteps' in --set: must be at most \(Limits.timesteps), got 1e+20"),
            (["n_steps=1.5"], "reinforce", "'n_steps' in --set: must be a whole number, got 1.5"),
        ]
        for (overrides, agent, expected) in cases {
            let error = try ppoError(overrides, agent: agent)
            #expect(error?.contains(expected) == true, "\(overrides): \(error ?? "no error")")
        }
        // Within the limits, and a rollout a little longer than a short run, build as before.
        #expect(try ppoError(["n_steps=4096", "n_timesteps=300"]) == nil)
    }

    @Test func countsAreReadInOneSyntax() throws {
        for text in ["100000", "100_000", "1e5", "1.0e5", "100000.0", " 1E5 "] {
            #expect(try WholeNumber.parse(text, in: 1...1_000_000) == 100_000, "\(text)")
            var hp = HyperParameters(defaults: Self.ppoDefaults)
            try hp.apply(override: "n_steps=\(text)")
            #expect(try PPOAgent.Config(hp).common.numSteps == 100_000, "\(text)")
        }
        var yaml = HyperParameters(defaults: Self.ppoDefaults)
        try yaml.apply(yaml: "n_timesteps: 2_000_000\nn_steps: 1e3\n", source: "test.yml")
        #expect(try PPOAgent.Config(yaml).timesteps == 2_000_000)
        #expect(try PPOAgent.Config(yaml).common.numSteps == 1000)
        for (text, reason) in [("1.5", "must be a whole number, got 1.5"), ("1e30", "must be at most 1000000"),
                               ("-3", "must be at least 1, got -3"), ("1__0", "'1__0' is not a number"),
                               ("_10", "is not a number"), ("ten", "'ten' is not a number"), ("nan", "is not a number")] {
            let error = #expect(throws: WholeNumberError.self, "\(text)") { try WholeNumber.parse(text, in: 1...1_000_000) }
            #expect(error?.description.contains(reason) == true, "\(text): \(error.map { "\($0)" } ?? "no error")")
        }
    }

    @Test func aYAMLAliasBombIsRefusedBeforeItIsExpanded() throws {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for (name, previous) in zip("bcdefghi", "abcdefgh") {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]\n"
        }
        var hp = HyperParameters(defaults: Self.ppoDefaults)
        let start = Date()
        let error = #expect(throws: ConfigError.self) { try hp.apply(yaml: text, source: "bomb.yml") }
        #expect(Date().timeIntervalSince(start) < 1)
        #expect("\(error.map { "\($0)" } ?? "")".contains("bomb.yml: it holds more than \(Limits.configValues) values"))
        // Aliases within the limit still work (the zoo's files use anchors).
        try hp.apply(yaml: "n_steps: &n 64\nbatch_size: *n\n", source: "anchors.yml")
        #expect(try PPOAgent.Config(hp).batchSize == 64)
        // A config file larger than the limit is refused before it is read.
        let big = Scratch.directory("limits").appendingPathComponent("big.yml")
        try Data(String(repeating: "# padding\n", count: Limits.configBytes / 10 + 1).utf8).write(to: big)
        #expect(throws: ConfigError.self) { try hp.apply(file: big) }
    }

    @Test func yamlConfigReaderLoadsOrRefusesEveryVariant() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let configs = root.appendingPathComponent("Agents/Configs/ppo")
        var texts = try FileManager.default.contentsOfDirectory(atPath: configs.path).filter { $0.hasSuffix(".yml") }.sorted()
            .map { Array(try Data(contentsOf: configs.appendingPathComponent($0))) }
        texts.append(Array("n_steps: &n 64\nbatch_size: *n\npolicy_kwargs: \"dict(net_arch=[64, 64], activation_fn=nn.ReLU)\"\n".utf8))
        var fuzz = Fuzz(seed: 5)
        let variants = fuzz.variants(of: texts, count: Fuzz.iterations())
        let result = Fuzz.check(variants) { bytes in
            var hp = HyperParameters(defaults: Self.ppoDefaults)
            try hp.apply(yaml: String(decoding: bytes, as: UTF8.self), source: "fuzz.yml", environment: "CartPole-v1")
            _ = try PPOAgent.Config(hp)
        }
        #expect(result.refused > 0 && result.loaded > 0, "\(result)")
        #expect(result.seconds < 30, "\(result)")
    }
}
