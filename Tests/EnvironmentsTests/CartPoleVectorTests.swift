import Environments
import Foundation
import Imaging
import SeededRandom
import Testing

/// Forwards everything to `inner`: a vector of these takes the generic path even around CartPoles.
final class Passthrough: Environment {
    let inner: Environment
    init(_ inner: Environment) { self.inner = inner }
    var spec: EnvSpec? {
        get { inner.spec }
        set { inner.spec = newValue }
    }
    var observationSpace: Space { inner.observationSpace }
    var actionSpace: Space { inner.actionSpace }
    func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) { inner.reset(seed: seed, into: observation) }
    func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try inner.step(action, into: observation)
    }
    func render() -> RGBImage { inner.render() }
}

@Suite struct CartPoleVectorTests {
    typealias Snapshot = VectorTests.Snapshot

    /// Actions for every sub-environment: even ones balance the pole (so they reach the 500-step time limit), odd
    /// ones act at random (so they terminate often); every 97th step one sub-environment gets an invalid action.
    static func actions(for v: VectorEnvironment, step t: Int, rng: inout SeededGenerator) -> [Action] {
        (0..<v.numEnvs).map { i in
            if t % 97 == 13 && i == t % v.numEnvs { return t % 2 == 0 ? .discrete(2) : .continuous([0.5]) }
            if i % 2 == 1 { return .discrete(rng.nextInt(below: 2)) }
            let theta = v.observations[4 * i + 2], thetaDot = v.observations[4 * i + 3]
            return .discrete(theta + 0.5 * thetaDot > 0 ? 1 : 0)
        }
    }

    /// Steps `v` with the actions above from seed 11, with a reseeding and an unseeded reset on the way; one snapshot
    /// (and the error, if any) per step.
    static func run(_ v: VectorEnvironment, steps: Int) -> (snapshots: [Snapshot], errors: [String?]) {
        var rng = SeededGenerator(seed: 5)
        v.reset(seed: 11)
        var snapshots = [Snapshot(v)], errors: [String?] = [nil]
        for t in 0..<steps {
            if t == 700 { v.reset(seed: 900) }
            if t == 1400 { v.reset() }
            let actions = actions(for: v, step: t, rng: &rng)
            var message: String?
            do {
                if actions.allSatisfy({ if case .discrete = $0 { true } else { false } }) && t % 2 == 0 {
                    try v.step(actions.map { if case let .discrete(a) = $0 { a } else { -1 } })
                } else {
                    try v.step(actions)
                }
            } catch { message = "\(error)" }
            snapshots.append(Snapshot(v))
            errors.append(message)
        }
        return (snapshots, errors)
    }

    @Test(arguments: [(1, 64), (2, 64), (2, 37), (3, 37)])
    func fastPathIsBitIdenticalToGenericPath(threads: Int, count: Int) throws {
        let fast = try VectorEnvironment(id: "CartPole-v1", count: count, threads: threads)
        let generic = try VectorEnvironment(count: count, threads: threads) { _ in Passthrough(try Registry.make("CartPole-v1")) }
        let (fastRun, fastErrors) = Self.run(fast, steps: 2100)
        let (genericRun, genericErrors) = Self.run(generic, steps: 2100)
        #expect(fast.usesFastPath && !generic.usesFastPath)
        #expect(fastRun.count == genericRun.count)
        for t in fastRun.indices where fastRun[t] != genericRun[t] {
            Issue.record("step \(t): the fast path differs from the generic path")
            break
        }
        #expect(fastErrors == genericErrors)
        // The run covers what it claims to: terminations, truncations at 500 steps, autoresets and refused actions.
        #expect(fastRun.contains { $0.terminated.contains(true) })
        #expect(fastRun.contains { s in s.finished.contains { $0.length == 500 } && s.truncated.contains(true) })
        #expect(fastRun.contains { $0.autoreset.contains(true) })
        #expect(fastErrors.compactMap { $0 }.count >= 20)
        #expect(fast.completedEpisodes == generic.completedEpisodes && fast.completedEpisodes > 100)
        // Reading `envs` leaves the CartPole and TimeLimit objects exactly as the generic path left its own.
        for (a, b) in zip(fast.envs, generic.envs.map { ($0 as! Passthrough).inner }) {
            let (la, lb) = (a as! TimeLimit, b as! TimeLimit)
            let (ca, cb) = (la.inner as! CartPole, lb.inner as! CartPole)
            #expect(la.elapsedSteps == lb.elapsedSteps && ca.needsReset == cb.needsReset && ca.rng == cb.rng)
            #expect(ca.state == cb.state)
        }
    }

    @Test func fastPathMatchesSingleEnvironments() throws {
        // Each sub-environment equals a CartPole-v1 made alone, seeded with seed + i, autoreset at the next step.
        let count = 8
        let v = try VectorEnvironment(id: "CartPole-v1", count: count, threads: 2)
        let singles = try (0..<count).map { _ in try Registry.make("CartPole-v1") }
        v.reset(seed: 70)
        var expected = (0..<count).flatMap { singles[$0].reset(seed: 70 + UInt64($0)) }
        var needsReset = [Bool](repeating: false, count: count)
        var rng = SeededGenerator(seed: 3)
        var truncations = 0
        for _ in 0..<1200 {
            let actions = (0..<count).map { i in
                i < 4 ? (expected[4 * i + 2] + 0.5 * expected[4 * i + 3] > 0 ? 1 : 0) : rng.nextInt(below: 2)
            }
            try v.step(actions)
            for i in 0..<count {
                if needsReset[i] {
                    expected.replaceSubrange((4 * i)..<(4 * i + 4), with: singles[i].reset())
                    needsReset[i] = false
                    #expect(v.autoreset[i] && v.rewards[i] == 0)
                } else {
                    let r = try singles[i].step(actions[i])
                    expected.replaceSubrange((4 * i)..<(4 * i + 4), with: r.observation)
                    #expect(v.rewards[i] == r.reward && v.terminated[i] == r.terminated && v.truncated[i] == r.truncated)
                    needsReset[i] = r.terminated || r.truncated
                    if r.truncated { truncations += 1 }
                }
            }
            #expect(v.observations.map(\.bitPattern) == expected.map(\.bitPattern))
        }
        #expect(truncations > 0)
    }

    @Test func onlyPlainCartPolesTakeTheFastPath() throws {
        let shared = CartPole()
        let cases: [(String, VectorEnvironment, Bool)] = [
            ("registered", try VectorEnvironment(id: "CartPole-v1", count: 3), true),
            ("Sutton-Barto reward", try VectorEnvironment(id: "CartPole-v1", options: ["sutton_barto_reward": "true"], count: 3), true),
            ("bare CartPole", try VectorEnvironment(count: 3) { _ in CartPole() }, true),
            ("one object twice", try VectorEnvironment(count: 2) { _ in shared }, false),
            ("wrapped", try VectorEnvironment(count: 3) { _ in Passthrough(CartPole()) }, false),
            ("Acrobot", try VectorEnvironment(id: "Acrobot-v1", count: 3), false),
        ]
        for (name, v, fast) in cases {
            #expect(!v.usesFastPath, "\(name) before reset")
            v.reset(seed: 0)
            #expect(v.usesFastPath == fast, "\(name)")
        }
    }

    @Test func suttonBartoRewardAndShortTimeLimitMatchGenericPath() throws {
        let make = { TimeLimit(CartPole(suttonBartoReward: true), maxEpisodeSteps: 30) }
        let fast = try VectorEnvironment(count: 6, threads: 2) { _ in make() }
        let generic = try VectorEnvironment(count: 6, threads: 2) { _ in Passthrough(make()) }
        let (a, _) = Self.run(fast, steps: 800), (b, _) = Self.run(generic, steps: 800)
        #expect(fast.usesFastPath && a == b)
        #expect(a.contains { s in s.rewards.contains(-1) } && a.contains { s in s.finished.contains { $0.length == 30 } })
    }

    @Test func stepBeforeResetIsRefusedAsByTheGenericPath() throws {
        let fast = try VectorEnvironment(id: "CartPole-v1", count: 2, threads: 2)
        let generic = try VectorEnvironment(count: 2, threads: 2) { _ in Passthrough(try Registry.make("CartPole-v1")) }
        #expect(throws: EnvironmentError.stepBeforeReset("CartPole-v1")) { try fast.step([0, 1]) }
        #expect(throws: EnvironmentError.stepBeforeReset("CartPole-v1")) { try generic.step([0, 1]) }
    }
}
