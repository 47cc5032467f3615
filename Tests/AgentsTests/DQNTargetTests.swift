import Agents
import Foundation
import Testing

/// DQN's target y = r + γ(1 − terminated)·Q_target(s', ·), checked by the values it converges to on tiny grid
/// worlds whose every move earns 1 and whose episodes last one step: ended by a time limit (truncated), the value of
/// the start is the infinite-horizon 1/(1 − γ), because a truncation bootstraps; ended by a goal (terminated), it is
/// the reward alone, 1. With γ = 0.5 those are 2 and 1; a target that bootstraps on termination, or stops at a
/// truncation, converges to the other number.
@Suite struct DQNTargetTests {
    static let variants: [[String]] = [[], ["double_q=true"], ["dueling=true"], ["n_steps=3"]]

    /// V(start) = max_a Q(start, a) after training on `map` (the start in cell `start`), each episode cut off after
    /// `limit` steps.
    func startValue(map: String, start: Int, limit: Int, _ overrides: [String]) throws -> Double {
        var options = RunOptions(agent: "dqn", environment: "GridWorld-v0", outputDirectory: temporaryDirectory())
        options.environmentOptions = ["map": map, "max_episode_steps": String(limit)]
        options.steps = 3000
        options.overrides = ["gamma=0.5", "learning_rate=1e-3", "learning_starts=200", "batch_size=32",
                             "train_freq=1", "gradient_steps=1", "target_update_interval=50",
                             "exploration_fraction=0.1", "policy_kwargs={net_arch: [32]}"] + overrides
        options.evaluationEpisodes = 0
        options.progress = .quiet
        let result = try TrainingRun(options).run()
        let agent = try #require(try SavedAgent.load(result.finalCheckpoint).agent as? ValueEstimating)
        return agent.stateValue([Float(start)])  // the observation is the cell's index
    }

    /// "S" alone: every move bumps into the edge (reward 1) and the time limit of 1 step truncates each episode.
    @Test(arguments: variants)
    func truncationBootstraps(_ overrides: [String]) throws {
        let value = try startValue(map: "step_reward: 1\nS", start: 0, limit: 1, overrides)
        #expect(abs(value - 2) < 0.05, "V(start) \(value), expected 1/(1 − γ) = 2 with \(overrides)")
    }

    /// The start with a goal on every side: each move enters a goal (reward 1 + 0) and terminates the episode.
    @Test(arguments: variants)
    func terminationDoesNotBootstrap(_ overrides: [String]) throws {
        let value = try startValue(map: "step_reward: 1\ngoal_reward: 0\n#G#\nGSG\n#G#", start: 4, limit: 10,
                                     overrides)
        #expect(abs(value - 1) < 0.05, "V(start) \(value), expected the reward alone, 1, with \(overrides)")
    }
}
