import Agents
import Environments
import Foundation
import RLCore
import SeededRandom
import Testing
import Training

/// gSDE in the actor-critic policy: noise φ(s)·W fixed between resets, the matching Gaussian, gradients to log_std.
struct StateDependentExplorationTests {
    let space = Space.box(low: [-1, -1], high: [1, 1], shape: [2])

    func policy(seed: UInt64 = 0) -> ActorCriticPolicy {
        var rng = SeededGenerator(seed: seed)
        return ActorCriticPolicy(observationSize: 3, actionSpace: space, policyLayers: [8, 5], valueLayers: [8],
                                 orthogonalInit: false, logStdInit: -0.5, stateDependentExploration: true, using: &rng)
    }

    /// φ(s): the trunk's last hidden features, computed layer by layer.
    func features(_ policy: ActorCriticPolicy, _ x: Tensor) -> Tensor {
        var h = x
        for layer in policy.policyNet.layers.dropLast() { h = layer(h) }
        return h
    }

    @Test func noiseIsFixedBetweenResetsAndDiffersPerEnvironment() {
        let policy = policy()
        #expect(policy.usesStateDependentExploration && policy.stateDependentFeatures == 5)
        #expect(policy.logStd!.shape == [5, 2])
        var rng = SeededGenerator(seed: 1)
        let x = Tensor([0.1, -0.4, 0.7, 0.1, -0.4, 0.7], shape: [2, 3])  // the same state in two environments
        policy.resetNoise(count: 2, using: &rng)
        let first = Tensor.withoutGrad { policy.explore(x, using: &rng).actions.data }
        let again = Tensor.withoutGrad { policy.explore(x, using: &rng).actions.data }
        #expect(first == again, "the same state gives the same action until the noise is reset")
        #expect(first[0..<2] != first[2..<4], "each environment has its own exploration matrix")
        policy.resetNoise(count: 2, using: &rng)
        #expect(Tensor.withoutGrad { policy.explore(x, using: &rng).actions.data } != first)
    }

    @Test func logProbabilityIsTheStateDependentGaussian() throws {
        let policy = policy()
        var rng = SeededGenerator(seed: 2)
        let x = Tensor.normal([4, 3], using: &rng)
        policy.resetNoise(count: 4, using: &rng)
        let (actions, distribution) = Tensor.withoutGrad { policy.explore(x, using: &rng) }
        let logProb = Tensor.withoutGrad { distribution.logProb(actions).data }
        let phi = Tensor.withoutGrad { features(policy, x).data }
        let mean = Tensor.withoutGrad { policy.policyNet(x).data }
        let sigma = policy.logStd!.data.map { Foundation.exp(Double($0)) }
        for i in 0..<4 {
            var expected = 0.0
            for k in 0..<2 {
                var variance = 1e-6
                for j in 0..<5 { variance += Double(phi[i * 5 + j] * phi[i * 5 + j]) * sigma[j * 2 + k] * sigma[j * 2 + k] }
                let z = (Double(actions.data[i * 2 + k]) - Double(mean[i * 2 + k])) / variance.squareRoot()
                expected += -0.5 * z * z - 0.5 * Foundation.log(variance) - 0.5 * Foundation.log(2 * Double.pi)
            }
            #expect(abs(Double(logProb[i]) - expected) < 1e-4 * max(1, abs(expected)), "row \(i)")
        }
    }

    @Test func logStdGradientMatchesFiniteDifferences() throws {
        let policy = policy()
        var rng = SeededGenerator(seed: 3)
        let x = Tensor.normal([6, 3], using: &rng)
        let actions = Tensor.normal([6, 2], using: &rng)
        func objective() -> Tensor {
            guard case let .gaussian(g) = policy.distribution(x) else { fatalError("a Gaussian head") }
            return g.logProb(actions).sum() + g.entropy().sum()
        }
        policy.zeroGrad()
        objective().backward()
        let gradient = try #require(policy.logStd!.grad)
        let h: Float = 1e-2
        for index in [0, 3, 7, 9] {
            let saved = policy.logStd!.data[index]
            policy.logStd!.data[index] = saved + h
            let plus = Tensor.withoutGrad { Double(objective().item) }
            policy.logStd!.data[index] = saved - h
            let minus = Tensor.withoutGrad { Double(objective().item) }
            policy.logStd!.data[index] = saved
            let numeric = (plus - minus) / Double(2 * h)
            #expect(abs(Double(gradient[index]) - numeric) < 2e-2 * max(1, abs(numeric)), "log_std[\(index)]")
        }
        #expect(gradient.contains { $0 != 0 })
    }

    @Test func ppoWithStateDependentExplorationIsDeterministicPerSeed() throws {
        func train() throws -> [Float] {
            var hp = HyperParameters(defaults: PPOAgent.descriptor.defaults)
            try hp.apply(yaml: "use_sde: true\nsde_sample_freq: 4\nn_steps: 64\nbatch_size: 32\nn_epochs: 2\nn_envs: 2",
                         source: "test")
            let agent = try PPOAgent(environment: EnvironmentFactory(id: "Pendulum-v1"), hyperParameters: hp, seed: 5)
            final class Quiet: TrainingContext {
                func episodeFinished(step: Int, episodeReturn: Double, length: Int) {}
                func recordDiagnostics(step: Int, _ values: [String: Double]) throws {}
                func tick(step: Int) throws {}
            }
            try agent.train(totalSteps: 512, context: Quiet())
            return try agent.checkpoint().tensor("log_std", shape: [64, 1]).data
        }
        let a = try train(), b = try train()
        #expect(a == b)
        #expect(a.contains { $0 != 0 })  // log_std moved from its initial 0
    }
}
