import Agents
import Environments
import Foundation
import TestSupport
import Testing

/// The numpy script of docs/checkpoints.md ("Acting with a recurrent policy in Python") acts as rlbench's recurrent PPO
/// does: the same actions, step for step, on a recorded random walk with episode boundaries, carrying the LSTM's state
/// and zeroing it where an episode begins (an argmax over logits with the tuned normalization and critic LSTM; a
/// clipped gSDE mean through two LSTM layers shared with the critic).
@Suite struct RecurrentActingScriptTests {
    @Test(arguments: [
        ("CartPoleNoVel-v1", [String]()),
        ("PendulumNoVel-v1", ["n_steps=256", "policy_kwargs.n_lstm_layers=2", "policy_kwargs.shared_lstm=true",
                              "policy_kwargs.enable_critic_lstm=false"]),
    ])
    func scriptActsAsRlbenchDoes(environment: String, overrides: [String]) throws {
        let python = try #require(CLI.executable(named: "python3"))
        let doc = try String(contentsOf: CLI.root.appendingPathComponent("docs/checkpoints.md"), encoding: .utf8)
        let script = try #require(doc.matches(of: /```python\n([\s\S]*?)```/).map { String($0.1) }.first { $0.contains("begin_episode()") },
                                  "no recurrent acting script in docs/checkpoints.md")
        let dir = Scratch.directory("recurrent-script")
        var options = RunOptions(agent: "recurrent-ppo", environment: environment, outputDirectory: dir)
        options.steps = 4096
        options.overrides = overrides
        options.evaluationEpisodes = 0
        options.progress = .quiet
        let checkpoint = try TrainingRun(options).run().finalCheckpoint
        let saved = try SavedAgent.load(checkpoint)
        let agent = try #require(saved.agent as? RecurrentAgent)

        // rlbench's deterministic actions along a random walk, its memory forgotten where an episode begins.
        let walk = try randomWalk(try saved.environment.make(), count: 250, resetSeed: 3)
        #expect(walk.dropFirst().contains { $0.begins }, "the walk crosses no episode boundary")
        func actions(forgetting: Bool) -> [[Double]] {
            agent.beginEpisodes(count: 1)
            return walk.map { step in
                if step.begins && forgetting { agent.beginEpisodes(count: 1) }
                return agent.act(step.observation, deterministic: true).numbers
            }
        }
        let expected = actions(forgetting: true)
        // The comparison can tell: rlbench acts otherwise without its memory, and without forgetting it at a boundary.
        func differ(_ a: [[Double]], _ b: [[Double]]) -> Bool { zip(a, b).contains { zip($0, $1).contains { abs($0 - $1) > 1e-3 } } }
        let stateless = saved.agent.act(batch: walk.flatMap(\.observation), count: walk.count, deterministic: true).map(\.numbers)
        #expect(differ(stateless, expected), "the policy acts the same without its memory")
        #expect(differ(actions(forgetting: false), expected), "the policy acts the same when it keeps its memory across episodes")

        let file = dir.appendingPathComponent("walk.json")
        try JSONSerialization.data(withJSONObject: walk.map { [$0.begins, $0.observation.map(Double.init)] as [Any] }).write(to: file)
        let ran = try CLI.runTool(python, ["-c", script + """

            actions = []
            for begins, obs in json.load(open(sys.argv[2])):
                if begins:
                    begin_episode()
                actions.append(np.atleast_1d(act(obs)).astype(float).tolist())
            print(json.dumps(actions))
            """, checkpoint.path, file.path])
        #expect(ran.status == 0, "\(environment): the script failed: \(ran.err)")
        let last = ran.out.split(separator: "\n").last.map(String.init) ?? ""
        let theirs = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [[Double]], "no actions printed: \(ran.out)")
        #expect(theirs.count == expected.count)
        for (t, (mine, python)) in zip(expected, theirs).enumerated() {
            let close = mine.count == python.count && zip(mine, python).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }
            #expect(close, "\(environment) step \(t): rlbench \(mine), the script \(python)")
        }
    }
}
