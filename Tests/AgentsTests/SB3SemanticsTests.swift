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

    /// A normalizer's return statistics round-trip through a checkpoint, mean included (a resume restored it as 0).
    @Test func normalizerCheckpointKeepsTheReturnMean() throws {
        let normalizer = ObservationNormalizer(size: 2, gamma: 0.9)
        for _ in 0..<5 { _ = normalizer.scaleRewards([1, 2, 3], done: [false, false, false]) }
        let restored = ObservationNormalizer(size: 2, gamma: 0.9)
        try restored.restore(from: AgentCheckpoint(tensors: normalizer.stateTensors(prefix: "obs_rms")), prefix: "obs_rms")
        #expect(normalizer.returns.mean[0] > 1)
        #expect(abs(restored.returns.mean[0] - normalizer.returns.mean[0]) < 1e-5 * normalizer.returns.mean[0])
    }
}
