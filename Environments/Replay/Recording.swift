import Foundation
import Support

/// A trajectory recorded from Gymnasium (the JSON Lines format of rlbench's parity fixtures): a header with the
/// environment id, make options, reset seed and initial state, then one line per `step` with the action and what
/// Gymnasium returned.
public struct Recording: Sendable {
    public struct Step: Sendable {
        public var action: Action
        public var observation: [Double]
        public var reward: Double
        public var terminated: Bool
        public var truncated: Bool
    }

    public var file: String
    public var env: String
    public var makeOptions: [String: String]
    public var resetSeed: UInt64?
    public var initialState: [Double]
    /// The observation of `initialState` as Gymnasium returned it, when the header has one.
    public var initialObservation: [Double]?
    public var stateDtype: String?
    public var steps: [Step]

    /// Reads and parses a recording; errors name the file and line.
    public init(contentsOf url: URL) throws {
        let text: String
        do { text = try Files.text(url) } catch {
            throw ReplayError.unreadable(url.path, error.localizedDescription)
        }
        try self.init(text: text, file: url.lastPathComponent)
    }

    /// Parses a recording's text; errors name `file` and the line.
    public init(text: String, file: String) throws {
        self.file = file
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard let first = lines.first else { throw ReplayError.malformed(file, line: 1, "the file is empty") }
        func object(_ line: Substring, _ number: Int) throws -> [String: Any] {
            guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw ReplayError.malformed(file, line: number, "not a JSON object")
            }
            return o
        }
        let header = try object(first, 1)
        guard let env = header["env"] as? String else { throw ReplayError.malformed(file, line: 1, "no 'env' in the header") }
        self.env = env
        makeOptions = ((header["make_kwargs"] as? [String: Any]) ?? [:]).mapValues { value in
            // JSON booleans arrive as NSNumber with the objCType of a C char.
            if let n = value as? NSNumber, String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
            return "\(value)"
        }
        resetSeed = (header["reset_seed"] as? NSNumber).map { UInt64(truncating: $0) }
        guard let state = header["initial_state"] as? [NSNumber] else {
            throw ReplayError.malformed(file, line: 1, "no 'initial_state' list in the header")
        }
        initialState = state.map(\.doubleValue)
        if let list = header["initial_observation"] as? [NSNumber] { initialObservation = list.map(\.doubleValue) }
        else if let value = header["initial_observation"] as? NSNumber { initialObservation = [value.doubleValue] }
        else { initialObservation = nil }
        stateDtype = header["state_dtype"] as? String
        var parsed: [Step] = []
        for (i, line) in lines.dropFirst().enumerated() {
            let o = try object(line, i + 2)
            let action: Action
            if let list = o["action"] as? [NSNumber] {
                action = .continuous(list.map { Float($0.doubleValue) })
            } else if let a = o["action"] as? NSNumber {
                action = .discrete(a.intValue)
            } else {
                throw ReplayError.malformed(file, line: i + 2, "no action")
            }
            let observation: [Double]
            if let list = o["observation"] as? [NSNumber] { observation = list.map(\.doubleValue) }
            else if let s = o["observation"] as? NSNumber { observation = [s.doubleValue] }
            else { throw ReplayError.malformed(file, line: i + 2, "no observation") }
            guard let reward = (o["reward"] as? NSNumber)?.doubleValue, let terminated = o["terminated"] as? Bool,
                  let truncated = o["truncated"] as? Bool else {
                throw ReplayError.malformed(file, line: i + 2, "needs reward, terminated and truncated")
            }
            parsed.append(Step(action: action, observation: observation, reward: reward, terminated: terminated, truncated: truncated))
        }
        steps = parsed
    }
}

/// The outcome of replaying a recording.
public struct ReplayReport: Sendable {
    public var file: String
    public var steps: Int
    /// The largest observation difference (absolute, or relative where that is smaller).
    public var largestObservationDeviation: Double
    public var largestRewardDeviation: Double
    /// The first mismatch (observation beyond tolerance, reward, or a flag), if any.
    public var firstMismatch: String?
    public var passed: Bool { firstMismatch == nil }
}

public enum ReplayError: Error, CustomStringConvertible {
    case unreadable(String, String)
    case malformed(String, line: Int, String)
    case cannotSetState(String)

    public var description: String {
        switch self {
        case let .unreadable(path, why): "cannot read \(path): \(why)"
        case let .malformed(file, line, why): "\(file):\(line): \(why)"
        case let .cannotSetState(why): why
        }
    }
}

extension Recording {
    /// Replays the recording on rlbench's environment: make with the recorded options, reset with the recorded
    /// seed, set the initial state, apply every action, and compare each observation (within `tolerance`, absolute
    /// or relative), reward (within 1e-9) and flag (exactly).
    public func replay(tolerance: Double = 1e-6) throws -> ReplayReport {
        let env = try Registry.make(self.env, options: makeOptions)
        env.reset(seed: resetSeed)
        let first = try Recording.setState(env, initialState, float32: stateDtype == "float32")
        var report = ReplayReport(file: file, steps: steps.count, largestObservationDeviation: 0, largestRewardDeviation: 0)
        if let initialObservation {
            if first.count != initialObservation.count {
                report.firstMismatch = "the initial observation has \(first.count) values, recorded \(initialObservation.count)"
            } else if let i = first.indices.first(where: { !Recording.agrees(Double(first[$0]), initialObservation[$0], tolerance: tolerance) }) {
                report.firstMismatch = "the initial observation[\(i)] is \(first[i]), recorded \(initialObservation[i])"
            }
        }
        for (t, expected) in steps.enumerated() {
            let result = try env.step(expected.action)
            func mismatch(_ what: String) { if report.firstMismatch == nil { report.firstMismatch = "step \(t + 1): \(what)" } }
            if result.observation.count != expected.observation.count {
                mismatch("observation has \(result.observation.count) values, recorded \(expected.observation.count)")
            } else {
                for (i, (a, b)) in zip(result.observation, expected.observation).enumerated() {
                    report.largestObservationDeviation = max(report.largestObservationDeviation, Recording.deviation(Double(a), b))
                    if !Recording.agrees(Double(a), b, tolerance: tolerance) { mismatch("observation[\(i)] is \(a), recorded \(b)") }
                }
            }
            let rewardDiff = abs(result.reward - expected.reward)
            report.largestRewardDeviation = max(report.largestRewardDeviation, rewardDiff)
            if rewardDiff > 1e-9 * max(1, abs(expected.reward)) { mismatch("reward is \(result.reward), recorded \(expected.reward)") }
            if result.terminated != expected.terminated { mismatch("terminated is \(result.terminated), recorded \(expected.terminated)") }
            if result.truncated != expected.truncated { mismatch("truncated is \(result.truncated), recorded \(expected.truncated)") }
            // Episodes that end at different steps cannot be compared further (the next step would be refused).
            if result.terminated != expected.terminated || result.truncated != expected.truncated { break }
        }
        return report
    }

    /// The difference of `a` from the recorded `b`: absolute, or relative where that is smaller.
    static func deviation(_ a: Double, _ b: Double) -> Double {
        let diff = abs(a - b)
        return min(diff, diff / max(abs(b), 1e-300))
    }

    static func agrees(_ a: Double, _ b: Double, tolerance: Double) -> Bool { deviation(a, b) <= tolerance }

    /// Sets the internal state of a (possibly wrapped) environment; returns the observation of that state.
    @discardableResult
    static func setState(_ env: Environment, _ state: [Double], float32: Bool) throws -> [Float] {
        var base = env
        while let wrapped = base as? TimeLimit { base = wrapped.inner }
        guard let replayable = base as? any ReplayableEnvironment else {
            throw ReplayError.cannotSetState("\(env.spec?.id ?? "this environment") cannot have its state set for a replay")
        }
        return try replayable.setRecordedState(state, float32: float32)
    }
}

/// An environment whose state a replay can set, so that a recorded episode is stepped from Gymnasium's initial state.
/// Reading the state back (`recordedState`) is what lets `Environment.snapshot()` save a running environment.
protocol ReplayableEnvironment: Environment {
    /// Sets the state to a recording's `initial_state` (`float32`: Gymnasium kept it in float32) and starts an
    /// episode from it; returns the observation of that state.
    func setRecordedState(_ values: [Double], float32: Bool) throws -> [Float]
    /// The current state, as `setRecordedState` takes it.
    var recordedState: [Double] { get }
    /// Whether the current state is kept in float32 (the `float32` argument that sets it back).
    var recordedStateIsFloat32: Bool { get }
}

extension ReplayableEnvironment {
    var recordedStateIsFloat32: Bool { false }
}

extension ReplayableEnvironment {
    /// The `count` observation values `write` writes.
    func observation(_ count: Int, _ write: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
        var o = [Float](repeating: 0, count: count)
        o.withUnsafeMutableBufferPointer { write($0) }
        return o
    }
}

/// An environment whose recorded state is the physical state `setState` takes, observed by `write`.
protocol StateReplayable: ReplayableEnvironment {
    func setState(_ values: [Double]) throws
    /// Writes the observation of the current state.
    func write(_ observation: UnsafeMutableBufferPointer<Float>)
}

extension StateReplayable {
    func setRecordedState(_ values: [Double], float32: Bool) throws -> [Float] {
        try setState(values)
        return observation(observationSpace.flatCount, write)
    }
}

/// A grid environment, whose recorded state is one whole number: the cell index.
protocol GridReplayable: ReplayableEnvironment {
    /// The agent's cell.
    var position: Int { get }
    /// Puts the agent on cell `index` and starts an episode from there.
    func setState(_ index: Int) throws
}

extension GridReplayable {
    var recordedState: [Double] { [Double(position)] }

    func setRecordedState(_ values: [Double], float32: Bool) throws -> [Float] {
        guard values.count == 1, let index = Int(exactly: values[0]) else {
            throw EnvironmentError.invalidState("a grid state is one whole number (the cell index), got \(values)")
        }
        try setState(index)
        return [Float(position)]
    }
}
