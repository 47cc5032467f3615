import SeededRandom

/// An environment's (or a vector environment's) whole running state, as 64-bit words: the physical state, the
/// generator, the episode bookkeeping and the time limit's count. Restoring it into an environment made the same way
/// (same id and options) continues exactly where the snapshot was taken: every later observation, reward, flag and
/// random draw is the same bit for bit. `--resume` saves one beside each checkpoint.
///
/// The words are numbers kept whole (a `Double` as its bits, a flag as 0 or 1); their layout is the environment's
/// own and is read back by the same code that wrote it (`SnapshotWriter`, `SnapshotReader`).
public struct EnvironmentSnapshot: Sendable, Equatable {
    public var words: [UInt64]
    public init(words: [UInt64]) { self.words = words }
}

extension Environment {
    /// The environment's whole running state, or nil when it cannot be captured: only rlbench's registered
    /// environments (those a replay can set, `ReplayableEnvironment`), alone or inside `TimeLimit`s, can.
    public func snapshot() -> EnvironmentSnapshot? {
        var writer = SnapshotWriter()
        guard write(to: &writer) else { return nil }
        return EnvironmentSnapshot(words: writer.words)
    }

    /// Puts back a state `snapshot()` took of an environment made the same way; an error names what does not fit.
    public func restore(_ snapshot: EnvironmentSnapshot) throws {
        var reader = SnapshotReader(snapshot.words, of: "the snapshot of \(spec?.id ?? "an environment")")
        try restore(from: &reader)
        try reader.finish()
    }

    /// Appends the snapshot's words; false (nothing written) when the environment cannot be captured.
    func write(to writer: inout SnapshotWriter) -> Bool {
        if let wrapper = self as? StatelessWrapper { return wrapper.inner.write(to: &writer) }
        if let limit = self as? TimeLimit {
            var inner = SnapshotWriter()
            guard limit.inner.write(to: &inner) else { return false }
            writer.write(true)
            limit.writeProgress(to: &writer)
            writer.append(inner)
            return true
        }
        guard let env = self as? any ReplayableEnvironment & EpisodicEnvironment else { return false }
        writer.write(false)
        writer.write(env.recordedState)
        writer.write(env.recordedStateIsFloat32)
        env.writeEpisode(to: &writer)
        return true
    }

    /// Reads what `write(to:)` wrote.
    func restore(from reader: inout SnapshotReader) throws {
        if let wrapper = self as? StatelessWrapper { return try wrapper.inner.restore(from: &reader) }
        let limited = try reader.bool()
        if let limit = self as? TimeLimit {
            guard limited else { throw reader.mismatch("it was taken without a time limit; this environment has one") }
            try limit.restoreProgress(from: &reader)
            try limit.inner.restore(from: &reader)
            return
        }
        guard !limited else { throw reader.mismatch("it was taken with a time limit; this environment has none") }
        guard let env = self as? any ReplayableEnvironment & EpisodicEnvironment else {
            throw reader.mismatch("\(spec?.id ?? "this environment") cannot have its state set")
        }
        let state = try reader.doubles(), float32 = try reader.bool()
        do { _ = try env.setRecordedState(state, float32: float32) } catch {
            throw reader.mismatch("its state \(state) is not one of \(spec?.id ?? "this environment") (\(error))")
        }
        try env.restoreEpisode(from: &reader)
    }
}

/// A wrapper that keeps no state of its own (it only transforms what its inner environment returns): its snapshot is
/// its inner environment's.
public protocol StatelessWrapper: Environment {
    var inner: Environment { get }
}

/// Writes a snapshot's words in order.
public struct SnapshotWriter {
    public private(set) var words: [UInt64] = []
    public init() {}

    public mutating func write(_ value: UInt64) { words.append(value) }
    public mutating func write(_ value: Int) { words.append(UInt64(bitPattern: Int64(value))) }
    public mutating func write(_ value: Double) { words.append(value.bitPattern) }
    public mutating func write(_ value: Bool) { words.append(value ? 1 : 0) }
    public mutating func write(_ rng: SeededGenerator) { words += rng.stateWords }
    /// A count, then the values.
    public mutating func write(_ values: [Double]) { write(values.count); for v in values { write(v) } }
    public mutating func write(_ values: [Float]) { write(values.count); for v in values { words.append(UInt64(v.bitPattern)) } }
    public mutating func write(_ values: [Bool]) { write(values.count); for v in values { write(v) } }
    /// Another writer's words, as they are.
    public mutating func append(_ other: SnapshotWriter) { words += other.words }
    /// A snapshot, after its count of words.
    public mutating func write(_ snapshot: EnvironmentSnapshot) { write(snapshot.words.count); words += snapshot.words }
}

/// Reads a snapshot's words in the order they were written; anything that does not fit (too few or too many words,
/// a flag that is not 0 or 1, a count not the one expected) is an `EnvironmentError.invalidState` naming the snapshot.
public struct SnapshotReader {
    private let words: [UInt64]
    private var position = 0
    /// What the words are, for errors ("the snapshot of CartPole-v1").
    let what: String

    public init(_ words: [UInt64], of what: String) { self.words = words; self.what = what }

    public mutating func word() throws -> UInt64 {
        guard position < words.count else { throw mismatch("it ends early (\(words.count) words)") }
        defer { position += 1 }
        return words[position]
    }

    public mutating func int() throws -> Int { Int(Int64(bitPattern: try word())) }
    public mutating func double() throws -> Double { Double(bitPattern: try word()) }

    public mutating func bool() throws -> Bool {
        let w = try word()
        guard w <= 1 else { throw mismatch("word \(position - 1) is \(w), not a flag (0 or 1)") }
        return w == 1
    }

    public mutating func generator() throws -> SeededGenerator {
        let state = [try word(), try word(), try word(), try word()]
        guard state.contains(where: { $0 != 0 }), let rng = SeededGenerator(stateWords: state) else {
            throw mismatch("a generator state is all zeros")
        }
        return rng
    }

    /// A count (equal to `expected` when given), checked against the words left.
    public mutating func count(_ expected: Int? = nil) throws -> Int {
        let n = try int()
        guard n >= 0, n <= words.count - position else { throw mismatch("it holds a count of \(n) with \(words.count - position) words left") }
        if let expected, n != expected { throw mismatch("it holds \(n) values where \(expected) are expected") }
        return n
    }

    public mutating func doubles(count expected: Int? = nil) throws -> [Double] {
        try (0..<count(expected)).map { _ in try double() }
    }

    public mutating func floats(count expected: Int? = nil) throws -> [Float] {
        try (0..<count(expected)).map { _ in
            let w = try word()
            guard w <= UInt64(UInt32.max) else { throw mismatch("word \(position - 1) is not a 32-bit float") }
            return Float(bitPattern: UInt32(w))
        }
    }

    public mutating func bools(count expected: Int? = nil) throws -> [Bool] {
        try (0..<count(expected)).map { _ in try bool() }
    }

    /// A snapshot written with `SnapshotWriter.write(_: EnvironmentSnapshot)`.
    public mutating func snapshot() throws -> EnvironmentSnapshot {
        let n = try count()
        defer { position += n }
        return EnvironmentSnapshot(words: Array(words[position ..< position + n]))
    }

    /// Throws unless every word was read.
    public func finish() throws {
        guard position == words.count else { throw mismatch("it has \(words.count - position) words more than expected") }
    }

    /// The error for a snapshot that does not fit: `reason` says how.
    public func mismatch(_ reason: String) -> EnvironmentError {
        .invalidState("\(what) does not fit: \(reason)")
    }
}
