import Environments
import Foundation
import SeededRandom
import Testing

@Suite struct WrapperTests {
    @Test func episodeStatisticsRecordReturnAndLength() throws {
        let env = RecordEpisodeStatistics(CounterEnvironment(length: 4))
        env.reset(seed: 1)
        #expect(env.lastEpisode == nil && env.completedEpisodes == 0)
        for a in [1, 0, 1] { _ = try env.step(a) }
        #expect(env.lastEpisode == nil)
        #expect(env.episodeReturn == 5 && env.episodeLength == 3)
        let last = try env.step(1)
        #expect(last.terminated)
        #expect(env.lastEpisode?.episodeReturn == 7 && env.lastEpisode?.length == 4)
        #expect(env.completedEpisodes == 1)
        env.reset()
        #expect(env.episodeReturn == 0 && env.episodeLength == 0)
        for _ in 0..<4 { _ = try env.step(0) }
        #expect(env.lastEpisode?.episodeReturn == 4 && env.lastEpisode?.length == 4)
        #expect(env.completedEpisodes == 2)
    }

    @Test func episodeStatisticsKeepARecentWindow() throws {
        let env = RecordEpisodeStatistics(CounterEnvironment(length: 2), bufferLength: 3)
        #expect(env.meanRecentReturn == nil)
        for episode in 0..<5 {
            env.reset(seed: UInt64(episode))
            for _ in 0..<2 { _ = try env.step(episode % 2) } // returns 2 (action 0) or 4 (action 1)
        }
        #expect(env.completedEpisodes == 5)
        #expect(env.recentReturns == [2, 4, 2] && env.recentLengths == [2, 2, 2])
        #expect(abs(env.meanRecentReturn! - 8.0 / 3) < 1e-12)
    }

    @Test func episodeStatisticsCountTimeLimitTruncation() throws {
        let env = RecordEpisodeStatistics(TimeLimit(CartPole(), maxEpisodeSteps: 3))
        env.reset(seed: 0)
        var result = try env.step(0)
        while !result.truncated && !result.terminated { result = try env.step(env.episodeLength % 2) }
        #expect(env.lastEpisode?.length == 3 && env.lastEpisode?.episodeReturn == 3)
    }

    @Test func wrappersForwardSpecSpacesAndRender() throws {
        let inner = try Registry.make("CartPole-v1")
        let wrapped: [Environment] = [RecordEpisodeStatistics(inner), NormalizeObservation(inner), ScaleReward(inner)]
        for env in wrapped {
            #expect(env.spec?.id == "CartPole-v1")
            #expect(env.actionSpace == inner.actionSpace)
            env.reset(seed: 3)
            #expect(env.render() == inner.render())
        }
        #expect(RecordEpisodeStatistics(inner).observationSpace == inner.observationSpace)
        #expect(NormalizeObservation(inner).observationSpace == .box(low: -10, high: 10, shape: [4]))
    }

    /// SB3's RunningMeanStd from scratch: prior mean 0, variance 1, count 1e-4, merged with the samples.
    func referenceStatistics(_ samples: [[Double]]) -> (mean: [Double], variance: [Double]) {
        let d = samples[0].count, prior = 1e-4, total = prior + Double(samples.count)
        var mean = [Double](repeating: 0, count: d), variance = [Double](repeating: 0, count: d)
        for j in 0..<d {
            mean[j] = samples.reduce(0) { $0 + $1[j] } / total
            let m2 = prior * (1 + mean[j] * mean[j]) + samples.reduce(0) { $0 + ($1[j] - mean[j]) * ($1[j] - mean[j]) }
            variance[j] = m2 / total
        }
        return (mean, variance)
    }

    @Test func normalizeObservationMatchesRunningStatistics() throws {
        let inner = try Registry.make("Pendulum-v1")
        let raw = try Registry.make("Pendulum-v1")
        let env = NormalizeObservation(inner)
        var rng = SeededGenerator(seed: 5)
        var samples: [[Double]] = [raw.reset(seed: 11).map(Double.init)]
        var normalized = env.reset(seed: 11)
        for _ in 0..<150 {
            let action = raw.actionSpace.sample(using: &rng)
            samples.append(try raw.step(action).observation.map(Double.init))
            normalized = try env.step(action).observation
        }
        let (mean, variance) = referenceStatistics(samples)
        #expect(env.statistics.count == 1e-4 + 151)
        for j in 0..<3 {
            #expect(abs(env.statistics.mean[j] - mean[j]) < 1e-9)
            #expect(abs(env.statistics.variance[j] - variance[j]) < 1e-9 * max(1, variance[j]))
            // The last observation is normalized by the statistics that already include it.
            let expected = (samples.last![j] - mean[j]) / (variance[j] + 1e-8).squareRoot()
            #expect(abs(Double(normalized[j]) - expected) < 1e-5)
        }
    }

    @Test func batchAndSingleUpdatesAgree() {
        var rng = SeededGenerator(seed: 2)
        let values = (0..<60).map { _ in Float(rng.nextGaussian() * 3 + 1) }
        var batch = RunningMeanStd(size: 3), single = RunningMeanStd(size: 3)
        values.withUnsafeBufferPointer { batch.update($0, rows: 20) }
        for r in 0..<20 { values.withUnsafeBufferPointer { single.update(UnsafeBufferPointer(rebasing: $0[(r * 3)..<(r * 3 + 3)]), rows: 1) } }
        #expect(batch.count == single.count)
        for j in 0..<3 {
            #expect(abs(batch.mean[j] - single.mean[j]) < 1e-12)
            #expect(abs(batch.variance[j] - single.variance[j]) < 1e-12)
        }
    }

    @Test func normalizeObservationFreezesAndRestores() throws {
        let env = NormalizeObservation(try Registry.make("CartPole-v1"))
        env.reset(seed: 1)
        for t in 0..<40 { if try env.step(t % 2).terminated { env.reset() } }
        env.training = false
        let frozen = env.statistics
        env.reset(seed: 2)
        var evalObservations: [[Float]] = []
        for t in 0..<10 { evalObservations.append(try env.step(t % 2).observation) }
        #expect(env.statistics == frozen)

        // A fresh wrapper given the saved statistics normalizes identically.
        let restored = NormalizeObservation(try Registry.make("CartPole-v1"))
        restored.statistics = RunningMeanStd(mean: frozen.mean, variance: frozen.variance, count: frozen.count)
        restored.training = false
        restored.reset(seed: 2)
        for t in 0..<10 { #expect(try restored.step(t % 2).observation == evalObservations[t]) }
    }

    @Test func normalizeObservationClips() throws {
        let env = NormalizeObservation(CounterEnvironment(length: 1000), clip: 10)
        env.training = false
        env.statistics = RunningMeanStd(mean: [0, 0], variance: [1e-6, 1], count: 10)
        env.reset(seed: 0)
        // Count 1 + start ≥ 1 over √1e-6: a z-score near 1000, clipped to +10; the second value is 1 / √(1 + 1e-8).
        #expect(try env.step(1).observation == [10, 1])
    }

    @Test func scaleRewardMatchesDiscountedReturnStatistics() throws {
        let env = ScaleReward(CounterEnvironment(length: 6), gamma: 0.9, clip: 10, epsilon: 1e-8)
        env.reset(seed: 0)
        // Reference: G ← γG + r; update statistics with G; reward / √(var + ε); G ← 0 at episode end.
        var mean = 0.0, variance = 1.0, count = 1e-4, g = 0.0
        var rng = SeededGenerator(seed: 9)
        for _ in 0..<40 {
            let a = rng.nextInt(below: 2)
            let result = try env.step(a)
            let r = Double(a + 1)
            g = g * 0.9 + r
            let total = count + 1, delta = g - mean
            variance = (variance * count + delta * delta * count / total) / total
            mean += delta / total
            count = total
            let expected = max(-10, min(10, r / (variance + 1e-8).squareRoot()))
            #expect(abs(result.reward - expected) < 1e-12)
            if result.terminated { g = 0; env.reset() }
        }
        #expect(abs(env.statistics.variance[0] - variance) < 1e-12)
    }

    @Test func scaleRewardFrozenStatisticsAndClip() throws {
        let env = ScaleReward(CounterEnvironment(length: 100), clip: 3)
        env.training = false
        env.statistics = RunningMeanStd(mean: [0], variance: [0.01], count: 5)
        env.reset(seed: 0)
        #expect(try env.step(0).reward == 3) // 1 / 0.1 = 10, clipped to 3
        env.statistics = RunningMeanStd(mean: [0], variance: [4], count: 5)
        #expect(abs(try env.step(1).reward - 1.0) < 1e-8) // 2 / 2
        #expect(env.statistics.count == 5)
    }

    @Test func oneHotObservation() throws {
        let env = try OneHotObservation(DiscreteStateEnvironment(n: 5))
        #expect(env.observationSpace == .box(low: 0, high: 1, shape: [5]))
        #expect(env.reset(seed: 0) == [1, 0, 0, 0, 0])
        #expect(try env.step(0).observation == [0, 1, 0, 0, 0])
        for _ in 0..<3 { _ = try env.step(0) }
        #expect(try env.step(0).observation == [1, 0, 0, 0, 0])

        let lake = try OneHotObservation(try Registry.make("FrozenLake-v1", options: ["is_slippery": "false"]))
        #expect(lake.reset(seed: 0) == [1] + [Float](repeating: 0, count: 15))
        let right = try lake.step(2).observation
        #expect(right.firstIndex(of: 1) == 1 && right.reduce(0, +) == 1)
    }

    @Test func oneHotRejectsBoxObservations() throws {
        #expect(throws: EnvironmentError.self) { try OneHotObservation(try Registry.make("CartPole-v1")) }
        do {
            _ = try OneHotObservation(try Registry.make("CartPole-v1"))
        } catch {
            #expect("\(error)".contains("needs a Discrete observation space"))
        }
    }
}

/// rl-baselines3-zoo's `MaskVelocityWrapper`: `CartPoleNoVel-v1`, `PendulumNoVel-v1` and `mask_velocity=true`.
@Suite struct MaskVelocityTests {
    /// Steps the masked and the plain environment with the same seed and actions: the masked entries read 0, the
    /// others, rewards and flags are the plain environment's, step for step, across episodes.
    func compare(_ masked: Environment, _ plain: Environment, masking indices: [Int], actions: (Int) -> Action) throws {
        #expect(masked.observationSpace == plain.observationSpace)
        var a = masked.reset(seed: 3), b = plain.reset(seed: 3)
        var episodes = 0, moving = 0
        for step in 0..<600 {
            for i in b.indices { #expect(a[i] == (indices.contains(i) ? 0 : b[i]), "step \(step), entry \(i)") }
            if indices.contains(where: { b[$0] != 0 }) { moving += 1 }
            let x = try masked.step(actions(step)), y = try plain.step(actions(step))
            #expect(x.reward == y.reward && x.terminated == y.terminated && x.truncated == y.truncated)
            (a, b) = (x.observation, y.observation)
            if x.terminated || x.truncated {
                episodes += 1
                (a, b) = (masked.reset(), plain.reset())
            }
        }
        #expect(episodes > 0)
        #expect(moving > 500, "velocities to mask")
    }

    @Test func cartPoleNoVelHidesBothVelocities() throws {
        try compare(Registry.make("CartPoleNoVel-v1"), Registry.make("CartPole-v1"), masking: [1, 3]) { .discrete($0 / 3 % 2) }
        #expect(try Registry.make("CartPoleNoVel-v1").spec?.maxEpisodeSteps == 500)
    }

    @Test func pendulumNoVelHidesTheAngularVelocity() throws {
        try compare(Registry.make("PendulumNoVel-v1"), Registry.make("Pendulum-v1"), masking: [2]) { .continuous([Float($0 % 5) - 2]) }
    }

    @Test func maskVelocityOptionWorksWhereTheZooDefinesVelocities() throws {
        try compare(Registry.make("MountainCar-v0", options: ["mask_velocity": "true"]), Registry.make("MountainCar-v0"),
                    masking: [1]) { .discrete($0 / 20 % 2 * 2) }
        #expect { try Registry.make("Acrobot-v1", options: ["mask_velocity": "true"]) } throws: {
            "\($0)".contains("Acrobot-v1 has no option 'mask_velocity'; its options: max_episode_steps")
        }
        #expect(throws: EnvironmentError.self) { try Registry.make("CartPole-v1", options: ["mask_velocity": "maybe"]) }
    }

    /// The wrapper holds no state: a vector of masked environments snapshots and restores like the plain one.
    @Test func maskedEnvironmentsResumeFromSnapshots() throws {
        let envs = try VectorEnvironment(id: "CartPoleNoVel-v1", count: 3)
        envs.reset(seed: 5)
        for _ in 0..<30 { try envs.step([.discrete(0), .discrete(1), .discrete(1)]) }
        let snapshot = try #require(envs.snapshot())
        let copy = try VectorEnvironment(id: "CartPoleNoVel-v1", count: 3)
        try copy.restore(snapshot)
        for _ in 0..<40 {
            try envs.step([.discrete(1), .discrete(0), .discrete(1)])
            try copy.step([.discrete(1), .discrete(0), .discrete(1)])
            #expect(envs.observations == copy.observations && envs.rewards == copy.rewards)
        }
    }
}
