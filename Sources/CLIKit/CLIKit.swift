// What the command-line tool and its benchmark harness share: how a failure is reported, how a seed is read.
import ArgumentParser
import Foundation
import Support

/// Runs `body`; a thrown error becomes one clear line on stderr and a non-zero exit.
public func fail<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as ExitCode { throw error } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// `error` as one clear line on stderr; returns the non-zero exit to throw.
public func fail(_ error: Error) -> Error {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    return ExitCode.failure
}

/// Reads a `--seed` value: a whole number from 0 to 2⁶⁴ − 1. Options that take it parse unconditionally, so that a
/// negative number reaches this check instead of being read as a flag ("Missing value").
public func parseSeed(_ text: String) throws -> UInt64 {
    guard let seed = UInt64(text) else {
        throw ValidationError("a seed is a whole number from 0 to \(UInt64.max)")
    }
    return seed
}

/// Reads a count flag (`--steps 1e5`, `--episodes 100_000`) in the one syntax of counts (`WholeNumber`), from
/// `range`; the error names the flag: "--steps must be at least 1, got -5".
public func parseCount(_ flag: String, in range: ClosedRange<Int>) -> @Sendable (String) throws -> Int {
    { text in
        do { return try WholeNumber.parse(text, in: range) } catch { throw ValidationError("\(flag) \(error)") }
    }
}
