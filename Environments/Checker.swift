import Foundation
import Imaging
import SeededRandom

/// One problem `checkEnvironment` found.
public struct CheckIssue: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }
    /// Which check found it, e.g. `"reset observation"`, `"seeding"`.
    public enum Check: String, Sendable, CaseIterable {
        case spaces = "spaces"
        case resetObservation = "reset observation"
        case stepObservation = "step observation"
        case reward = "reward"
        case sampledAction = "sampled action"
        case invalidAction = "invalid action"
        case seeding = "seeding"
        case stepAfterEnd = "step after end"
        case render = "render"
    }
    public var severity: Severity
    public var check: Check
    public var message: String
    public init(_ severity: Severity, _ check: Check, _ message: String) {
        self.severity = severity; self.check = check; self.message = message
    }
    public var description: String { "\(severity) [\(check.rawValue)]: \(message)" }
}

/// The error `requireValidEnvironment` throws: every error-severity issue found.
public struct EnvironmentCheckFailed: Error, CustomStringConvertible {
    public var environment: String
    public var issues: [CheckIssue]
    public var description: String {
        "\(environment) failed the environment check:\n" + issues.map { "  " + $0.description }.joined(separator: "\n")
    }
}

/// Checks that `env` follows the `Environment` contract, like Gymnasium's `check_env`:
///
/// - the spaces are well formed (box bounds of the declared shape, `low ≤ high`; `Discrete(n)` with n > 0);
/// - `reset` and `step` write exactly `observationSpace.flatCount` values (no fewer, none past the end) that lie in
///   the observation space;
/// - rewards are finite; actions sampled from the action space are accepted; an out-of-range discrete action or
///   a continuous action of the wrong length is refused;
/// - seeding reproduces the trajectory: two `reset(seed:)` with the same seed followed by the same sampled
///   actions give bit-identical observations, rewards and flags;
/// - `step` after the episode ended (without `reset`) throws;
/// - `render()` returns an image of positive size whose pixel buffer matches it.
///
/// The environment is reset and stepped (up to `maxSteps` steps per phase); its state afterwards is unspecified.
/// Actions are sampled from `SeededGenerator(seed: seed)`. Returns every issue found (empty: all good).
public func checkEnvironment(_ env: Environment, seed: UInt64 = 0, maxSteps: Int = 20_000) -> [CheckIssue] {
    var checker = EnvironmentChecker(env: env, seed: seed, maxSteps: maxSteps)
    return checker.run()
}

/// Runs `checkEnvironment` and throws `EnvironmentCheckFailed` when it found any error (warnings pass).
public func requireValidEnvironment(_ env: Environment, seed: UInt64 = 0, maxSteps: Int = 20_000) throws {
    let errors = checkEnvironment(env, seed: seed, maxSteps: maxSteps).filter { $0.severity == .error }
    if !errors.isEmpty { throw EnvironmentCheckFailed(environment: env.spec?.id ?? "\(type(of: env))", issues: errors) }
}

/// The state of one check run.
private struct EnvironmentChecker {
    let env: Environment
    let seed: UInt64
    let maxSteps: Int
    var issues: [CheckIssue] = []
    /// The environment wrote past its declared observation (further checks are skipped).
    var observationOverran = false

    /// Extra floats after the observation that must stay untouched.
    static let guardCount = 16
    /// A NaN with a payload no environment computes: marks "not written".
    static let unwritten = Float(bitPattern: 0x7FC0_BEEF)
    static let guardValue = Float(bitPattern: 0x7FC0_FEED)

    init(env: Environment, seed: UInt64, maxSteps: Int) {
        self.env = env; self.seed = seed; self.maxSteps = maxSteps
    }

    mutating func add(_ severity: CheckIssue.Severity, _ check: CheckIssue.Check, _ message: String) {
        // One issue per check and severity is enough; repeated failures add nothing.
        if !issues.contains(where: { $0.check == check && $0.severity == severity }) {
            issues.append(CheckIssue(severity, check, message))
        }
    }

    mutating func run() -> [CheckIssue] {
        guard checkSpaces() else { return issues }
        checkRandomEpisodes()
        // An environment that writes past its observation would corrupt memory in further checks.
        if observationOverran { return issues }
        checkSeeding()
        checkInvalidActions()
        checkStepAfterEnd()
        checkRender()
        return issues
    }

    // MARK: - Spaces

    mutating func checkSpaces() -> Bool {
        var ok = true
        for (name, space) in [("observation", env.observationSpace), ("action", env.actionSpace)] {
            switch space {
            case let .discrete(n) where n <= 0:
                add(.error, .spaces, "\(name) space \(space) must have at least one value"); ok = false
            case let .box(low, high, shape):
                let count = shape.reduce(1, *)
                if shape.isEmpty || shape.contains(where: { $0 <= 0 }) || low.count != count || high.count != count {
                    add(.error, .spaces, "\(name) space has shape \(shape) but \(low.count) low and \(high.count) high bounds"); ok = false
                } else if let i = low.indices.first(where: { !(low[$0] <= high[$0]) }) {
                    add(.error, .spaces, "\(name) space bound \(i): low \(low[i]) is not ≤ high \(high[i])"); ok = false
                }
            default: break
            }
        }
        return ok
    }

    // MARK: - Observations

    /// A buffer of the declared size followed by guard values; `body` gets the declared part.
    final class ObservationProbe {
        let size: Int
        var storage: [Float]
        init(size: Int) { self.size = size; storage = [Float](repeating: 0, count: size + EnvironmentChecker.guardCount) }

        /// Fills with sentinels, runs `body` on the declared part, and returns the observation.
        func capture<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> (R, [Float]) {
            for i in 0..<storage.count { storage[i] = i < size ? EnvironmentChecker.unwritten : EnvironmentChecker.guardValue }
            let r = try storage.withUnsafeMutableBufferPointer { try body(UnsafeMutableBufferPointer(rebasing: $0[0..<size])) }
            return (r, Array(storage[0..<size]))
        }

        var overran: Bool { storage[size...].contains { $0.bitPattern != EnvironmentChecker.guardValue.bitPattern } }
        var unwrittenIndices: [Int] { (0..<size).filter { storage[$0].bitPattern == EnvironmentChecker.unwritten.bitPattern } }
    }

    /// Validates a just-captured observation; false when it is wrong.
    @discardableResult
    mutating func validate(_ obs: [Float], probe: ObservationProbe, _ check: CheckIssue.Check, _ context: String) -> Bool {
        let size = env.observationSpace.flatCount
        if probe.overran {
            observationOverran = true
            add(.error, check, "\(context) wrote past the \(size) values of the observation space \(env.observationSpace) "
                + "(the observation is longer than declared)")
            return false
        }
        let missing = probe.unwrittenIndices
        if !missing.isEmpty {
            add(.error, check, "\(context) did not write observation values \(missing.prefix(8).map(String.init).joined(separator: ", ")) "
                + "of \(size) (the observation is shorter than declared by \(env.observationSpace))")
            return false
        }
        if let i = obs.indices.first(where: { obs[$0].isNaN }) {
            add(.error, check, "\(context) observation[\(i)] is NaN")
            return false
        }
        if !env.observationSpace.contains(obs) {
            add(.error, check, "\(context) observation \(describe(obs)) is outside the observation space \(env.observationSpace)"
                + outsideDetail(obs))
            return false
        }
        return true
    }

    func outsideDetail(_ obs: [Float]) -> String {
        switch env.observationSpace {
        case let .box(low, high, _):
            guard let i = obs.indices.first(where: { !(obs[$0] >= low[$0] && obs[$0] <= high[$0]) }) else { return "" }
            return " (element \(i) = \(obs[i]) not in [\(low[i]), \(high[i])])"
        case let .discrete(n):
            return " (expected an integer in 0..<\(n))"
        }
    }

    func describe(_ values: [Float]) -> String {
        values.count <= 8 ? "\(values)" : "\(Array(values.prefix(8)))… (\(values.count) values)"
    }

    // MARK: - Episodes with sampled actions

    /// Resets with `seed` and steps up to `steps` sampled actions, resetting at episode ends.
    mutating func checkRandomEpisodes() {
        let probe = ObservationProbe(size: env.observationSpace.flatCount)
        var rng = SeededGenerator(seed: seed)
        let ((), first) = probe.capture { env.reset(seed: seed, into: $0) }
        guard validate(first, probe: probe, .resetObservation, "reset(seed: \(seed))") else { return }
        for t in 0..<min(maxSteps, 1_000) {
            let action = env.actionSpace.sample(using: &rng)
            do {
                let (outcome, obs) = try probe.capture { try env.step(action, into: $0) }
                if !validate(obs, probe: probe, .stepObservation, "step \(t) with action \(action)") { return }
                if !outcome.reward.isFinite { add(.error, .reward, "step \(t) returned the non-finite reward \(outcome.reward)") }
                if outcome.done {
                    let ((), obs) = probe.capture { env.reset(seed: nil, into: $0) }
                    if !validate(obs, probe: probe, .resetObservation, "reset() after an episode") { return }
                }
            } catch {
                add(.error, .sampledAction, "step \(t) refused the action \(action) sampled from \(env.actionSpace): \(error)")
                return
            }
        }
    }

    // MARK: - Seeding

    struct Trajectory: Equatable {
        var observations: [UInt32] = []
        var rewards: [UInt64] = []
        var flags: [Bool] = []
    }

    /// Resets with `seed` and follows `actions` until the episode ends or they run out.
    func trajectory(seed: UInt64, actions: [Action]) throws -> Trajectory {
        var t = Trajectory()
        let probe = ObservationProbe(size: env.observationSpace.flatCount)
        let ((), first) = probe.capture { env.reset(seed: seed, into: $0) }
        t.observations += first.map(\.bitPattern)
        for action in actions {
            let (outcome, obs) = try probe.capture { try env.step(action, into: $0) }
            t.observations += obs.map(\.bitPattern)
            t.rewards.append(outcome.reward.bitPattern)
            t.flags += [outcome.terminated, outcome.truncated]
            if outcome.done { break }
        }
        return t
    }

    mutating func checkSeeding() {
        var rng = SeededGenerator(seed: seed &+ 1)
        let actions = (0..<200).map { _ in env.actionSpace.sample(using: &rng) }
        let s = seed &+ 12_345
        do {
            let a = try trajectory(seed: s, actions: actions)
            // Something in between, so leftover state would show.
            _ = try trajectory(seed: s &+ 1, actions: Array(actions.reversed()))
            let b = try trajectory(seed: s, actions: actions)
            if a != b {
                let difference = a.observations.indices.first(where: { $0 < b.observations.count && a.observations[$0] != b.observations[$0] }).map { "first differing observation value at index \($0)" }
                    ?? (a.rewards != b.rewards ? "rewards differ" : "termination flags or lengths differ")
                add(.error, .seeding, "two reset(seed: \(s)) with the same actions gave different trajectories (\(difference)); "
                    + "every random choice must come from the generator reset(seed:) reseeds")
            }
        } catch {
            add(.error, .sampledAction, "a sampled action was refused while checking seeding: \(error)")
        }
    }

    // MARK: - Refusals

    mutating func checkInvalidActions() {
        let invalid: Action
        switch env.actionSpace {
        case let .discrete(n): invalid = .discrete(n)
        case let .box(low, _, _): invalid = .continuous([Float](repeating: 0, count: low.count + 1))
        }
        let probe = ObservationProbe(size: env.observationSpace.flatCount)
        _ = probe.capture { env.reset(seed: seed, into: $0) }
        do {
            _ = try probe.capture { try env.step(invalid, into: $0) }
            add(.error, .invalidAction, "step accepted the invalid action \(invalid) for action space \(env.actionSpace); it must throw")
        } catch {}
    }

    mutating func checkStepAfterEnd() {
        var rng = SeededGenerator(seed: seed &+ 2)
        let probe = ObservationProbe(size: env.observationSpace.flatCount)
        _ = probe.capture { env.reset(seed: seed, into: $0) }
        do {
            var ended = false
            for _ in 0..<maxSteps {
                let action = env.actionSpace.sample(using: &rng)
                if try probe.capture({ try env.step(action, into: $0) }).0.done { ended = true; break }
            }
            guard ended else {
                add(.warning, .stepAfterEnd, "no episode ended within \(maxSteps) random steps; stepping after the end was not checked")
                return
            }
        } catch {
            add(.error, .sampledAction, "a sampled action was refused while running an episode to its end: \(error)")
            return
        }
        let action = env.actionSpace.sample(using: &rng)
        do {
            _ = try probe.capture { try env.step(action, into: $0) }
            add(.error, .stepAfterEnd, "step after the episode ended (without reset) was accepted; it must throw EnvironmentError.stepAfterEnd")
        } catch let error as EnvironmentError {
            if case .stepAfterEnd = error {} else {
                add(.warning, .stepAfterEnd, "step after the end threw \(error); EnvironmentError.stepAfterEnd is expected")
            }
        } catch {
            add(.warning, .stepAfterEnd, "step after the end threw \(error); EnvironmentError.stepAfterEnd is expected")
        }
    }

    // MARK: - Render

    mutating func checkRender() {
        _ = ObservationProbe(size: env.observationSpace.flatCount).capture { env.reset(seed: seed, into: $0) }
        let image = env.render()
        if image.width <= 0 || image.height <= 0 {
            add(.error, .render, "render() returned a \(image.width)×\(image.height) image; it must have positive size")
        } else if image.pixels.count != image.width * image.height * 3 {
            add(.error, .render, "render() returned \(image.pixels.count) bytes for a \(image.width)×\(image.height) RGB image")
        }
    }
}
