import Agents
import Environments
import Foundation
import RLCore
import SeededRandom
import TestSupport
import Testing
import Training

/// Recurrent PPO: the LSTM policy's memory, the sequence minibatches and their gradients.
@Suite struct RecurrentPPOTests {
    /// A training context that records nothing.
    final class Silent: TrainingContext {
        func episodeFinished(step: Int, episodeReturn: Double, length: Int) {}
        func recordDiagnostics(step: Int, _ values: [String: Double]) throws {}
        func tick(step: Int) throws {}
    }

    func agent(_ settings: [String], env: String = "CartPoleNoVel-v1", seed: UInt64 = 0) throws -> RecurrentPPOAgent {
        var hp = HyperParameters(defaults: RecurrentPPOAgent.descriptor.defaults)
        for s in settings { try hp.apply(override: s) }
        return try RecurrentPPOAgent(environment: EnvironmentFactory(id: env), hyperParameters: hp, seed: seed)
    }

    /// A tiny policy for CartPoleNoVel-v1's two-action, four-value spaces.
    func policy(_ kwargs: PolicyKwargs, seed: UInt64 = 1) throws -> RecurrentActorCriticPolicy {
        var rng = SeededGenerator(seed: seed)
        return try RecurrentActorCriticPolicy(for: Registry.make("CartPoleNoVel-v1"), kwargs: kwargs, using: &rng)
    }

    func kwargs(hidden: Int = 3, layers: Int = 1, shared: Bool = false, critic: Bool = true) -> PolicyKwargs {
        var k = PolicyKwargs(netArch: [4], activation: .tanh, orthoInit: false)
        (k.lstmHiddenSize, k.lstmLayers, k.sharedLSTM, k.criticLSTM) = (hidden, layers, shared, critic)
        return k
    }

    /// The memory of an environment whose episode begins is zero, the others' is kept; the step after it acts as a
    /// fresh policy does on the same observation, and unlike the step from the kept memory.
    @Test func hiddenStatesResetAtEpisodeStarts() throws {
        let p = try policy(kwargs(hidden: 5, layers: 2))
        var rng = SeededGenerator(seed: 2)
        p.beginRollouts(count: 2)
        let obs = Tensor([0.1, 0, -0.05, 0, -0.2, 0, 0.03, 0], shape: [2, 4])
        for _ in 0..<3 { _ = p.rolloutStep(obs, using: &rng) }
        let before = p.rolloutMemory
        #expect(before.actor.h.contains { $0 != 0 } && before.critic!.c.contains { $0 != 0 })
        p.episodesBegin([true, false])
        let after = p.rolloutMemory
        #expect(after.actor.row(0).allSatisfy { $0 == 0 } && after.critic!.row(0).allSatisfy { $0 == 0 })
        #expect(after.actor.row(1) == before.actor.row(1) && after.critic!.row(1) == before.critic!.row(1))

        let values = p.rolloutStep(obs, using: &rng).values.data
        let fresh = try policy(kwargs(hidden: 5, layers: 2))
        fresh.beginRollouts(count: 2)
        let freshValues = fresh.rolloutStep(obs, using: &rng).values.data
        #expect(values[0] == freshValues[0], "an episode's first step sees no earlier step")
        #expect(values[1] != freshValues[1], "a running episode remembers")
    }

    /// The sequences a minibatch runs through the LSTMs (from the states recorded at their first steps, cut at episode
    /// ends and at the chunk's edges, padded at their ends) give exactly the log-probabilities and values the rollout
    /// computed one step at a time: for each critic form.
    @Test(arguments: [(false, true), (true, false), (false, false)])
    func sequencesReproduceTheRollout(shared: Bool, critic: Bool) throws {
        let a = try agent(["n_envs=3", "n_steps=70", "batch_size=50", "policy_kwargs.lstm_hidden_size=8",
                           "policy_kwargs.n_lstm_layers=2", "policy_kwargs.shared_lstm=\(shared)",
                           "policy_kwargs.enable_critic_lstm=\(critic)"])
        a.policy.beginRollouts(count: 3)
        let collector = try RolloutCollector(factory: a.factory, count: 3, seed: 4, policy: a.policy, normalizer: nil)
        var buffer = RolloutBuffer(numSteps: 70, numEnvs: 3, observationSize: 4, actionSize: 1)
        var steps = 0, rng = SeededGenerator(seed: 9)
        // Two rollouts, so that the second starts mid-episode from carried states.
        for _ in 0..<2 {
            a.policy.startRecording()
            _ = try collector.collect(into: &buffer, stepsDone: &steps, rng: &rng, context: Silent())
        }
        let memories = a.policy.takeRecordedMemory()
        #expect(buffer.valid.contains(0), "some episodes ended inside the rollout")
        var covered = 0, sequences = 0
        for minibatch in SequenceMinibatch.epoch(of: buffer, batchSize: 50, using: &rng) {
            let batch = RolloutBatch(buffer, rows: minibatch.rows)
            let s = minibatch.padded(buffer, memories: memories, policy: a.policy)
            let logProb = a.policy.distribution(sequences: s.observations, start: s.actorStart, rows: s.steps).logProb(batch.actions)
            let values = a.policy.value(sequences: s.observations, actorStart: s.actorStart, criticStart: s.criticStart, rows: s.steps)
            for i in 0..<minibatch.rows.count {
                #expect(abs(logProb.data[i] - batch.oldLogProbs.data[i]) < 1e-5, "row \(minibatch.rows[i])")
                #expect(abs(values.data[i] - batch.oldValues.data[i]) < 1e-5, "row \(minibatch.rows[i])")
            }
            covered += minibatch.rows.count
            sequences += minibatch.sequences.count
        }
        #expect(covered == buffer.valid.filter { $0 != 0 }.count, "every transition once")
        #expect(sequences > 6, "cut at episode ends and chunk edges")
    }

    /// Backpropagation through time: the gradients of a sequence loss (log-probabilities and values over padded
    /// sequences from non-zero start states) match central finite differences, for the LSTMs' weights and the heads.
    @Test func sequenceLossGradientsMatchFiniteDifferences() throws {
        let p = try policy(kwargs(hidden: 3, layers: 2), seed: 5)
        var rng = SeededGenerator(seed: 6)
        let s = 2, t = 4
        let x = Tensor((0..<(s * t * 4)).map { _ in Float.random(in: -1...1, using: &rng) }, shape: [s, t, 4])
        var start = p.emptyMemory(rows: s), criticStart = p.emptyMemory(rows: s)
        for i in start.h.indices { start.h[i] = Float.random(in: -0.5...0.5, using: &rng); start.c[i] = Float.random(in: -0.5...0.5, using: &rng) }
        for i in criticStart.h.indices { criticStart.h[i] = Float.random(in: -0.5...0.5, using: &rng) }
        let rows = [0, 1, 2, 3, 4, 5]  // the second sequence is 2 steps long, padded to 4
        let actions = Tensor([0, 1, 1, 0, 1, 0], shape: [6, 1])
        let weights = Tensor([0.3, -0.7, 1.1, 0.2, -0.4, 0.9], shape: [6])
        func loss() -> Tensor {
            let logProb = p.distribution(sequences: x, start: start, rows: rows).logProb(actions)
            let v = p.value(sequences: x, actorStart: start, criticStart: criticStart, rows: rows)
            return (logProb * weights).sum() + (v * v).sum() * 0.5
        }
        for (_, param) in p.namedParameters() { param.grad = nil }
        loss().backward()
        var checked = 0
        for (name, param) in p.namedParameters() where name.contains("lstm") || name.hasPrefix("pi.0") {
            let analytic = try #require(param.grad, "\(name) has a gradient")
            for i in stride(from: 0, to: param.count, by: max(1, param.count / 5)) {
                let saved = param.data[i], h: Float = 1e-2
                param.data[i] = saved + h
                let plus = Tensor.withoutGrad { loss().item }
                param.data[i] = saved - h
                let minus = Tensor.withoutGrad { loss().item }
                param.data[i] = saved
                let numeric = (plus - minus) / (2 * h)
                #expect(abs(numeric - analytic[i]) <= 2e-3 + 2e-2 * abs(numeric), "\(name)[\(i)]: \(numeric) vs \(analytic[i])")
                checked += 1
            }
        }
        #expect(checked > 30)
    }

    /// The acting memory follows each episode: a batch of episodes played side by side acts as each played alone.
    @Test func actingCarriesMemoryPerEpisode() throws {
        let a = try agent(["policy_kwargs.lstm_hidden_size=6"])
        let obs: [[Float]] = [[0.01, 0, 0.02, 0], [-0.03, 0, 0.04, 0], [0.05, 0, -0.01, 0]]
        a.beginEpisodes(count: 3)
        var batched: [[Action]] = []
        for _ in 0..<4 { batched.append(a.act(batch: obs.flatMap { $0 }, count: 3, deterministic: true)) }
        a.continueEpisodes([2])
        let kept = a.act(batch: obs[2], count: 1, deterministic: true)
        for e in 0..<3 {
            a.beginEpisodes(count: 1)
            let alone = (0..<4).map { _ in a.act(obs[e], deterministic: true) }
            #expect(alone == batched.map { $0[e] })
            if e == 2 { #expect(kept[0] == a.act(obs[e], deterministic: true)) }
        }
    }

    @Test func badPolicyKwargsAreRefused() throws {
        #expect(throws: ConfigError.self) { try agent(["policy_kwargs.shared_lstm=true"]) }
        #expect(throws: ConfigError.self) { try agent(["policy_kwargs.lstm_hidden_size=0"]) }
        #expect(throws: ConfigError.self) { try agent(["policy_kwargs.n_lstm_layers=1.5"]) }
        #expect(throws: ConfigError.self) { try agent(["use_sde=true"]) }
        var hp = HyperParameters(defaults: PPOAgent.descriptor.defaults)
        #expect(throws: ConfigError.self) { try hp.apply(override: "policy_kwargs.lstm_hidden_size=8"); _ = try PPOAgent.Config(hp) }
    }

    /// A checkpoint describes the policy for a script to rebuild it: first in `policy`, the actor's LSTM as
    /// `torch.nn.LSTM` takes it (sizes, gate order, its tensors under torch's names and shapes); in `hyperparameters`,
    /// sb3-contrib's recurrent `policy_kwargs`, whose critic form says which critic tensors the file holds.
    @Test(arguments: [(false, true), (true, false), (false, false)])
    func checkpointDescribesThePolicy(shared: Bool, critic: Bool) throws {
        var options = RunOptions(agent: "recurrent-ppo", environment: "CartPoleNoVel-v1", outputDirectory: Scratch.directory("recurrent-meta"))
        options.steps = 8
        options.overrides = ["n_envs=1", "n_steps=8", "batch_size=8", "n_epochs=1", "policy_kwargs.lstm_hidden_size=6",
                             "policy_kwargs.n_lstm_layers=2", "policy_kwargs.shared_lstm=\(shared)", "policy_kwargs.enable_critic_lstm=\(critic)"]
        options.evaluationEpisodes = 0
        options.progress = .quiet
        let file = try SafeTensors.read(from: try TrainingRun(options).run().finalCheckpoint)
        let shapes = Dictionary(file.tensors.map { ($0.name, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
        let meta = file.metadata

        let policy = try #require(try JSONSerialization.jsonObject(with: Data((meta["policy"] ?? "").utf8)) as? [[String: Any]])
        let lstm = policy[0]
        #expect(lstm["type"] as? String == "lstm" && lstm["input_size"] as? Int == 4 && lstm["hidden_size"] as? Int == 6
                && lstm["num_layers"] as? Int == 2 && lstm["gates"] as? [String] == ["i", "f", "g", "o"], "\(lstm)")
        for l in 0..<2 {
            for (key, shape) in [("weight_ih_l\(l)", [24, l == 0 ? 4 : 6]), ("weight_hh_l\(l)", [24, 6]), ("bias_ih_l\(l)", [24]),
                                 ("bias_hh_l\(l)", [24])] {
                #expect(lstm[key] as? String == "lstm_actor.\(key)" && shapes["lstm_actor.\(key)"] == shape, "\(key): \(lstm)")
            }
        }
        #expect(policy.dropFirst().first?["weight"] as? String == "pi.0.weight" && shapes["pi.0.weight"] == [64, 6])

        let hyperparameters = try JSONSerialization.jsonObject(with: Data((meta["hyperparameters"] ?? "").utf8)) as? [String: Any]
        let kwargs = try #require(hyperparameters?["policy_kwargs"] as? [String: Any])
        #expect(kwargs["lstm_hidden_size"] as? Int == 6 && kwargs["n_lstm_layers"] as? Int == 2
                && kwargs["shared_lstm"] as? Bool == shared && kwargs["enable_critic_lstm"] as? Bool == critic, "\(kwargs)")
        #expect((shapes["lstm_critic.weight_ih_l1"] != nil) == critic)
        #expect((shapes["critic.weight"] != nil) == (!shared && !critic))
    }
}
