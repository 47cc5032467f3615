import CZlib
import Foundation
import Support

/// The random numbers a recording says the `minatar` package drew, handed out in order (`MinAtarEnvironment`'s
/// `recordedDraws`), so that sticky actions and spawns replay exactly. A draw of the wrong kind or range, or one past
/// the end, is remembered as the first mismatch (and 0 is returned) rather than stopping the replay.
public final class RecordedDraws: MinAtarRandomSource {
    public enum Draw: Sendable, Equatable {
        case uniform(Double)
        case integer(low: Int, high: Int, value: Int)
    }

    public let draws: [Draw]
    /// How many draws were handed out.
    public private(set) var used = 0
    /// The first draw that did not fit, described.
    public private(set) var mismatch: String?

    public init(_ draws: [Draw]) { self.draws = draws }

    private func next(_ asked: String) -> Draw? {
        guard used < draws.count else {
            if mismatch == nil { mismatch = "draw \(used + 1): \(asked) asked for, but the recording has only \(draws.count) draws" }
            return nil
        }
        used += 1
        return draws[used - 1]
    }

    public func uniform() -> Double {
        let draw = next("rand()")
        if case let .uniform(value)? = draw { return value }
        if let draw, mismatch == nil { mismatch = "draw \(used): rand() asked for, the package drew \(draw)" }
        return 0
    }

    public func integer(_ low: Int, _ high: Int) -> Int {
        let draw = next("randint(\(low), \(high))")
        if case let .integer(l, h, value)? = draw, l == low, h == high { return value }
        if let draw, mismatch == nil { mismatch = "draw \(used): randint(\(low), \(high)) asked for, the package drew \(draw)" }
        return low
    }
}

/// A run of a MinAtar game recorded from the `minatar` package 1.0.15 with every random draw it made
/// (`Tests/EnvironmentsTests/Recordings/MinAtar/record.py` writes them, one JSON object per line, gzipped): the
/// actions, draws, observations (bit-packed, in hexadecimal), rewards and terminations of `steps` steps from one seed,
/// resetting without a seed after each episode.
public struct MinAtarRecording: Sendable {
    public var env: String
    public var seed: Int
    public var actions: [Int]
    public var draws: [RecordedDraws.Draw]
    /// The reset observation, then one per step (after a terminated step, the next episode's reset observation).
    public var observations: [[Float]]
    public var rewards: [Double]
    public var terminated: [Bool]

    /// The recordings in a gzipped JSON Lines file; errors name the file and line.
    public static func load(_ url: URL) throws -> [MinAtarRecording] {
        let text = String(decoding: try gunzip(url), as: UTF8.self)
        return try text.split(separator: "\n").enumerated().map { i, line in
            try MinAtarRecording(line: line, file: url.lastPathComponent, number: i + 1)
        }
    }

    init(line: Substring, file: String, number: Int) throws {
        func fail(_ why: String) -> ReplayError { .malformed(file, line: number, why) }
        guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
              let env = o["env"] as? String, let seed = o["seed"] as? Int, let steps = o["steps"] as? Int,
              let actions = o["actions"] as? [Int], let draws = o["draws"] as? [Any],
              let observations = o["observations"] as? [String], let rewards = o["rewards"] as? [NSNumber],
              let terminated = o["terminated"] as? [Bool] else {
            throw fail("needs env, seed, steps, actions, draws, observations, rewards and terminated")
        }
        guard actions.count == steps, rewards.count == steps, terminated.count == steps, observations.count == steps + 1 else {
            throw fail("\(steps) steps, but \(actions.count) actions, \(rewards.count) rewards, \(terminated.count) flags, "
                       + "\(observations.count) observations (one more than steps)")
        }
        (self.env, self.seed, self.actions, self.terminated) = (env, seed, actions, terminated)
        self.rewards = rewards.map(\.doubleValue)
        self.draws = try draws.map { item in
            if let triple = item as? [Int], triple.count == 3 { return .integer(low: triple[0], high: triple[1], value: triple[2]) }
            if let n = item as? NSNumber { return .uniform(n.doubleValue) }
            throw fail("a draw is a number (rand) or [low, high, value] (randint), got \(item)")
        }
        self.observations = try observations.map { hex in
            guard let bits = Self.bits(hex) else { throw fail("an observation is not hexadecimal: \(hex.prefix(20))…") }
            return bits
        }
    }

    /// The bits of numpy's `packbits` (most significant first) as 0/1 floats.
    static func bits(_ hex: String) -> [Float]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bits: [Float] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16) else { return nil }
            for b in (0..<8).reversed() { bits.append(Float((byte >> b) & 1)) }
        }
        return bits
    }

    /// Replays the recording: makes the environment, feeds it the recorded draws, resets it (then again after each
    /// terminated step, without a seed), steps it with the recorded actions and compares every observation, reward and
    /// flag exactly; at the end every recorded draw must have been used.
    public func replay() throws -> ReplayReport {
        let made = try Registry.make(env)
        guard let env = made as? any RecordedDrawsPlayable else {
            throw ReplayError.cannotSetState("\(self.env) does not take recorded draws")
        }
        let draws = RecordedDraws(draws)
        env.recordedDraws = draws
        var report = ReplayReport(file: "\(self.env) seed \(seed)", steps: actions.count, largestObservationDeviation: 0, largestRewardDeviation: 0)
        func mismatch(_ what: String) { if report.firstMismatch == nil { report.firstMismatch = what } }
        func compare(_ observation: [Float], _ t: Int) {
            // packbits pads the last byte with zeros.
            let expected = observations[t], channels = observation.count / 100
            guard expected.count >= observation.count, expected.count - observation.count < 8,
                  !expected[observation.count...].contains(1) else {
                return mismatch("step \(t): observation has \(observation.count) values, recorded \(expected.count) bits")
            }
            if let i = observation.indices.first(where: { observation[$0] != expected[$0] }) {
                mismatch("step \(t): the observation at row \(i / (10 * channels)), column \(i / channels % 10), channel "
                         + "\(i % channels) is \(observation[i]), recorded \(expected[i])")
            }
        }
        // A draw of the wrong kind is named before the differences it causes.
        let first = made.reset(seed: UInt64(seed))
        if let problem = draws.mismatch { mismatch("reset: \(problem)") }
        compare(first, 0)
        for t in actions.indices where report.firstMismatch == nil {
            let result = try made.step(actions[t])
            if let problem = draws.mismatch { mismatch("step \(t + 1): \(problem)") }
            if result.reward != rewards[t] { mismatch("step \(t + 1): reward is \(result.reward), recorded \(rewards[t])") }
            report.largestRewardDeviation = max(report.largestRewardDeviation, abs(result.reward - rewards[t]))
            if result.terminated != terminated[t] { mismatch("step \(t + 1): terminated is \(result.terminated), recorded \(terminated[t])") }
            if result.truncated { mismatch("step \(t + 1): truncated, but MinAtar has no time limit") }
            let next = result.terminated ? made.reset() : result.observation
            if let problem = draws.mismatch { mismatch("step \(t + 1), reset: \(problem)") }
            compare(next, t + 1)
        }
        if report.firstMismatch == nil && draws.used != draws.draws.count {
            mismatch("\(draws.draws.count - draws.used) recorded draws were not used")
        }
        return report
    }

    /// The file's bytes, gunzipped (zlib reads a plain file as it is).
    static func gunzip(_ url: URL) throws -> [UInt8] {
        guard let file = gzopen(url.path, "rb") else { throw ReplayError.unreadable(url.path, "cannot open") }
        defer { gzclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = gzread(file, &chunk, UInt32(chunk.count))
            if n < 0 { throw ReplayError.unreadable(url.path, "corrupt gzip data") }
            if n == 0 { return bytes }
            bytes += chunk[0..<Int(n)]
            guard bytes.count <= Limits.recordingBytes else {
                throw ReplayError.unreadable(url.path, "more than \(Limits.recordingBytes) bytes unpacked")
            }
        }
    }
}

/// A MinAtar environment of any game, whose random numbers a replay can supply.
protocol RecordedDrawsPlayable: Environment {
    var recordedDraws: RecordedDraws? { get set }
}

extension MinAtarEnvironment: RecordedDrawsPlayable {}
