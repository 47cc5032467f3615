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

    /// The settings of Q-learning and SARSA.
    public struct Config: AgentConfig {
        public var timesteps = 200_000
        /// α, the step size of the TD update.
        public var learningRate = 0.1
        public var gamma = 0.99
        public var exploration = ExplorationSettings(fraction: 0.5, final: 0.05)
        public init() {}

        public static var fields: [ConfigField<Config>] {
            [.timesteps(\.timesteps), .double("learning_rate", \.learningRate, in: 0...1, "step size α of the TD update"),
             .gamma(\.gamma)] + ExplorationSettings.fields(\.exploration)
        }
    }

    let rule: Rule
    let factory: EnvironmentFactory
    let config: Config
    let numStates: Int
    let numActions: Int
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
        config = try Config(hp)
        q = [Double](repeating: 0, count: nS * nA)
        self.seed = seed
        rng = SeededGenerator(seed: seed)
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

    /// What `train` keeps from step to step — the environment, its state, the action chosen for it, the episode under
    /// way — held on the agent so that a checkpoint can save it (`trainingState()`) and a resumed run continue it.
    final class Session {
        let env: Environment
        var state: Int, action: Int
        var episodeReturn = 0.0, episodeLength = 0

        init(env: Environment, state: Int, action: Int) { self.env = env; self.state = state; self.action = action }

        /// The session `save()` saved in `saved`, continued on `env` (with `numStates` states and `numActions` actions).
        init(env: Environment, numStates: Int, numActions: Int, from saved: TrainingState) throws {
            try env.restore(try saved.snapshot("environment"))
            var reader = try saved.reader("episode")
            state = try reader.int(); action = try reader.int()
            episodeReturn = try reader.double(); episodeLength = try reader.int()
            try reader.finish()
            guard (0..<numStates).contains(state), (0..<numActions).contains(action) else {
                throw TrainingStateError("its state \(state) or action \(action) is outside \(numStates) states and \(numActions) actions")
            }
            self.env = env
        }

        /// Takes the training loop's running values (before a checkpoint may save them).
        func keep(state: Int, action: Int, episodeReturn: Double, episodeLength: Int) {
            self.state = state; self.action = action
            self.episodeReturn = episodeReturn; self.episodeLength = episodeLength
        }

        /// The session as a training state; nil when the environment cannot be captured.
        func save() -> TrainingState? {
            guard let snapshot = env.snapshot() else { return nil }
            var saved = TrainingState()
            saved.words["environment"] = snapshot.words
            var episode = SnapshotWriter()
            episode.write(state); episode.write(action)
            episode.write(episodeReturn); episode.write(episodeLength)
            saved.words["episode"] = episode.words
            return saved
        }
    }

    private var session: Session?

    public func trainingState() -> TrainingState? { session?.save() }

    public func resumeTraining(from state: TrainingState, totalSteps: Int) throws {
        session = try Session(env: factory.make(), numStates: numStates, numActions: numActions, from: state)
    }

    public func train(totalSteps: Int, context: TrainingContext) throws {
        let alpha = config.learningRate, gamma = config.gamma
        // A new session starts its environment from the seed and steps done; a kept or resumed one goes on.
        if session == nil {
            let env = try factory.make()
            let state = Int(env.reset(seed: seed &+ UInt64(stepsDone))[0])
            session = Session(env: env, state: state,
                              action: epsilonGreedy(state, epsilon: config.exploration.epsilon(step: stepsDone, total: totalSteps)))
        }
        let session = self.session!, env = session.env
        var state = session.state, action = session.action
        var episodeReturn = session.episodeReturn, episodeLength = session.episodeLength
        while stepsDone < totalSteps {
            let eps = config.exploration.epsilon(step: stepsDone, total: totalSteps)
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
            if stepsDone % 256 == 0 {
                session.keep(state: state, action: action, episodeReturn: episodeReturn, episodeLength: episodeLength)
                try context.tick(step: stepsDone)
            }
        }
        session.keep(state: state, action: action, episodeReturn: episodeReturn, episodeLength: episodeLength)
        try context.tick(step: stepsDone)
    }

    public func act(_ observation: [Float], deterministic: Bool) -> Action {
        let s = min(max(Int(observation[0]), 0), numStates - 1)
        return .discrete(deterministic ? greedy(s) : epsilonGreedy(s, epsilon: config.exploration.final))
    }

    /// The Q-table `q_table` [states, actions] plus step counter and RNG state for resuming.
    public func checkpoint() throws -> AgentCheckpoint {
        var meta = CheckpointMetadata()
        meta[.policy] = #"[{"type": "table", "tensor": "q_table"}]"#
        meta[.action] = "argmax"
        meta[.observation] = #"{"type": "index"}"#
        meta[.rngState] = rng
        meta[.qTable] = q
        return AgentCheckpoint(tensors: [(name: "q_table", tensor: Tensor(q.map { Float($0) }, shape: [numStates, numActions]))],
                               metadata: meta)
    }

    public func restore(_ checkpoint: AgentCheckpoint) throws {
        let table = try checkpoint.tensor("q_table", shape: [numStates, numActions])
        // The exact Double table is kept in metadata so a resumed run continues bit for bit.
        if let exact = checkpoint.metadata[.qTable], exact.count == q.count {
            q = exact
        } else {
            q = table.data.map(Double.init)
        }
        rng = try checkpoint.metadata.value(.rngState)
        stepsDone = try checkpoint.metadata.value(.step)
    }
}

/// Watkins' Q-learning: the off-policy TD target max_a' Q(s', a').
public final class QLearningAgent: TabularTDAgent, Agent, ValueEstimating {
    public static let descriptor = AgentDescriptor(
        name: "qlearning", summary: "Tabular Q-learning (off-policy TD control) with ε-greedy exploration",
        config: Config.self, actionKinds: [.discrete], needsDiscreteObservations: true, diagnostics: ["epsilon", "learning_rate"],
        defaultEnvironment: "FrozenLake-v1")

    public required init(environment: EnvironmentFactory, hyperParameters: HyperParameters, seed: UInt64) throws {
        try super.init(rule: .qLearning, environment: environment, hyperParameters: hyperParameters, seed: seed)
    }
}

/// SARSA: the on-policy TD target Q(s', a') of the action actually taken next.
public final class SARSAAgent: TabularTDAgent, Agent, ValueEstimating {
    public static let descriptor = AgentDescriptor(
        name: "sarsa", summary: "Tabular SARSA (on-policy TD control) with ε-greedy exploration",
        config: Config.self, actionKinds: [.discrete], needsDiscreteObservations: true, diagnostics: ["epsilon", "learning_rate"],
        defaultEnvironment: "CliffWalking-v1")

    public required init(environment: EnvironmentFactory, hyperParameters: HyperParameters, seed: UInt64) throws {
        try super.init(rule: .sarsa, environment: environment, hyperParameters: hyperParameters, seed: seed)
    }
}
