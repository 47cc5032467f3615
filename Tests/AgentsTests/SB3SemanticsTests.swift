import Agents
import Foundation
import RLCore
import Testing

/// Details where rlbench follows Stable-Baselines3's algorithms step for step, checked by what they leave behind.
@Suite struct SB3SemanticsTests {
    /// The optimizer's step count in a run's final checkpoint.
    func optimizerSteps(_ agent: String, _ env: String, steps: Int, _ overrides: [String]) throws -> Int {
        let (result, _) = try train(agent, env, steps: steps, overrides: overrides, episodes: 0)
        let tensors = try SafeTensors.read(from: result.finalCheckpoint).tensors
        return Int(try #require(tensors.first { $0.name == "optimizer.step" }?.tensor).item)
    }

    /// PPO with target_kl stops an update at the first minibatch whose approximate KL exceeds 1.5 × target_kl, before
    /// that minibatch's step (SB3 breaks before `optimizer.step()`). With a small target and a large learning rate each
    /// rollout takes exactly one step: the first minibatch starts from the rollout's own policy (KL 0), the second is
    /// past the target. Pendulum's episodes all last 200 steps, so the number of rollouts does not depend on the policy:
    /// it is the step count of a run with one minibatch per rollout.
    @Test func ppoTargetKLStopsBeforeTheStep() throws {
        let common = ["n_envs=1", "n_steps=64", "learning_rate=0.05", "use_sde=false"]
        let rollouts = try optimizerSteps("ppo", "Pendulum-v1", steps: 640, common + ["batch_size=64", "n_epochs=1"])
        let steps = try optimizerSteps("ppo", "Pendulum-v1", steps: 640, common + ["batch_size=16", "n_epochs=4", "target_kl=1e-5"])
        #expect(rollouts >= 10 && steps == rollouts, "\(rollouts) rollouts must take as many optimizer steps, took \(steps)")
    }

    /// DQN's gradient_steps -1 is one gradient step per environment step of the rollout (train_freq), also at the
    /// first update after the warm-up: learning_starts 100, train_freq 4, 200 steps → 25 updates of 4 steps.
    @Test func dqnGradientStepsMinusOneIgnoresTheWarmUp() throws {
        let steps = try optimizerSteps("dqn", "CartPole-v1", steps: 200,
                                       ["learning_starts=100", "train_freq=4", "gradient_steps=-1", "batch_size=8"])
        #expect(steps == 100, "expected 25 updates × 4 gradient steps, took \(steps)")
    }

    /// VecNormalize under same-step autoreset never sees an episode's final observation nor a return sample for the
    /// reset step: with next-step autoreset, those rows are left out of the statistics.
    @Test func normalizerSkipsFinalObservationsAndAutoresetRewards() throws {
        let normalizer = ObservationNormalizer(size: 2, gamma: 0.9)
        _ = normalizer.normalize([1, 2, 3, 4, 100, 100], update: true, counted: [true, true, false])
        #expect(abs(normalizer.observations.count - 2.0001) < 1e-9, "two of the three rows count (the prior count is 1e-4)")
        #expect(abs(normalizer.observations.mean[0] - 2) < 1e-3, "the final observation (100) must not count")
        let before = normalizer.returns.count
        _ = normalizer.scaleRewards([1, 0, 2], done: [false, false, false], skipped: [false, true, false])
        #expect(abs(normalizer.returns.count - before - 2) < 1e-9, "the autoreset row adds no return sample")
        // The return statistics round-trip through a checkpoint, mean included.
        let restored = ObservationNormalizer(size: 2, gamma: 0.9)
        try restored.restore(from: AgentCheckpoint(tensors: normalizer.stateTensors(prefix: "obs_rms")), prefix: "obs_rms")
        #expect(abs(restored.returns.mean[0] - normalizer.returns.mean[0]) < 1e-6 && normalizer.returns.mean[0] != 0)
    }
}
