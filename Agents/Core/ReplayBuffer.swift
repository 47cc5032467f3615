import Environments
import Foundation
import RLCore
import SeededRandom

/// A fixed-capacity ring buffer of transitions for off-policy learning (DQN).
///
/// Observations are stored flat in preallocated arrays; once full, the oldest transition is overwritten.
/// `nextObservation` is the true next observation, also for the last step of a truncated episode, and
/// `terminated` (not `truncated`) is what stops bootstrapping. `gather` can also hand out n-step transitions
/// (Sutton, 1988; Rainbow's multi-step targets), as Stable-Baselines3's `NStepReplayBuffer` computes them.
public struct ReplayBuffer {
    public let capacity: Int
    public let observationSize: Int
    public private(set) var count = 0
    private var next = 0
    private var observations: [Float]
    private var nextObservations: [Float]
    private var actions: [Int32]
    private var rewards: [Float]
    private var terminated: [Float]
    /// 1 where the episode ended (terminated or truncated) with the transition: an n-step transition stops there.
    private var ended: [UInt8]

    /// The bytes a buffer of `capacity` transitions of `observationSize` values takes: two observations a transition,
    /// then the action, reward and flags.
    public static func bytes(capacity: Int, observationSize: Int) -> Double {
        Double(capacity) * Double(2 * observationSize * MemoryLayout<Float>.size + MemoryLayout<Int32>.size
                                  + 2 * MemoryLayout<Float>.size + MemoryLayout<UInt8>.size)
    }

    public init(capacity: Int, observationSize: Int) {
        precondition(capacity > 0 && observationSize > 0, "replay buffer needs positive capacity and observation size")
        self.capacity = capacity
        self.observationSize = observationSize
        observations = [Float](repeating: 0, count: capacity * observationSize)
        nextObservations = [Float](repeating: 0, count: capacity * observationSize)
        actions = [Int32](repeating: 0, count: capacity)
        rewards = [Float](repeating: 0, count: capacity)
        terminated = [Float](repeating: 0, count: capacity)
        ended = [UInt8](repeating: 0, count: capacity)
    }

    /// Stores one transition, overwriting the oldest when full. `truncated`: the episode was cut off by a time limit
    /// after it (only n-step transitions need to know).
    public mutating func add(observation: UnsafeBufferPointer<Float>, action: Int, reward: Double,
                             nextObservation: UnsafeBufferPointer<Float>, terminated isTerminal: Bool, truncated: Bool) {
        let base = next * observationSize
        observations.withUnsafeMutableBufferPointer { o in
            for i in 0..<observationSize { o[base + i] = observation[i] }
        }
        nextObservations.withUnsafeMutableBufferPointer { o in
            for i in 0..<observationSize { o[base + i] = nextObservation[i] }
        }
        actions[next] = Int32(action)
        rewards[next] = Float(reward)
        terminated[next] = isTerminal ? 1 : 0
        ended[next] = isTerminal || truncated ? 1 : 0
        next = (next + 1) % capacity
        count = min(count + 1, capacity)
    }

    /// `count` positions of stored transitions drawn uniformly with replacement (one draw of `rng` each, in order).
    public func sampleIndices(_ count: Int, using rng: inout SeededGenerator) -> [Int] {
        precondition(self.count > 0, "cannot sample an empty replay buffer")
        return (0..<count).map { _ in rng.nextInt(below: self.count) }
    }

    /// Copies the transitions at `indices` into `batch` (whose size must equal their number), row after row.
    ///
    /// With `steps` n > 1, row j is the n-step transition that starts at `indices[j]`: it runs on through the
    /// following transitions until it has n of them, its episode ends (terminated or truncated) or it reaches the
    /// newest stored transition, whichever comes first. Over the m transitions it spans, its reward is
    /// Σ_{k<m} γᵏ r_k, its discount γᵐ, and its next observation, `terminated` flag and `ends` entry are those of its
    /// last transition. With n = 1 every row is the stored transition itself, with discount γ. The powers γᵏ are
    /// float32 `pow(γ, k)`, as SB3's `NStepReplayBuffer` computes them (repeated multiplication differs from it by
    /// an ulp from γ³ on).
    public func gather(_ indices: [Int], into batch: inout Batch, steps: Int, gamma: Float) {
        precondition(indices.count == batch.size, "\(indices.count) indices for a batch of \(batch.size)")
        precondition(steps >= 1, "an n-step transition needs n ≥ 1, got \(steps)")
        let d = observationSize, newest = (next - 1 + capacity) % capacity
        let powers = (0...steps).map { Foundation.pow(gamma, Float($0)) }
        observations.withUnsafeBufferPointer { o in
            nextObservations.withUnsafeBufferPointer { no in
                batch.observations.withUnsafeMutableBufferPointer { bo in
                    batch.nextObservations.withUnsafeMutableBufferPointer { bno in
                        for (j, i) in indices.enumerated() {
                            precondition(i >= 0 && i < count, "transition \(i) is not stored")
                            var last = i, reward = rewards[i], spanned = 1
                            while spanned < steps && ended[last] == 0 && last != newest {
                                last = (last + 1) % capacity
                                reward += rewards[last] * powers[spanned]
                                spanned += 1
                            }
                            for k in 0..<d {
                                bo[j * d + k] = o[i * d + k]
                                bno[j * d + k] = no[last * d + k]
                            }
                            batch.actions[j] = Int(actions[i])
                            batch.rewards[j] = reward
                            batch.discounts[j] = powers[spanned]
                            batch.terminated[j] = terminated[last]
                            batch.ends[j] = last
                        }
                    }
                }
            }
        }
    }

    /// The next observations of the transitions at `indices`, row after row.
    public func nextObservations(at indices: [Int]) -> [Float] {
        for i in indices { precondition(i >= 0 && i < count, "transition \(i) is not stored") }
        return nextObservations.rows(indices, width: observationSize)
    }

    /// A sampled batch, reused across gradient steps to avoid allocation.
    public struct Batch {
        public let size: Int
        public var observations: [Float]
        public var nextObservations: [Float]
        public var actions: [Int]
        /// The reward, or with n-step transitions the discounted sum of their rewards.
        public var rewards: [Float]
        /// What the bootstrapped value is discounted by: γ, or γᵐ for an n-step transition over m steps.
        public var discounts: [Float]
        /// 1 where the (last) transition ended the episode by termination (no bootstrap), else 0.
        public var terminated: [Float]
        /// The buffer position of each row's last transition, whose next observation the row holds.
        public var ends: [Int]

        public init(size: Int, observationSize: Int) {
            self.size = size
            observations = [Float](repeating: 0, count: size * observationSize)
            nextObservations = [Float](repeating: 0, count: size * observationSize)
            actions = [Int](repeating: 0, count: size)
            rewards = [Float](repeating: 0, count: size)
            discounts = [Float](repeating: 0, count: size)
            terminated = [Float](repeating: 0, count: size)
            ends = [Int](repeating: 0, count: size)
        }
    }
}

extension ReplayBuffer {
    /// Saves the buffer into `state`: its filled rows only, one contiguous F32 tensor per field
    /// (`replay.observations` and `replay.next_observations` `[count, observationSize]`, `replay.actions`,
    /// `replay.rewards`, `replay.terminated`, `replay.ended` `[count]`), and its capacity, fill and write position,
    /// so that a resumed run draws exactly the transitions the uninterrupted one draws.
    public func save(into state: inout TrainingState) {
        let n = count, d = observationSize
        state.tensors += [
            (name: "replay.observations", tensor: Tensor(Array(observations[0 ..< n * d]), shape: [n, d])),
            (name: "replay.next_observations", tensor: Tensor(Array(nextObservations[0 ..< n * d]), shape: [n, d])),
            (name: "replay.actions", tensor: Tensor(actions[0 ..< n].map(Float.init), shape: [n])),
            (name: "replay.rewards", tensor: Tensor(Array(rewards[0 ..< n]), shape: [n])),
            (name: "replay.terminated", tensor: Tensor(Array(terminated[0 ..< n]), shape: [n])),
            (name: "replay.ended", tensor: Tensor(ended[0 ..< n].map(Float.init), shape: [n])),
        ]
        var writer = SnapshotWriter()
        writer.write(capacity)
        writer.write(count)
        writer.write(next)
        state.words["replay"] = writer.words
    }

    /// The buffer `save(into:)` saved in `state`, of this observation size. Its capacity must be this one, unless it
    /// never wrapped around (its rows are oldest to newest) and fits: a run resumed with more `--steps` has a larger
    /// buffer (DQN sizes it by the run), and goes on as if it had had that one from the start.
    public init(capacity: Int, observationSize: Int, from state: TrainingState) throws {
        self.init(capacity: capacity, observationSize: observationSize)
        var reader = try state.reader("replay")
        let savedCapacity = try reader.int(), n = try reader.int(), position = try reader.int()
        try reader.finish()
        guard n >= 0, n <= savedCapacity, position >= 0, position < savedCapacity, n == savedCapacity || position == n else {
            throw TrainingStateError("its replay buffer's fill (\(n)) and position (\(position)) do not fit its capacity of \(savedCapacity)")
        }
        let inOrder = position == n % savedCapacity
        guard savedCapacity == capacity || (inOrder && n <= capacity) else {
            throw TrainingStateError("its replay buffer holds \(n) of up to \(savedCapacity) transitions, wrapped around; "
                                     + "this run's holds up to \(capacity)")
        }
        let d = observationSize
        observations.replaceSubrange(0 ..< n * d, with: try state.floats("replay.observations", count: n * d))
        nextObservations.replaceSubrange(0 ..< n * d, with: try state.floats("replay.next_observations", count: n * d))
        let savedActions = try state.floats("replay.actions", count: n), savedEnded = try state.floats("replay.ended", count: n)
        guard savedActions.allSatisfy({ $0 >= 0 && $0 < Float(Int32.max) && $0 == $0.rounded() }),
              savedEnded.allSatisfy({ $0 == 0 || $0 == 1 }) else {
            throw TrainingStateError("its replay buffer's actions or episode ends are not whole numbers of their range")
        }
        actions.replaceSubrange(0 ..< n, with: savedActions.map { Int32($0) })
        ended.replaceSubrange(0 ..< n, with: savedEnded.map { UInt8($0) })
        rewards.replaceSubrange(0 ..< n, with: try state.floats("replay.rewards", count: n))
        terminated.replaceSubrange(0 ..< n, with: try state.floats("replay.terminated", count: n))
        count = n
        next = savedCapacity == capacity ? position : n % capacity
    }
}
