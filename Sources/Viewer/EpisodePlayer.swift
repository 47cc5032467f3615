import Agents
import Environments
import Foundation
import Imaging
import Training

/// Plays episodes of an environment with an agent's greedy policy, one step per frame, for a live view: the
/// display environment of `rlbench run --view` and the game of `rlbench play`.
///
/// During training the player follows a `LatestValue<Data>` of policy snapshots (safetensors bytes published by
/// `TrainingRun.onPolicySnapshot`): it restores the newest one into its own copy of the agent, so it never touches
/// the agent being trained. Over a grid world with a discrete observation space it overlays each cell's value
/// (max Q or V) as a heat map and the greedy action as an arrow, recomputed whenever the policy changes.
///
/// Use a player from one thread only (the window's).
public final class EpisodePlayer {
    public let environment: Environment
    /// The agent acting (the display copy while training).
    public private(set) var agent: Agent
    /// Episodes started so far.
    public private(set) var episode = 0
    /// The return collected in the current episode so far.
    public private(set) var episodeReturn = 0.0
    /// Returns of the finished episodes, in order.
    public private(set) var returns: [Double] = []
    /// The training step of the policy shown (from the newest snapshot), if known.
    public private(set) var policyStep: Int?

    private let snapshots: LatestValue<Data>?
    private var seenSnapshot: UInt64 = 0
    private var seed: UInt64
    private var observation: [Float]
    private var needsReset = true
    private var overlay: GridOverlay?
    private var overlayIsStale = true

    /// A player for `agent` on `environment`; episode `k` is reset with seed `seed + k`, so a replay shows the
    /// same episodes. With `snapshots`, the agent's parameters follow the newest snapshot published there.
    public init(environment: Environment, agent: Agent, seed: UInt64, snapshots: LatestValue<Data>? = nil) {
        self.environment = environment
        self.agent = agent
        self.seed = seed
        self.snapshots = snapshots
        observation = [Float](repeating: 0, count: environment.observationSpace.flatCount)
    }

    /// The frame source a `LiveViewLoop` drives: one environment step per frame; `R` restarts the episode.
    public var frameSource: FrameSource {
        FrameSource(nextFrame: { [unowned self] in try self.nextFrame() }, restart: { [unowned self] in self.restart() })
    }

    /// Whether the current episode has ended (its last frame is on screen; the next frame starts a new one).
    public var episodeEnded: Bool { needsReset && episode > 0 }

    /// Advances one step and returns the picture: the first frame of a new episode after the previous one ended,
    /// otherwise the state after the agent's greedy action.
    public func nextFrame() throws -> RGBImage {
        try followSnapshots()
        if needsReset {
            observation.withUnsafeMutableBufferPointer { environment.reset(seed: seed &+ UInt64(episode), into: $0) }
            (agent as? RecurrentAgent)?.beginEpisodes(count: 1)
            episode += 1
            episodeReturn = 0
            needsReset = false
        } else {
            let action = agent.act(observation, deterministic: true)
            let outcome = try observation.withUnsafeMutableBufferPointer { try environment.step(action, into: $0) }
            episodeReturn += outcome.reward
            if outcome.done {
                returns.append(episodeReturn)
                needsReset = true
            }
        }
        return render()
    }

    /// Abandons the current episode; the next frame starts a new one.
    public func restart() {
        needsReset = true
    }

    /// The environment drawn with the value/arrow overlay when it is a grid world.
    private func render() -> RGBImage {
        guard let grid = environment as? GridRenderable ?? (environment as? TimeLimit)?.inner as? GridRenderable else {
            return environment.render()
        }
        if overlayIsStale {
            overlay = Self.overlay(for: agent, states: environment.observationSpace.discreteCount)
            overlayIsStale = false
        }
        return grid.render(overlay: overlay)
    }

    /// Restores the newest policy snapshot, if one arrived since the last frame.
    private func followSnapshots() throws {
        guard let snapshots, let data = snapshots.takeIfNewer(than: &seenSnapshot) else { return }
        let loaded = try AgentCheckpoint(safetensors: data)
        try agent.restore(loaded)
        policyStep = loaded.metadata[.step]
        overlayIsStale = true
    }

    /// Each cell's value and greedy action, for agents acting on a discrete observation space of `states` cells.
    public static func overlay(for agent: Agent, states: Int?) -> GridOverlay? {
        guard let states, states > 0 else { return nil }
        let observations = (0..<states).map { [Float($0)] }
        let values = (agent as? ValueEstimating).map { agent in observations.map { agent.stateValue($0) } }
        let arrows: [Int?] = observations.map {
            if case let .discrete(a) = agent.act($0, deterministic: true) { return a }
            return nil
        }
        return GridOverlay(values: values, arrows: arrows)
    }
}
