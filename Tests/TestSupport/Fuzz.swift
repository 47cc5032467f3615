import Foundation

/// Seeded mutation fuzzing for the readers of files a user hands rlbench: from real inputs, thousands of variants
/// (bit flips, truncations, numbers and length fields set to extremes, deep nesting, repeated and deleted slices),
/// each of which a reader must either load or refuse with an error: never trap, hang or allocate without bound.
/// `RLBENCH_FUZZ_ITERATIONS` sets how many variants a test tries (a few thousand by default, which takes seconds).
public struct Fuzz {
    /// The variants per test: `RLBENCH_FUZZ_ITERATIONS`, else `defaultIterations`.
    public static func iterations(default defaultIterations: Int = 3000) -> Int {
        ProcessInfo.processInfo.environment["RLBENCH_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? defaultIterations
    }

    var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// SplitMix64: a generator of its own, so that TestSupport depends on nothing.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

    /// Texts that stand for a number at its extremes.
    static let extremeNumbers = ["0", "-1", "-0", "255", "65536", "4294967295", "4294967296", "9223372036854775807",
                                 "-9223372036854775808", "18446744073709551616", "1e308", "1e999", "-1e308", "nan",
                                 "99999999999999999999999", "0.5", "1e-320"]
    /// Byte patterns for binary length fields.
    static let extremeBytes: [[UInt8]] = [[0xFF], [0x00], [0x7F], [0x80], [0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF],
                                          [0x00, 0x00, 0x00, 0x00], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                                          [0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00]]
    static let nesting = ["[", "{", "[[[[[[[[[[", "{\"a\":", "- ", "  - ", "a: ", "&x ", "*x ", "\"", "\n", "\u{0}", "é"]

    /// A variant of `input`: one to three mutations.
    public mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0...below(3) { mutateOnce(&bytes) }
        return bytes
    }

    /// `count` variants of the inputs, round robin.
    public mutating func variants(of inputs: [[UInt8]], count: Int) -> [[UInt8]] {
        (0..<count).map { mutate(inputs[$0 % inputs.count]) }
    }

    private mutating func mutateOnce(_ bytes: inout [UInt8]) {
        let at = below(bytes.count + 1)
        switch below(7) {
        case 0 where !bytes.isEmpty:  // a bit flip
            let i = below(bytes.count)
            bytes[i] ^= 1 << UInt8(below(8))
        case 1:  // truncation
            bytes.removeSubrange(at...)
        case 2:  // a binary field set to an extreme
            let pattern = Self.extremeBytes[below(Self.extremeBytes.count)]
            for (k, b) in pattern.enumerated() where at + k < bytes.count { bytes[at + k] = b }
        case 3:  // a number in the text set to an extreme
            if let run = numberRun(in: bytes, from: at) {
                bytes.replaceSubrange(run, with: Array(Self.extremeNumbers[below(Self.extremeNumbers.count)].utf8))
            }
        case 4:  // nesting or structure inserted, repeated
            let piece = Array(Self.nesting[below(Self.nesting.count)].utf8)
            let times = [1, 2, 10, 100, 2000][below(5)]
            bytes.insert(contentsOf: Array([[UInt8]](repeating: piece, count: times).joined()), at: at)
        case 5 where !bytes.isEmpty:  // a slice repeated
            let end = min(bytes.count, at + 1 + below(64))
            let slice = Array(bytes[min(at, bytes.count - 1)..<end])
            bytes.insert(contentsOf: Array([[UInt8]](repeating: slice, count: 1 + below(8)).joined()), at: at)
        default:  // a slice deleted
            let end = min(bytes.count, at + 1 + below(16))
            if at < end { bytes.removeSubrange(at..<end) }
        }
    }

    /// The run of digits (with a sign, point and exponent) nearest after `start`, if any.
    private func numberRun(in bytes: [UInt8], from start: Int) -> Range<Int>? {
        let isDigit = { (b: UInt8) in b >= 0x30 && b <= 0x39 }
        guard let first = bytes[start...].firstIndex(where: isDigit) ?? bytes.firstIndex(where: isDigit) else { return nil }
        var end = first
        while end < bytes.count, isDigit(bytes[end]) || bytes[end] == UInt8(ascii: ".") || bytes[end] == UInt8(ascii: "e") { end += 1 }
        return first..<end
    }

    /// Runs `body` on every variant (each must load or throw; a trap ends the test process); how many loaded, how
    /// many were refused, and the seconds all took.
    public static func check(_ variants: [[UInt8]], _ body: ([UInt8]) throws -> Void) -> (loaded: Int, refused: Int, seconds: Double) {
        let start = Date()
        var loaded = 0, refused = 0
        for v in variants {
            do { try body(v); loaded += 1 } catch { refused += 1 }
        }
        return (loaded, refused, Date().timeIntervalSince(start))
    }
}
