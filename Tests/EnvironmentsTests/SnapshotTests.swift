import Environments
import Foundation
import SeededRandom
import Testing

/// Snapshots (`Environment.snapshot()`, `VectorEnvironment.snapshot()`): an environment restored from one steps on
/// exactly as the one it was taken from, bit for bit, through episode ends and resets.
@Suite struct SnapshotTests {
    /// One step's outcome, bit for bit (or the error it threw).
    struct Outcome: Equatable {
        var observation: [UInt32], reward: UInt64, terminated: Bool, truncated: Bool
        var error: String?
    }

    /// Steps `env` with `steps` actions drawn from `rng`, resetting (without a seed) after each episode.
    static func play(_ env: Environment, steps: Int, rng: inout SeededGenerator) -> [Outcome] {
        (0..<steps).map { _ in
            let action: Action = switch env.actionSpace {
            case let .discrete(n): .discrete(rng.nextInt(below: n))
            case .box: env.actionSpace.sample(using: &rng)
            }
            do {
                let r = try env.step(action)
                if r.terminated || r.truncated { env.reset() }
                return Outcome(observation: r.observation.map(\.bitPattern), reward: r.reward.bitPattern,
                               terminated: r.terminated, truncated: r.truncated)
            } catch {
                return Outcome(observation: [], reward: 0, terminated: false, truncated: false, error: "\(error)")
            }
        }
    }

    @Test(arguments: Registry.ids)
    func restoredEnvironmentStepsOnIdentically(_ id: String) throws {
        let original = try Registry.make(id)
        original.reset(seed: 3)
        var rng = SeededGenerator(seed: 8)
        _ = Self.play(original, steps: 137, rng: &rng)
        let snapshot = try #require(original.snapshot(), "\(id) has no snapshot")
        let restored = try Registry.make(id)
        try restored.restore(snapshot)
        #expect(restored.snapshot() == snapshot)
        var same = rng
        #expect(Self.play(restored, steps: 600, rng: &same) == Self.play(original, steps: 600, rng: &rng), "\(id)")
    }

    /// An environment whose episode ended is restored as ended: stepping it is refused as the original's is.
    @Test func endedEpisodeStaysEnded() throws {
        let original = try Registry.make("CartPole-v1")
        original.reset(seed: 1)
        while try !original.step(0).terminated {}
        let restored = try Registry.make("CartPole-v1")
        try restored.restore(try #require(original.snapshot()))
        #expect(throws: EnvironmentError.stepAfterEnd("CartPole-v1")) { try restored.step(0) }
    }

    @Test(arguments: ["CartPole-v1", "FrozenLake-v1", "Pendulum-v1"])
    func restoredVectorStepsOnIdentically(_ id: String) throws {
        let original = try VectorEnvironment(id: id, count: 5)
        _ = try VectorTests().run(original, seed: 4, steps: 150)
        let snapshot = try #require(original.snapshot())
        let restored = try VectorEnvironment(id: id, count: 5)
        try restored.restore(snapshot)
        #expect(restored.usesFastPath == original.usesFastPath)
        #expect(restored.snapshot() == snapshot)
        #expect(VectorTests.Snapshot(restored).observations == VectorTests.Snapshot(original).observations)
        var rng = SeededGenerator(seed: 9)
        for t in 0..<400 {
            let actions: [Action] = (0..<5).map { _ in
                switch original.actionSpace {
                case let .discrete(n): .discrete(rng.nextInt(below: n))
                case .box: original.actionSpace.sample(using: &rng)
                }
            }
            try original.step(actions)
            try restored.step(actions)
            try #require(VectorTests.Snapshot(restored) == VectorTests.Snapshot(original), "\(id): step \(t)")
        }
        #expect(restored.completedEpisodes == original.completedEpisodes)
    }

    /// An environment rlbench cannot capture (here, one behind a wrapper of its own) has no snapshot, nor has a vector of it.
    @Test func unknownEnvironmentsHaveNoSnapshot() throws {
        let vector = try VectorEnvironment(count: 2) { _ in Passthrough(try Registry.make("CartPole-v1")) }
        vector.reset(seed: 0)
        #expect(vector.envs[0].snapshot() == nil)
        #expect(vector.snapshot() == nil)
    }

    /// A snapshot restored into an environment or vector it does not fit is an error naming the problem.
    @Test func mismatchedSnapshotsAreErrors() throws {
        let cartPole = try Registry.make("CartPole-v1")
        cartPole.reset(seed: 0)
        let snapshot = try #require(cartPole.snapshot())
        let lake = try Registry.make("FrozenLake-v1")
        let wrongEnvironment = #expect(throws: EnvironmentError.self) { try lake.restore(snapshot) }
        #expect(wrongEnvironment.map { "\($0)" }?.contains("does not fit") == true, "\(String(describing: wrongEnvironment))")
        let cut = #expect(throws: EnvironmentError.self) {
            try cartPole.restore(EnvironmentSnapshot(words: Array(snapshot.words.dropLast())))
        }
        #expect(cut.map { "\($0)" }?.contains("ends early") == true, "\(String(describing: cut))")
        let vector = try VectorEnvironment(id: "CartPole-v1", count: 3)
        vector.reset(seed: 0)
        let three = try #require(vector.snapshot())
        let wrongCount = #expect(throws: EnvironmentError.self) { try VectorEnvironment(id: "CartPole-v1", count: 4).restore(three) }
        #expect(wrongCount.map { "\($0)" }?.contains("holds 3 environments") == true, "\(String(describing: wrongCount))")
    }
}
