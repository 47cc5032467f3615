import Foundation

/// The one syntax of counts (steps, episodes, epochs, sizes) on the command line and in configs: `100000`,
/// `100_000` (YAML's digit separators), `1e5`, `1.5e5`, `2.0`. The value must be whole and within the range the caller
/// gives; anything else is an error that says which.
public enum WholeNumber {
    /// The number `text` writes, if it is one: a decimal or float literal, with `_` allowed between digits.
    public static func value(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, t.utf8.count <= 64 else { return nil }
        guard t.contains("_") else { return Double(t) }
        // A separator must stand between two digits: `1_000`, not `_1`, `1_`, `1__0` or `1e_5`.
        let chars = Array(t)
        for (i, c) in chars.enumerated() where c == "_" {
            guard i > 0, i < chars.count - 1, chars[i - 1].isASCII, chars[i - 1].isNumber,
                  chars[i + 1].isASCII, chars[i + 1].isNumber else { return nil }
        }
        return Double(t.replacingOccurrences(of: "_", with: ""))
    }

    /// The whole number `text` writes, within `range`; an error saying what is wrong otherwise.
    public static func parse(_ text: String, in range: ClosedRange<Int>) throws -> Int {
        guard let x = value(text), !x.isNaN else { throw WholeNumberError("'\(text)' is not a number") }
        return try whole(x, in: range)
    }

    /// `x` as a whole number within `range`; an error saying what is wrong otherwise.
    public static func whole(_ x: Double, in range: ClosedRange<Int>) throws -> Int {
        guard x.isFinite, x == x.rounded() else { throw WholeNumberError("must be a whole number, got \(x)") }
        guard x >= Double(range.lowerBound) else { throw WholeNumberError("must be at least \(range.lowerBound), got \(written(x))") }
        // Double(Int.max) rounds up to 2⁶³, so the comparison is strict there.
        guard x <= Double(range.upperBound), x < 0x1p63 else {
            throw WholeNumberError("must be at most \(range.upperBound), got \(written(x))")
        }
        return Int(x)
    }

    /// `x` as a person would write it: `100000`, or `1e+20` when it is too large for that.
    static func written(_ x: Double) -> String { abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
}

/// Why a count was refused: the reason alone, for messages that name the flag or key themselves.
public struct WholeNumberError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
