import Environments
import Foundation
import SeededRandom
import Testing

@Suite struct VectorTests {
    /// Everything a vector step exposes, for comparing runs.
    struct Snapshot: Equatable {
        var observations: [UInt32]
        var rewards: [Double], terminated: [Bool], truncated: [Bool], autoreset: [Bool]
        var finished: [FinishedEpisode]
        init(_ v: VectorEnvironment) {
            observations = v.observations.map(\.bitPattern)
            rewards = v.rewards; terminated = v.terminated; truncated = v.truncated; autoreset = v.autoreset
            finished = v.finishedEpisodes
        }
    }

    /// Runs `steps` random batch steps and returns a snapshot after each.
    func run(_ v: VectorEnvironment, seed: UInt64, steps: Int) throws -> [Snapshot] {
        var rng = SeededGenerator(seed: seed)
        v.reset(seed: seed)
        var snapshots = [Snapshot(v)]
        for _ in 0..<steps {
            switch v.actionSpace {
            case let .discrete(n): try v.step((0..<v.numEnvs).map { _ in rng.nextInt(below: n) })
            case .box: try v.step((0..<v.numEnvs).map { _ in v.actionSpace.sample(using: &rng) })
            }
            snapshots.append(Snapshot(v))
        }
        return snapshots
    }

    @Test func nextStepAutoreset() throws {
        let v = try VectorEnvironment(count: 2) { i in CounterEnvironment(length: 2 + i) }
        v.reset(seed: 7)
        let start = v.observations
        try v.step([1, 1])
        #expect(v.rewards == [2, 2] && v.terminated == [false, false] && v.autoreset == [false, false])
        try v.step([0, 1])
        // env 0 ends at its second step: final observation (count 2, last action 0), reward 1, terminated.
        #expect(v.terminated == [true, false] && v.rewards == [1, 2] && v.autoreset == [false, false])
        #expect(v.observations[0] == start[0] + 2 && v.observations[1] == 0)
        #expect(v.finishedEpisodes == [FinishedEpisode(env: 0, episodeReturn: 3, length: 2)])
        // Next step: env 0 ignores its (invalid!) action and resets: reward 0, no flags, autoreset; env 1 ends.
        try v.step([99, 0])
        #expect(v.autoreset == [true, false])
        #expect(v.rewards == [0, 1] && v.terminated == [false, true] && v.truncated == [false, false])
        #expect(v.observations[0] >= 0 && v.observations[0] < 1 && v.observations[1] == 0)
        #expect(v.finishedEpisodes == [FinishedEpisode(env: 1, episodeReturn: 5, length: 3)])
        // The reset continued env 0's stream (no seed), unlike a fresh seeded reset.
        let envs = v.envs.map { $0 as! CounterEnvironment }
        #expect(envs[0].seeds == [7, nil])
        try v.step([1, 5])
        #expect(v.autoreset == [false, true] && v.rewards == [2, 0] && v.terminated == [false, false])
        #expect(v.finishedEpisodes.isEmpty && v.completedEpisodes == 2)
    }

    @Test func truncationAlsoAutoresets() throws {
        let v = try VectorEnvironment(count: 3) { _ in TimeLimit(CartPole(), maxEpisodeSteps: 3) }
        v.reset(seed: 0)
        for _ in 0..<2 { try v.step([0, 1, 0]) }
        try v.step([0, 1, 0])
        #expect(v.truncated == [true, true, true] && v.autoreset == [false, false, false])
        #expect(v.finishedEpisodes.map(\.length) == [3, 3, 3])
        try v.step([0, 1, 0])
        #expect(v.autoreset == [true, true, true] && v.truncated == [false, false, false] && v.rewards == [0, 0, 0])
    }

    @Test func resetSeedsEachEnvironmentWithSeedPlusIndex() throws {
        let v = try VectorEnvironment(id: "CartPole-v1", count: 4)
        v.reset(seed: 100)
        for i in 0..<4 {
            let single = try Registry.make("CartPole-v1")
            #expect(Array(v.observations[(i * 4)..<(i * 4 + 4)]) == single.reset(seed: 100 + UInt64(i)))
        }
        let counters = try VectorEnvironment(count: 3) { _ in CounterEnvironment() }
        counters.reset(seed: 5)
        counters.reset()
        #expect(counters.envs.map { ($0 as! CounterEnvironment).seeds } == [[5, nil], [6, nil], [7, nil]])
    }

    @Test func subEnvironmentsMatchIndependentEnvironments() throws {
        // Stepping a vector equals stepping each environment alone with the same seeds and autoreset rule.
        let v = try VectorEnvironment(count: 3) { _ in TimeLimit(Acrobot(), maxEpisodeSteps: 20) }
        let singles = (0..<3).map { _ in TimeLimit(Acrobot(), maxEpisodeSteps: 20) }
        v.reset(seed: 40)
        var expected = (0..<3).flatMap { singles[$0].reset(seed: 40 + UInt64($0)) }
        var needsReset = [false, false, false]
        var rng = SeededGenerator(seed: 1)
        for _ in 0..<50 {
            let actions = (0..<3).map { _ in rng.nextInt(below: 3) }
            try v.step(actions)
            for i in 0..<3 {
                if needsReset[i] {
                    expected.replaceSubrange((i * 6)..<(i * 6 + 6), with: singles[i].reset())
                    needsReset[i] = false
                } else {
                    let r = try singles[i].step(actions[i])
                    expected.replaceSubrange((i * 6)..<(i * 6 + 6), with: r.observation)
                    #expect(v.rewards[i] == r.reward)
                    needsReset[i] = r.terminated || r.truncated
                }
            }
            #expect(v.observations == expected)
        }
    }

    @Test(arguments: [("CartPole-v1", 64), ("Pendulum-v1", 7), ("FrozenLake-v1", 5)])
    func threadedMatchesSingleThread(id: String, count: Int) throws {
        let reference = try run(try VectorEnvironment(id: id, count: count, threads: 1), seed: 3, steps: 300)
        for threads in [2, 3, 8] {
            let threaded = try VectorEnvironment(id: id, count: count, threads: threads)
            #expect(threaded.threads == min(threads, count))
            let snapshots = try run(threaded, seed: 3, steps: 300)
            #expect(snapshots == reference, "\(id) with \(threads) threads differs from one thread")
        }
        #expect(reference.contains { !$0.finished.isEmpty })
    }

    @Test func oversubscribedThreadsStayExact() throws {
        // More threads than cores: workers get descheduled, park and have their chunks stolen; results stay exact.
        let make = { (threads: Int) in try VectorEnvironment(count: 40, threads: threads) { _ in CounterEnvironment(length: 9, randomLength: true) } }
        let reference = try run(try make(1), seed: 8, steps: 1500)
        #expect(try run(try make(8), seed: 8, steps: 1500) == reference)
    }

    @Test func actionFormsAgree() throws {
        // Discrete: [Int] == [Action]; continuous: flat [Float] == [Action].
        let a = try VectorEnvironment(id: "MountainCar-v0", count: 4, threads: 2)
        let b = try VectorEnvironment(id: "MountainCar-v0", count: 4, threads: 2)
        a.reset(seed: 9); b.reset(seed: 9)
        var rng = SeededGenerator(seed: 4)
        for _ in 0..<250 {
            let actions = (0..<4).map { _ in rng.nextInt(below: 3) }
            try a.step(actions)
            try b.step(actions.map { Action.discrete($0) })
            #expect(Snapshot(a) == Snapshot(b))
        }
        let c = try VectorEnvironment(id: "Pendulum-v1", count: 3, threads: 2)
        let d = try VectorEnvironment(id: "Pendulum-v1", count: 3)
        c.reset(seed: 1); d.reset(seed: 1)
        for _ in 0..<250 {
            let flat = (0..<3).map { _ in Float(rng.uniform(-2.0, 2.0)) }
            try c.step(continuous: flat)
            try d.step(flat.map { Action.continuous([$0]) })
            #expect(Snapshot(c) == Snapshot(d))
        }
    }

    @Test func withObservationsReadsTheBuffer() throws {
        let v = try VectorEnvironment(id: "CartPole-v1", count: 3, threads: 2)
        v.reset(seed: 0)
        let copy = v.withObservations { Array($0) }
        #expect(copy == v.observations && copy.count == 12)
        // A copy taken before a step keeps its values (the buffer is copy-on-write).
        try v.step([0, 0, 0])
        #expect(copy != v.observations)
        #expect(copy == (0..<3).flatMap { try! Registry.make("CartPole-v1").reset(seed: UInt64($0)) })
    }

    @Test func badInputIsRefused() throws {
        let v = try VectorEnvironment(id: "CartPole-v1", count: 2, threads: 2)
        v.reset(seed: 0)
        #expect(throws: EnvironmentError.invalidAction("3 actions for 2 environments")) { try v.step([0, 1, 0]) }
        #expect { try v.step(continuous: [0, 0]) } throws: { "\($0)".contains("continuous actions given to a vector of Discrete(2)") }
        let p = try VectorEnvironment(id: "Pendulum-v1", count: 2)
        #expect { try p.step([0, 1]) } throws: { "\($0)".contains("discrete actions given to a vector of Box") }
        #expect { try p.step(continuous: [0]) } throws: { "\($0)".contains("1 continuous action values for 2 environments × 1") }
        #expect { try VectorEnvironment(count: 0) { _ in CounterEnvironment() } } throws: { "\($0)".contains("at least one environment, got 0") }
        #expect { try VectorEnvironment(count: 2, threads: 0) { _ in CounterEnvironment() } } throws: {
            "\($0)".contains("threads must be positive, got 0")
        }
        #expect {
            try VectorEnvironment(count: 2) { i in i == 0 ? CounterEnvironment() : try Registry.make("CartPole-v1") }
        } throws: { "\($0)".contains("sub-environment 1 has spaces") }
    }

    @Test(arguments: [false, true])
    func subEnvironmentErrorIsRethrownAfterOthersStep(closed: Bool) throws {
        let v = try VectorEnvironment(count: 4, threads: 2) { _ in CounterEnvironment(length: 10) }
        if closed { v.close() }
        v.reset(seed: 0)
        #expect(throws: EnvironmentError.invalidAction("Counter takes 0 or 1, got discrete(7)")) { try v.step([1, 1, 7, 1]) }
        #expect(v.envs.map { ($0 as! CounterEnvironment).count } == [1, 1, 0, 1])
        try v.step([1, 1, 1, 1])
        #expect(v.envs.map { ($0 as! CounterEnvironment).count } == [2, 2, 1, 2])
    }

    static func threadCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }

    @Test func manyCreateDestroyCyclesLeakNoThreads() throws {
        let before = Self.threadCount()
        for cycle in 0..<150 {
            let v = try VectorEnvironment(id: "CartPole-v1", count: 6, threads: 3)
            v.reset(seed: UInt64(cycle))
            for t in 0..<(cycle % 4) { try v.step([Int](repeating: t % 2, count: 6)) }
            if cycle % 3 == 0 { v.close(); v.close() }
        }
        // Other tests run concurrently and own threads too; a leak would add ~300 here.
        if before > 0 { #expect(Self.threadCount() < before + 40) }
    }

    @Test func closedVectorKeepsWorkingOnTheCaller() throws {
        let v = try VectorEnvironment(id: "CartPole-v1", count: 6, threads: 2)
        let reference = try VectorEnvironment(id: "CartPole-v1", count: 6)
        v.reset(seed: 4); reference.reset(seed: 4)
        try v.step([1, 0, 1, 0, 1, 0]); try reference.step([1, 0, 1, 0, 1, 0])
        v.close()
        for t in 0..<30 {
            try v.step([Int](repeating: t % 2, count: 6)); try reference.step([Int](repeating: t % 2, count: 6))
            #expect(Snapshot(v) == Snapshot(reference))
        }
    }

    @Test(arguments: ["Counter", "CartPole-v1"])
    func callerAloneStepsInOnePieceExactly(id: String) throws {
        // Without its workers (closed here; the pool also runs alone when its workers do not pay) the caller steps
        // every sub-environment in one piece, as chunk 0: observations, flags and finished episodes (in order) as
        // with one thread.
        let make = { (threads: Int) in
            try VectorEnvironment(count: 40, threads: threads) { _ in
                id == "Counter" ? CounterEnvironment(length: 9, randomLength: true) : try Registry.make(id)
            }
        }
        let reference = try run(try make(1), seed: 8, steps: 300)
        let alone = try make(3)
        alone.close()
        #expect(try run(alone, seed: 8, steps: 300) == reference)
        #expect(reference.contains { $0.finished.count > 1 })
    }

    @Test func parkedWorkersWakeUp() throws {
        // Workers park after spinning; a step after a pause must still complete with correct results.
        let v = try VectorEnvironment(id: "CartPole-v1", count: 4, threads: 2)
        let reference = try VectorEnvironment(id: "CartPole-v1", count: 4)
        v.reset(seed: 2); reference.reset(seed: 2)
        for t in 0..<5 {
            Thread.sleep(forTimeInterval: 0.01)
            try v.step([t % 2, 1, 0, 1]); try reference.step([t % 2, 1, 0, 1])
            #expect(Snapshot(v) == Snapshot(reference))
        }
    }
}

@Suite struct ResetSemanticsTests {
    /// Stepping before the first reset and after the end are different mistakes, named as such.
    @Test func stepBeforeResetAndAfterTheEndAreNamed() throws {
        let env = try Registry.make("MountainCar-v0", options: ["max_episode_steps": "3"])
        #expect(throws: EnvironmentError.stepBeforeReset("MountainCar-v0")) { try env.step(.discrete(1)) }
        env.reset(seed: 1)
        for _ in 0..<3 { _ = try env.step(.discrete(1)) }
        #expect(throws: EnvironmentError.stepAfterEnd("MountainCar-v0")) { try env.step(.discrete(1)) }
        let lake = try Registry.make("FrozenLake-v1")
        #expect(throws: EnvironmentError.stepBeforeReset("FrozenLake-v1")) { try lake.step(.discrete(0)) }
    }

    /// `max_episode_steps` is an option of every environment, as in `gymnasium.make`; CliffWalking gets a limit.
    @Test func everyEnvironmentTakesATimeLimit() throws {
        let cliff = try Registry.make("CliffWalking-v1", options: ["max_episode_steps": "2"])
        cliff.reset(seed: 0)
        #expect(try !cliff.step(.discrete(0)).truncated)
        #expect(try cliff.step(.discrete(0)).truncated)
        #expect { try Registry.make("CartPole-v1", options: ["max_episode_steps": "0"]) } throws: {
            "\($0)".contains("max_episode_steps must be a positive integer, got '0'")
        }
        #expect { try Registry.make("CartPole-v1", options: ["gravity": "3"]) } throws: {
            "\($0)".contains("CartPole-v1 has no option 'gravity'; its options: mask_velocity, max_episode_steps, sutton_barto_reward")
        }
    }

    /// Without a seed, a vector's copies still play different episodes: the first reset is seed 0's (copy i seed i),
    /// on the CartPole fast path and the generic one.
    @Test func anUnseededVectorResetGivesEachCopyItsOwnEpisode() throws {
        for id in ["CartPole-v1", "Pendulum-v1"] {
            let unseeded = try VectorEnvironment(id: id, count: 3), seeded = try VectorEnvironment(id: id, count: 3)
            unseeded.reset()
            seeded.reset(seed: 0)
            #expect(unseeded.observations == seeded.observations)
            let size = unseeded.observations.count / 3
            #expect(unseeded.observations[0..<size] != unseeded.observations[size..<(2 * size)], "\(id)")
            // A second unseeded reset continues the streams: new episodes.
            let first = unseeded.observations
            unseeded.reset()
            #expect(unseeded.observations != first)
        }
    }

    /// CartPole's velocities are unbounded, as in Gymnasium 1.x (±inf, not ±Float.greatestFiniteMagnitude).
    @Test func cartPoleObservationSpaceIsGymnasiums() throws {
        guard case let .box(low, high, shape) = try Registry.make("CartPole-v1").observationSpace else {
            Issue.record("not a box"); return
        }
        #expect(shape == [4] && high == [4.8, .infinity, Float(12 * 2 * Double.pi / 360 * 2), .infinity] && low == high.map { -$0 })
    }
}
