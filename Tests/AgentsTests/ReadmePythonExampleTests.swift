import Agents
import Environments
import Foundation
import SeededRandom
import TestSupport
import Testing

/// The README's Python example (numpy, safetensors, Gymnasium) reads every form of policy a checkpoint describes and
/// picks the same actions rlbench does: the same argmax, the same clipped Gaussian mean.
@Suite struct ReadmePythonExampleTests {
    struct Case: CustomStringConvertible {
        var agent, environment: String
        var overrides: [String] = []
        var environmentOptions: [String: String] = [:]
        var description: String { "\(agent) on \(environment) \(overrides) \(environmentOptions)" }
    }

    static let cases = [
        Case(agent: "ppo", environment: "CartPole-v1"),                                                 // tanh MLP
        Case(agent: "a2c", environment: "Acrobot-v1", overrides: ["policy_kwargs.activation_fn=elu"]),  // normalized, ELU
        Case(agent: "ppo", environment: "CartPole-v1", overrides: ["policy_kwargs.activation_fn=sigmoid"]),
        Case(agent: "reinforce", environment: "CartPole-v1", overrides: ["policy_kwargs.activation_fn=leaky_relu"]),
        Case(agent: "dqn", environment: "CartPole-v1", overrides: ["dueling=true"]),                    // dueling head
        Case(agent: "dqn", environment: "MountainCar-v0", overrides: ["policy_kwargs.activation_fn=softplus"]),
        Case(agent: "ppo", environment: "MountainCarContinuous-v0"),                                    // gSDE, clipped
        Case(agent: "ppo", environment: "Pendulum-v1", environmentOptions: ["g": "9.81"]),
        Case(agent: "qlearning", environment: "FrozenLake-v1", environmentOptions: ["is_slippery": "false"]),  // table
        Case(agent: "dqn", environment: "MinAtar/Breakout-v1", overrides: ["learning_starts=2800"]),     // MinAtarCNN
        Case(agent: "ppo", environment: "MinAtar/SpaceInvaders-v1", overrides: ["n_envs=2", "policy_kwargs.net_arch=[32]"]),
    ]

    @Test func actsAsRlbenchDoes() throws {
        let python = try #require(CLI.executable(named: "python3"))
        let probe = try CLI.runTool(python, ["-c", "import gymnasium, safetensors, numpy, minatar"])
        #expect(probe.status == 0, "python3 needs gymnasium, safetensors, numpy and minatar (scripts/setup --for-tests): \(probe.err)")
        let readme = try String(contentsOf: CLI.root.appendingPathComponent("README.md"), encoding: .utf8)
        let example = try #require(readme.firstMatch(of: /```python\n([\s\S]*?)```/).map { String($0.1) })
        for c in Self.cases {
            let dir = temporaryDirectory()
            var options = RunOptions(agent: c.agent, environment: c.environment, outputDirectory: dir)
            options.steps = 3000
            options.overrides = c.overrides
            options.environmentOptions = c.environmentOptions
            options.evaluationEpisodes = 0
            options.progress = .quiet
            let checkpoint = try TrainingRun(options).run().finalCheckpoint
            let saved = try SavedAgent.load(checkpoint)

            // Observations from a random walk, and the actions rlbench's deterministic policy takes in them.
            let env = try saved.environment.make()
            var rng = SeededGenerator(seed: 7)
            var observations: [[Float]] = [], observation = env.reset(seed: 3)
            for _ in 0..<64 {
                observations.append(observation)
                let step = try env.step(env.actionSpace.sample(using: &rng))
                observation = step.terminated || step.truncated ? env.reset() : step.observation
            }
            let actions = saved.agent.act(batch: observations.flatMap { $0 }, count: observations.count, deterministic: true)

            let file = dir.appendingPathComponent("observations.json")
            try JSONSerialization.data(withJSONObject: observations.map { $0.map(Double.init) }).write(to: file)
            let script = example + """

                observations = json.load(open(sys.argv[2]))
                print(json.dumps([np.atleast_1d(act(o)).astype(float).tolist() for o in observations]))
                """
            let run = try CLI.runTool(python, ["-c", script, checkpoint.path, file.path])
            #expect(run.status == 0, "\(c): the README example failed: \(run.err)")
            guard let last = run.out.split(separator: "\n").last,
                  let theirs = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [[Double]] else {
                Issue.record("\(c): no actions printed: \(run.out)")
                continue
            }
            #expect(theirs.count == actions.count)
            for (mine, python) in zip(actions, theirs) {
                switch mine {
                case let .discrete(a):
                    #expect(python == [Double(a)], "\(c): rlbench \(a), the README example \(python)")
                case let .continuous(a):
                    let close = zip(a, python).allSatisfy { abs(Double($0) - $1) <= 1e-4 * max(1, abs($1)) }
                    #expect(close && a.count == python.count, "\(c): rlbench \(a), the README example \(python)")
                }
            }
        }
    }
}
