import Environments
import Foundation
import RLCore
import Training

/// The kinds of action space an agent can act in.
public enum ActionKind: String, Sendable, CaseIterable {
    case discrete, continuous

    /// The kind of `space`.
    public init(of space: Space) {
        switch space {
        case .discrete: self = .discrete
        case .box: self = .continuous
        }
    }
}

/// What the catalog and `rlbench list agents` know about an agent without building one.
public struct AgentDescriptor: Sendable {
    /// The key of a run's length, which `--steps` sets.
    public static let timestepsKey = "n_timesteps"

    /// The command-line name (`ppo`, `dqn`, `qlearning`, ...).
    public var name: String
    /// One line for listings.
    public var summary: String
    public var actionKinds: Set<ActionKind>
    /// Whether it needs a `Discrete` observation space (tabular methods).
    public var needsDiscreteObservations: Bool
    /// Every hyperparameter it accepts (rl-baselines3-zoo key names), with its built-in default and one line of help
    /// each, in listing order: its `Config`'s declaration.
    public var defaults: [String: ConfigValue]
    public var help: [(key: String, help: String)]
    /// The diagnostics it reports after updates, in CSV column order.
    public var diagnostics: [String]
    /// The environment `rlbench run <agent>` trains on when no `--env` is given.
    public var defaultEnvironment: String
    /// The config's `n_timesteps` in layered settings (all of them decoded, so that a bad value is an error here).
    public let timesteps: @Sendable (HyperParameters) throws -> Int

    public init<C: AgentConfig>(name: String, summary: String, config: C.Type, actionKinds: Set<ActionKind>,
                                needsDiscreteObservations: Bool = false, diagnostics: [String],
                                defaultEnvironment: String = "CartPole-v1") {
        self.name = name; self.summary = summary; self.actionKinds = actionKinds
        self.needsDiscreteObservations = needsDiscreteObservations
        defaults = C.defaults
        help = C.help
        timesteps = { try C.timesteps(in: $0) }
        self.diagnostics = diagnostics; self.defaultEnvironment = defaultEnvironment
    }
}

/// How an agent makes the environments it trains and evaluates on.
public struct EnvironmentFactory: Sendable {
    public var id: String
    public var options: [String: String]
    public init(id: String, options: [String: String] = [:]) { self.id = id; self.options = options }

    /// A new, registered environment (time limit applied).
    public func make() throws -> Environment { try Registry.make(id, options: options) }
}

/// A learning agent. Each algorithm is one file that reads top to bottom, like the paper: its `train`
/// owns the loop and calls the `TrainingContext` hooks; shared pieces (buffers, networks, evaluation)
/// live in one place each.
public protocol Agent: AnyObject {
    static var descriptor: AgentDescriptor { get }

    /// Builds a fresh agent for the environment made by `environment`, seeded by `seed`, from the layered settings
    /// `hyperParameters` (which it decodes into its typed `Config`). Throws `ConfigError` for bad hyperparameters.
    init(environment: EnvironmentFactory, hyperParameters: HyperParameters, seed: UInt64) throws

    /// Environment steps taken so far (continues across `restore`).
    var stepsDone: Int { get }

    /// Trains until `stepsDone` reaches `totalSteps`, reporting through `context`.
    func train(totalSteps: Int, context: TrainingContext) throws

    /// The action for one observation (`deterministic`: greedy/mode, for evaluation).
    func act(_ observation: [Float], deterministic: Bool) -> Action

    /// The actions for `count` observations laid out row after row, as `act` chooses each (one network pass for
    /// the batch where the agent has a network). The default calls `act` row by row.
    func act(batch observations: [Float], count: Int, deterministic: Bool) -> [Action]

    /// Everything needed to act (and to resume): named tensors plus agent-specific metadata
    /// (the runner adds agent, environment, hyperparameters, step and seed).
    func checkpoint() throws -> AgentCheckpoint

    /// Restores a state written by `checkpoint()`.
    func restore(_ checkpoint: AgentCheckpoint) throws

    /// What `train` holds besides the checkpoint (its environments, the episodes under way, a replay buffer; see
    /// `TrainingState`), as it stands at a `tick` or after `train` returned. Nil before training, or when it cannot
    /// be captured (an environment without snapshots): a run resumed from the checkpoint then starts new episodes.
    func trainingState() -> TrainingState?

    /// Makes the next `train` (towards `totalSteps`) continue from `state`, saved with the checkpoint just restored,
    /// instead of starting new episodes. Throws, changing nothing, when `state` does not fit the agent.
    func resumeTraining(from state: TrainingState, totalSteps: Int) throws
}

extension Agent {
    /// Agents that save no training state: a resumed run starts new episodes.
    public func trainingState() -> TrainingState? { nil }

    public func resumeTraining(from state: TrainingState, totalSteps: Int) throws {
        throw TrainingStateError("\(Self.descriptor.name) saves no training state")
    }

    public func act(batch observations: [Float], count: Int, deterministic: Bool) -> [Action] {
        let size = count == 0 ? 0 : observations.count / count
        return (0..<count).map { act(Array(observations[($0 * size)..<(($0 + 1) * size)]), deterministic: deterministic) }
    }
}

/// An agent whose actions depend on the episode so far (a recurrent policy). It keeps a memory for each row of
/// `act(batch:count:deterministic:)` (one row for `act(_:deterministic:)`); whoever plays episodes says where they begin
/// and which go on. A call with another number of rows than it remembers begins that many new episodes.
public protocol RecurrentAgent: Agent {
    /// Forgets everything: the next call acts on the first step of `count` episodes, row by row.
    func beginEpisodes(count: Int)
    /// Keeps the memories of the rows `rows` only, in that order (the episodes still running).
    func continueEpisodes(_ rows: [Int])
}

/// An agent that can say how good a state is; viewers draw it as a heat map over grid worlds.
public protocol ValueEstimating: Agent {
    /// V(s) for actor-critic agents, max_a Q(s, a) for value-based ones, for one observation as `act` takes it.
    func stateValue(_ observation: [Float]) -> Double
}

/// What an agent saves: named tensors and string metadata (the safetensors content).
public struct AgentCheckpoint {
    public var tensors: [(name: String, tensor: Tensor)]
    public var metadata: CheckpointMetadata
    public init(tensors: [(name: String, tensor: Tensor)], metadata: CheckpointMetadata = CheckpointMetadata()) {
        self.tensors = tensors; self.metadata = metadata
    }

    /// Decodes checkpoint bytes in the safetensors format (a policy snapshot, a file's contents).
    public init(safetensors data: Data) throws {
        let decoded = try SafeTensors.decode(data)
        self.init(tensors: decoded.tensors, metadata: CheckpointMetadata(decoded.metadata))
    }

    /// The tensor named `name`, with its shape checked; errors name what is wrong.
    public func tensor(_ name: String, shape: [Int]? = nil) throws -> Tensor {
        guard let t = tensors.first(where: { $0.name == name })?.tensor else {
            throw AgentError.badCheckpoint("tensor '\(name)' is missing")
        }
        if let shape, t.shape != shape {
            throw AgentError.badCheckpoint("tensor '\(name)' has shape \(t.shape), expected \(shape)")
        }
        return t
    }
}

/// The hooks an algorithm's training loop calls.
public protocol TrainingContext: AnyObject {
    /// Records a finished episode of the training environments.
    func episodeFinished(step: Int, episodeReturn: Double, length: Int)
    /// Records the diagnostics of an update (losses, ε, learning rate, entropy, ...). Throws
    /// `AgentError.nonFinite` when a value is NaN or infinite, which stops training.
    func recordDiagnostics(step: Int, _ values: [String: Double]) throws
    /// Called by the loop after environment steps: draws progress, writes periodic checkpoints, and throws
    /// `AgentError.interrupted` (after saving a checkpoint) when the user asked to stop.
    func tick(step: Int) throws
}

/// Errors of agents and runs.
public enum AgentError: Error, CustomStringConvertible {
    case unknownAgent(String, known: [String])
    case unsupportedActionSpace(agent: String, env: String, space: String, supported: [String])
    case unsupportedObservationSpace(agent: String, env: String, reason: String)
    case badCheckpoint(String)
    case checkpointMismatch(String)
    case nonFinite(step: Int, quantity: String)
    case interrupted(step: Int)
    /// A run folder that cannot be used as asked (nothing to resume in it, or a run already in it).
    case runFolder(String)
    /// An option out of its range (the evaluation's episodes).
    case badOption(String)

    public var description: String {
        switch self {
        case let .unknownAgent(name, known): "unknown agent '\(name)'; known agents: \(known.joined(separator: ", "))"
        case let .unsupportedActionSpace(agent, env, space, supported):
            "\(agent) cannot act in \(env): its action space is \(space), but \(agent) supports \(supported.joined(separator: " and ")) actions"
        case let .unsupportedObservationSpace(agent, env, reason): "\(agent) cannot learn \(env): \(reason)"
        case let .badCheckpoint(m): "bad checkpoint: \(m)"
        case let .checkpointMismatch(m): "checkpoint mismatch: \(m)"
        case let .nonFinite(step, quantity): "training diverged: \(quantity) became NaN or infinite at step \(step)"
        case let .interrupted(step): "interrupted at step \(step)"
        case let .runFolder(m): m
        case let .badOption(m): m
        }
    }
}
