import Foundation
import Sweeps
import Testing

/// Reading a sweep spec: the runs it makes, their stable names and arguments, seeded draws, and errors that name
/// the key.
@Suite struct SweepSpecTests {
    static let search = """
    agents: [ppo, a2c]
    environments: CartPole-v1
    seeds: 2
    steps: 1e4
    hyperparameters:
      n_epochs: [5, 10]
      learning_rate: loguniform(1e-4, 1e-2)
      ent_coef: choice([0.0, 0.01])
      gamma: 0.98
    samples: 3
    """

    @Test func gridTimesDrawsTimesSeeds() throws {
        let spec = try SweepSpec(yaml: Self.search, source: "s.yml")
        let runs = try spec.runs()
        #expect(runs.count == 2 * 1 * (2 * 3) * 2)
        #expect(Set(runs.map(\.name)).count == runs.count, "every run has its own folder")
        let first = runs[0]
        #expect(first.subject == "ppo" && first.target == "CartPole-v1" && first.seed == 0)
        // The varied keys name the folder (in key order); the fixed one is only a --set.
        #expect(first.name.hasPrefix("ppo-CartPole-v1-ent_coef="), "\(first.name)")
        #expect(first.name.contains("-n_epochs=5-") && first.name.hasSuffix("-seed0") && !first.name.contains("gamma"), "\(first.name)")
        #expect(Array(first.runArguments.prefix(7)) == ["ppo", "--env", "CartPole-v1", "--seed", "0", "--steps", "10000"])
        #expect(first.runArguments.contains("gamma=0.98"))
        // Seeds vary fastest, then draws, then the grid, then environments and agents.
        #expect(runs[1].seed == 1 && runs[1].settings.map(\.value) == first.settings.map(\.value))
        #expect(runs[12].subject == "a2c")
        // Every draw is inside its range, rounded to 4 significant digits, and the draws differ.
        let rates = runs.compactMap { $0.settings.first { $0.key == "learning_rate" }?.value }
        #expect(rates.count == runs.count)
        for rate in rates {
            let x = try #require(Double(rate))
            #expect(x >= 1e-4 && x <= 1e-2 && String(format: "%.4g", x) == rate, "\(rate)")
        }
        #expect(Set(rates).count == 3, "three draws, the same for each grid point, agent and seed: \(Set(rates))")
        let entropyCoefficients = Set(runs.compactMap { run in run.settings.first { $0.key == "ent_coef" }.map(\.value) })
        #expect(entropyCoefficients.isSubset(of: ["0.0", "0.01"]), "\(entropyCoefficients)")
    }

    @Test func drawsFollowTheSearchSeed() throws {
        let a = try SweepSpec(yaml: Self.search, source: "s").runs().map(\.name)
        let b = try SweepSpec(yaml: Self.search, source: "s").runs().map(\.name)
        let c = try SweepSpec(yaml: Self.search + "\nsearch_seed: 1", source: "s").runs().map(\.name)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func integerDrawsIncludeBothEnds() throws {
        let spec = try SweepSpec(yaml: "agents: dqn\nenvironments: [CartPole-v1]\nhyperparameters:\n  batch_size: int(1, 3)\nsamples: 200",
                                 source: "s")
        let values = Set(spec.groups[0].settings().map { $0[0].value })
        #expect(values == ["1", "2", "3"])
    }

    @Test func seedsAsAListAndModelsOnDatasets() throws {
        let spec = try SweepSpec(yaml: "models: vae\ndatasets: [digits, ring8]\nseeds: [3, 7]\nepochs: 2\neval_episodes: 0", source: "s")
        let runs = try spec.runs()
        #expect(runs.map(\.name) == ["vae-digits-seed3", "vae-digits-seed7", "vae-ring8-seed3", "vae-ring8-seed7"])
        #expect(runs[0].runArguments == ["vae", "--data", "digits", "--seed", "3", "--epochs", "2", "--eval-episodes", "0"])
        #expect(!runs[0].evaluates, "without evaluation a run is done at its final checkpoint")
    }

    /// A learning table is not one product: each group is its own, with the keys outside `groups` as defaults.
    @Test func groupsEachMakeTheirOwnRuns() throws {
        let spec = try SweepSpec(yaml: """
        seeds: 2
        eval_episodes: 10
        hyperparameters: {gamma: 0.99}
        groups:
          - {agents: [ppo, a2c], environments: CartPole-v1, target: 475}
          - {agents: dqn, environments: [Acrobot-v1], steps: 1e5, hyperparameters: {n_steps: 2}, target: -100}
          - {models: vae, datasets: digits, epochs: 2, seeds: [7]}
        """, source: "table.yml")
        let runs = try spec.runs()
        #expect(runs.map(\.name) == ["ppo-CartPole-v1-seed0", "ppo-CartPole-v1-seed1", "a2c-CartPole-v1-seed0", "a2c-CartPole-v1-seed1",
                                      "dqn-Acrobot-v1-seed0", "dqn-Acrobot-v1-seed1", "vae-digits-seed7"])
        #expect(runs[0].runArguments == ["ppo", "--env", "CartPole-v1", "--seed", "0", "--eval-episodes", "10", "--set", "gamma=0.99"])
        #expect(runs[4].runArguments == ["dqn", "--env", "Acrobot-v1", "--seed", "0", "--steps", "100000", "--eval-episodes", "10",
                                         "--set", "gamma=0.99", "--set", "n_steps=2"], "a group's hyperparameters add to the defaults'")
        #expect(runs[6].runArguments == ["vae", "--data", "digits", "--seed", "7", "--epochs", "2", "--eval-episodes", "10", "--set", "gamma=0.99"])
        #expect(runs.map(\.targetScore) == [475, 475, 475, 475, -100, -100, nil])

        func error(_ yaml: String) -> SweepSpecError? {
            do { _ = try SweepSpec(yaml: yaml, source: "s.yml").runs(); return nil } catch { return error as? SweepSpecError }
        }
        #expect(error("groups: []")?.key == "groups")
        #expect(error("groups: [{agents: ppo}]")?.key == "groups[0].environments")
        #expect(error("groups: [{agents: ppo, environments: CartPole-v1, target: high}]")?.key == "groups[0].target")
        #expect(error("groups: [{agents: ppo, environments: CartPole-v1}, {agents: ppo, environments: CartPole-v1, groups: []}]")?.key
                == "groups[1].groups")
        #expect(error("groups: [{agents: ppo, environments: CartPole-v1}, {agents: ppo, environments: CartPole-v1}]")?.key == "groups",
                "two groups that make the same run")
    }

    @Test func errorsNameTheKey() throws {
        func error(_ yaml: String) -> SweepSpecError? {
            do { _ = try SweepSpec(yaml: yaml, source: "s.yml").runs(); return nil } catch { return error as? SweepSpecError }
        }
        let base = "agents: ppo\nenvironments: CartPole-v1\n"
        #expect(error(base + "seed: 3")?.key == "seed")
        #expect(error(base + "seed: 3")?.description.contains("known keys") == true)
        let rate = base + "hyperparameters:\n  learning_rate: "
        #expect(error(rate + "uniform(0.1, 0.01)\nsamples: 2")?.key == "hyperparameters.learning_rate")
        #expect(error(rate + "normal(0, 1)\nsamples: 2")?.problem.contains("unknown distribution") == true)
        #expect(error(rate + "loguniform(0, 1)\nsamples: 2")?.key == "hyperparameters.learning_rate")
        #expect(error(rate + "uniform(0.1, 0.2)")?.key == "samples")
        // In a flow mapping YAML splits an unquoted distribution at its comma: said, not read as two keys.
        let flow = error(base + "hyperparameters: {learning_rate: uniform(0.1, 0.2)}\nsamples: 2")
        #expect(flow?.key == "hyperparameters.learning_rate" && flow?.problem.contains("quote") == true, "\(String(describing: flow))")
        let quoted = try SweepSpec(yaml: base + "hyperparameters: {learning_rate: 'uniform(0.1, 0.2)'}\nsamples: 2", source: "s")
        #expect(quoted.groups[0].samples == 2)
        #expect(error(base + "hyperparameters: {n_epochs: [5, 10]}\nsamples: 4")?.key == "samples")
        #expect(error(base + "seeds: [1, 1]")?.key == "seeds")
        #expect(error(base + "seeds: -2")?.key == "seeds")
        #expect(error(base + "steps: lots")?.key == "steps")
        #expect(error("agents: ppo\n")?.key == "environments")
        #expect(error("environments: CartPole-v1\n")?.key == "agents")
        #expect(error(base + "models: vae")?.key == "models")
        #expect(error(base + "hyperparameters: {n_epochs: [5, 10, 5]}")?.key == "hyperparameters.n_epochs")
        #expect(error("[1, 2]")?.key == nil)
        #expect(error(base + "seeds: 10000\nhyperparameters: {a: [1,2,3,4,5,6,7,8,9,10], b: [1,2,3,4,5,6,7,8,9,10]}")?.problem.contains("limit") == true)
        let halving = base + "hyperparameters: {learning_rate: [0.1, 0.2]}\nhalving: "
        #expect(error(halving + "{steps: [1000, 3000], keep: 0.5}") == nil)
        #expect(error(halving + "{steps: [3000, 1000], keep: 0.5}")?.key == "halving.steps")
        #expect(error(halving + "{steps: [1000, 3000], keep: 1}")?.key == "halving.keep")
        #expect(error(halving + "{steps: [1000, 3000], epochs: [1, 2], keep: 0.5}")?.key == "halving")
        #expect(error(halving + "{steps: [1000, 3000], keep: 0.5}\neval_episodes: 0")?.key == "eval_episodes")
        #expect(error(base + "halving: {steps: [1000, 3000], keep: 0.5}")?.problem.contains("one setting only") == true)
        // Values that differ only in characters a folder name cannot hold would share a folder.
        #expect(error(base + "hyperparameters: {net: ['a/b', 'a:b']}")?.key == "hyperparameters")
    }
}
