import Foundation
import SeededRandom
import Support
import TestSupport
import Testing

@Suite struct AtomicFileTests {
    let dir = Scratch.directory("atomic")

    @Test func writesAndReplacesWithoutLeavingTemporaries() throws {
        let file = dir.appendingPathComponent("a.txt")
        try AtomicFile.write(Data("first".utf8), to: file)
        try AtomicFile.write(Data("second".utf8), to: file)
        #expect(try String(contentsOf: file, encoding: .utf8) == "second")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["a.txt"])
    }

    @Test func failedWriteKeepsThePreviousFile() throws {
        let file = dir.appendingPathComponent("b.txt")
        try AtomicFile.write(Data("kept".utf8), to: file)
        // A file inside a folder that does not exist: the write must fail.
        let impossible = dir.appendingPathComponent("missing/b.txt")
        #expect(throws: (any Error).self) { try AtomicFile.write(Data("lost".utf8), to: impossible) }
        #expect(try String(contentsOf: file, encoding: .utf8) == "kept")
    }
}

@Suite struct SeededGeneratorTests {
    @Test func sameSeedSameStream() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let xs = (0..<5).map { _ in a.next() }
        #expect(xs == (0..<5).map { _ in b.next() })
        #expect(xs != (0..<5).map { _ in c.next() })
    }

    @Test func streamIsPinned() {
        // The stream must be identical on every machine and release: pin the first draws of seed 0.
        var g = SeededGenerator(seed: 0)
        let first = g.next()
        var again = SeededGenerator(seed: 0)
        #expect(again.next() == first)
        // SplitMix64's first output for seed 0 is 0xE220A8397B1DCDAF (a published test vector).
        #expect(SeededGenerator(seed: 0).state.0 == 0xE220_A839_7B1D_CDAF)
    }

    @Test func drawsAreInRangeAndUnbiased() {
        var g = SeededGenerator(seed: 7)
        var counts = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { counts[g.nextInt(below: 6)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 400 })
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<100_000 { let x = g.nextGaussian(); sum += x; sumSq += x * x }
        #expect(abs(sum / 100_000) < 0.02)
        #expect(abs(sumSq / 100_000 - 1) < 0.02)
        for _ in 0..<10_000 { let u = g.nextFloat(); #expect(u >= 0 && u < 1) }
    }

    @Test func stateRoundTrips() {
        var g = SeededGenerator(seed: 9)
        _ = g.next()
        var restored = SeededGenerator(stateWords: g.stateWords)!
        #expect(restored.next() == g.next())
    }
}
