import Imaging
import SeededRandom

/// An action given to `Environment.step`.
///
/// Discrete environments take `.discrete(index)`; continuous ones take `.continuous(values)`
/// with one value per action dimension (out-of-range values are clipped exactly as Gymnasium clips them).
public enum Action: Sendable, Hashable {
    case discrete(Int)
    case continuous([Float])
}

/// What `step` reports besides the observation (Gymnasium's `reward, terminated, truncated`).
public struct StepOutcome: Sendable, Equatable {
    public var reward: Double
    /// The episode reached a terminal state of the MDP (no bootstrapping past it).
    public var terminated: Bool
    /// The episode was cut short from outside the MDP (time limit); bootstrap from the observation.
    public var truncated: Bool
    public init(reward: Double, terminated: Bool, truncated: Bool) {
        self.reward = reward; self.terminated = terminated; self.truncated = truncated
    }
    /// True when the episode is over for either reason.
    public var done: Bool { terminated || truncated }
}

/// The result of a convenience `step(_:)` call: Gymnasium's `(obs, reward, terminated, truncated, info)`.
public struct StepResult: Sendable, Equatable {
    public var observation: [Float]
    public var reward: Double
    public var terminated: Bool
    public var truncated: Bool
    public var info: [String: Double]
    public init(observation: [Float], reward: Double, terminated: Bool, truncated: Bool, info: [String: Double] = [:]) {
        self.observation = observation; self.reward = reward
        self.terminated = terminated; self.truncated = truncated; self.info = info
    }
}

/// Errors environments report instead of crashing.
public enum EnvironmentError: Error, CustomStringConvertible, Equatable {
    case unknownID(String, known: [String])
    case invalidAction(String)
    case stepAfterEnd(String)
    case stepBeforeReset(String)
    case invalidOption(String)
    case invalidMap(String)
    case invalidState(String)

    public var description: String {
        switch self {
        case let .unknownID(id, known): "unknown environment id '\(id)'; known ids: \(known.joined(separator: ", "))"
        case let .invalidAction(m): "invalid action: \(m)"
        case let .stepAfterEnd(id): "\(id): step() called after the episode ended; call reset() first"
        case let .stepBeforeReset(id): "\(id): step() called before reset(); call reset() first"
        case let .invalidOption(m): "invalid option: \(m)"
        case let .invalidMap(m): "invalid grid map: \(m)"
        case let .invalidState(m): "invalid state: \(m)"
        }
    }
}

/// A Gymnasium-style environment.
///
/// Observations are flat `Float` vectors of `observationSpace.flatCount` values (a `Discrete`
/// observation is one value holding the integer index). Two ways to step:
/// - `step(_:)` returns a `StepResult` with a fresh observation array (convenient);
/// - `step(_:into:)` writes the observation into a caller-owned buffer and allocates nothing
///   (vector environments, benchmarks and agents use it).
/// Stepping after `terminated`/`truncated` without `reset` throws `EnvironmentError.stepAfterEnd`.
public protocol Environment: AnyObject {
    /// The registry entry this environment was made from (id, time limit, reward threshold), if any.
    var spec: EnvSpec? { get set }
    var observationSpace: Space { get }
    var actionSpace: Space { get }

    /// Starts a new episode. A non-nil `seed` reseeds the environment's generator (Gymnasium semantics:
    /// a `nil` seed continues the current stream). Writes the first observation into `observation`.
    func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>)

    /// Applies `action`, writes the next observation into `observation` and returns the outcome.
    func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome

    /// Draws the current state as Gymnasium's `render_mode="rgb_array"` would.
    func render() -> RGBImage
}

extension Environment {
    /// Starts a new episode and returns its first observation.
    @discardableResult
    public func reset(seed: UInt64? = nil) -> [Float] {
        var obs = [Float](repeating: 0, count: observationSpace.flatCount)
        obs.withUnsafeMutableBufferPointer { reset(seed: seed, into: $0) }
        return obs
    }

    /// Applies `action` and returns observation, reward, terminated and truncated.
    public func step(_ action: Action) throws -> StepResult {
        var obs = [Float](repeating: 0, count: observationSpace.flatCount)
        let outcome = try obs.withUnsafeMutableBufferPointer { try step(action, into: $0) }
        return StepResult(observation: obs, reward: outcome.reward,
                          terminated: outcome.terminated, truncated: outcome.truncated)
    }

    /// Discrete-action shorthand for `step(.discrete(action))`.
    public func step(_ action: Int) throws -> StepResult { try step(.discrete(action)) }
}
