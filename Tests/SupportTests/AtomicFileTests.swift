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

    @Test func failedWriteLeavesTheTargetAndNoTemporary() throws {
        // The target is a folder with a file in it: the temporary file is written, the rename over the folder
        // fails, and the folder, its file and no temporary remain (this fails the same way for root).
        let target = dir.appendingPathComponent("b.txt")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        try Data("kept".utf8).write(to: target.appendingPathComponent("inner"))
        #expect { try AtomicFile.write(Data("lost".utf8), to: target) } throws: { "\($0)".contains("b.txt") }
        #expect(try String(contentsOf: target.appendingPathComponent("inner"), encoding: .utf8) == "kept")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp") }.isEmpty)
    }

    @Test func writeIntoAMissingFolderNamesTheFile() {
        let impossible = dir.appendingPathComponent("missing/c.txt")
        #expect { try AtomicFile.write(Data("lost".utf8), to: impossible) } throws: {
            "\($0)".contains("missing/c.txt") && "\($0)".contains("No such file")
        }
    }

    @Test(.enabled(if: getuid() != 0, "root may write into a read-only folder"))
    func failedWriteKeepsThePreviousFile() throws {
        let folder = dir.appendingPathComponent("readonly")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("d.txt")
        try AtomicFile.write(Data("kept".utf8), to: file)
        chmod(folder.path, 0o500)
        defer { chmod(folder.path, 0o700) }
        #expect(throws: AtomicFileError.self) { try AtomicFile.write(Data("lost".utf8), to: file) }
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
        // The stream must be identical on every machine and release. Seed 0's state is SplitMix64's first four
        // outputs (the first, 0xE220A8397B1DCDAF, is a published test vector) and its draws are xoshiro256**'s,
        // both computed by an independent implementation.
        var g = SeededGenerator(seed: 0)
        #expect(g.stateWords == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F, 0xF88B_B8A8_724C_81EC])
        #expect((0..<3).map { _ in g.next() } == [0x99EC_5F36_CB75_F2B4, 0xBF6E_1F78_4956_452A, 0x1A5F_849D_4933_E6E0])
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
