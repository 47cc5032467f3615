import Environments
import Foundation
import RLCore
import SeededRandom
import Training

/// Tabular temporal-difference control (Sutton & Barto, ch. 6): Q-learning (off-policy) and SARSA (on-policy),
/// with an ε-greedy behaviour policy whose ε decays linearly over `exploration_fraction` of training.
///
/// For each step: act ε-greedily, observe (r, s'), then
///     Q(s, a) ← Q(s, a) + α [r + γ · target(s') − Q(s, a)]
/// where target(s') = max_a' Q(s', a') for Q-learning and Q(s', a') with a' the next ε-greedy action for SARSA.
/// A terminated step has target 0; a truncated one bootstraps as usual.
public class TabularTDAgent {
    /// Which TD target the agent uses.
    public enum Rule: Sendable { case qLearning, sarsa }

    static func defaults(steps: Double) -> [String: ConfigValue] {
        [
            "n_timesteps": .number(steps),
            "learning_rate": .number(0.1),
            "gamma": .number(0.99),
            "exploration_initial_eps": .number(1.0),
            "exploration_final_eps": .number(0.05),
            "exploration_fraction": .number(0.5),
        ]
    }

    let rule: Rule
    let factory: EnvironmentFactory
    let numStates: Int
    let numActions: Int
    let alpha: Double
    let gamma: Double
    let epsilonStart: Double
    let epsilonEnd: Double
    let explorationFraction: Double
    /// Q-values, row-major `[state, action]`.
    public private(set) var q: [Double]
    public private(set) var stepsDone = 0
    var rng: SeededGenerator
    let seed: UInt64

    init(rule: Rule, environment: EnvironmentFactory, hyperParameters hp: HyperParameters, seed: UInt64) throws {
        self.rule = rule
        factory = environment
        let env = try environment.make()
        guard let nS = env.observationSpace.discreteCount, let nA = env.actionSpace.discreteCount else {
            throw AgentError.unsupportedObservationSpace(agent: rule == .qLearning ? "qlearning" : "sarsa",
                                                         env: environment.id, reason: "tabular methods need Discrete observations and actions")
        }
        numStates = nS
        numActions = nA
        alpha = try hp.double("learning_rate", in: 0...1)
        gamma = try hp.double("gamma", in: 0...1)
        epsilonStart = try hp.double("exploration_initial_eps", in: 0...1)
        epsilonEnd = try hp.double("exploration_final_eps", in: 0...1)
        explorationFraction = try hp.double("exploration_fraction", in: 0...1)
        q = [Double](repeating: 0, count: nS * nA)
        self.seed = seed
        rng = SeededGenerator(seed: seed)
    }

    /// ε after `step` of `totalSteps`: linear from the initial to the final value over the exploration fraction.
    func epsilon(step: Int, totalSteps: Int) -> Double {
        let progress = Double(step) / max(1, explorationFraction * Double(totalSteps))
        return progress >= 1 ? epsilonEnd : epsilonStart + progress * (epsilonEnd - epsilonStart)
    }

    /// The greedy action in `state` (ties go to the lowest index, as NumPy's argmax).
    /// max_a Q(s, a) for the state index held in `observation[0]`.
    public func stateValue(_ observation: [Float]) -> Double {
        let s = min(max(Int(observation[0]), 0), numStates - 1)
        return q[s * numActions + greedy(s)]
    }

    func greedy(_ state: Int) -> Int {
        var best = 0
        for a in 1..<numActions where q[state * numActions + a] > q[state * numActions + best] { best = a }
        return best
    }

    func epsilonGreedy(_ state: Int, epsilon: Double) -> Int {
        rng.nextDouble() < epsilon ? rng.nextInt(below: numActions) : greedy(state)
    }

    public func train(totalSteps: Int, context: TrainingContext) throws {
        let env = try factory.make()
        var state = Int(env.reset(seed: seed &+ UInt64(stepsDone))[0])
        var action = epsilonGreedy(state, epsilon: epsilon(step: stepsDone, totalSteps: totalSteps))
        var episodeReturn = 0.0, episodeLength = 0
        while stepsDone < totalSteps {
            let eps = epsilon(step: stepsDone, totalSteps: totalSteps)
            let result = try env.step(.discrete(action))
            stepsDone += 1
            let next = Int(result.observation[0])
            let nextAction = epsilonGreedy(next, epsilon: eps)

            let target: Double
            if result.terminated {
                target = 0
            } else {
                switch rule {
                case .qLearning: target = q[next * numActions + greedy(next)]
                case .sarsa: target = q[next * numActions + nextAction]
                }
            }
            let i = state * numActions + action
            q[i] += alpha * (result.reward + gamma * target - q[i])

            episodeReturn += result.reward
            episodeLength += 1
            if result.terminated || result.truncated {
                context.episodeFinished(step: stepsDone, episodeReturn: episodeReturn, length: episodeLength)
                try context.recordDiagnostics(step: stepsDone, ["epsilon": eps, "learning_rate": alpha])
                episodeReturn = 0; episodeLength = 0
                state = Int(env.reset()[0])
                action = epsilonGreedy(state, epsilon: eps)
            } else {
                state = next
                action = nextAction
            }
            if stepsDone % 256 == 0 { try context.tick(step: stepsDone) }
        }
        try context.tick(step: stepsDone)
    }

    public func act(_ observation: [Float], deterministic: Bool) -> Action {
        let s = min(max(Int(observation[0]), 0), numStates - 1)
        return .discrete(deterministic ? greedy(s) : epsilonGreedy(s, epsilon: epsilonEnd))
    }

    /// The Q-table `q_table` [states, actions] plus step counter and RNG state for resuming.
    public func checkpoint() throws -> AgentCheckpoint {
        AgentCheckpoint(
            tensors: [(name: "q_table", tensor: Tensor(q.map { Float($0) }, shape: [numStates, numActions]))],
            metadata: [
                "policy": #"[{"type": "table", "tensor": "q_table"}]"#,
                "action": "argmax",
                "observation": #"{"type": "index"}"#,
                "rng_state": rng.stateWords.map(String.init).joined(separator: ","),
                "q_table_f64": q.map { "\($0)" }.joined(separator: ","),
            ])
    }

    public func restore(_ checkpoint: AgentCheckpoint) throws {
        let table = try checkpoint.tensor("q_table", shape: [numStates, numActions])
        // The exact Double table is kept in metadata so a resumed run continues bit for bit.
        if let exact = checkpoint.metadata["q_table_f64"]?.split(separator: ",").compactMap({ Double($0) }),
           exact.count == q.count {
            q = exact
        } else {
            q = table.data.map(Double.init)
        }
        if let words = checkpoint.metadata["rng_state"]?.split(separator: ",").compactMap({ UInt64($0) }),
           let restored = SeededGenerator(stateWords: words) {
            rng = restored
        }
        stepsDone = Int(checkpoint.metadata["step"] ?? "") ?? 0
    }
}

/// Watkins' Q-learning: the off-policy TD target max_a' Q(s', a').
public final class QLearningAgent: TabularTDAgent, Agent, ValueEstimating {
    public static let descriptor = AgentDescriptor(
        name: "qlearning", summary: "Tabular Q-learning (off-policy TD control) with ε-greedy exploration",
        actionKinds: [.discrete], needsDiscreteObservations: true,
        defaults: TabularTDAgent.defaults(steps: 200_000), diagnostics: ["epsilon", "learning_rate"],
        defaultEnvironment: "FrozenLake-v1")

    public required init(environment: EnvironmentFactory, hyperParameters: HyperParameters, seed: UInt64) throws {
        try super.init(rule: .qLearning, environment: environment, hyperParameters: hyperParameters, seed: seed)
    }
}

/// SARSA: the on-policy TD target Q(s', a') of the action actually taken next.
public final class SARSAAgent: TabularTDAgent, Agent, ValueEstimating {
    public static let descriptor = AgentDescriptor(
        name: "sarsa", summary: "Tabular SARSA (on-policy TD control) with ε-greedy exploration",
        actionKinds: [.discrete], needsDiscreteObservations: true,
        defaults: TabularTDAgent.defaults(steps: 200_000), diagnostics: ["epsilon", "learning_rate"],
        defaultEnvironment: "CliffWalking-v1")

    public required init(environment: EnvironmentFactory, hyperParameters: HyperParameters, seed: UInt64) throws {
        try super.init(rule: .sarsa, environment: environment, hyperParameters: hyperParameters, seed: seed)
    }
}
