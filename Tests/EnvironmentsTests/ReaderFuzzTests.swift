import Environments
import Foundation
import Support
import TestSupport
import Testing

/// Seeded fuzzing of the environments' readers (see `Fuzz`): every variant of a real map or recording loads (and a
/// recording replays) or is refused with an error.
@Suite struct ReaderFuzzTests {
    static let recordings = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Recordings")

    @Test func gridWorldMapParserLoadsOrRefusesEveryVariant() throws {
        let maps = GridWorld.shippedMapNames.compactMap(GridWorld.shippedMap(named:)).map { Array($0.utf8) }
        #expect(!maps.isEmpty)
        var fuzz = Fuzz(seed: 3)
        let variants = fuzz.variants(of: maps, count: Fuzz.iterations())
        let result = Fuzz.check(variants) { bytes in
            let world = try GridWorld(text: String(decoding: bytes, as: UTF8.self))
            _ = world.reset(seed: 0)
        }
        #expect(result.refused > 0 && result.loaded > 0, "\(result)")
        #expect(result.seconds < 30, "\(result)")
    }

    @Test func gridWorldRefusesAMapTooLargeBeforeParsingIt() {
        let side = 2000  // 4 million cells, about 4 MB of text
        let text = "S" + String(repeating: ".", count: side - 1) + "\n"
            + String(repeating: String(repeating: ".", count: side) + "\n", count: side - 1)
        #expect(throws: EnvironmentError.self) { try GridWorld(text: text) }
        let wide = "S" + String(repeating: ".", count: Limits.mapCells)
        let error = #expect(throws: EnvironmentError.self) { try GridWorld(text: wide) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("more than \(Limits.mapCells) cells"))
    }

    @Test func recordingReaderLoadsOrRefusesEveryVariant() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.recordings.path).filter { $0.hasSuffix(".jsonl") }.sorted()
        let files = try names.map { Array(try Data(contentsOf: Self.recordings.appendingPathComponent($0))) }
        #expect(files.count >= 3)
        var fuzz = Fuzz(seed: 4)
        let variants = fuzz.variants(of: files, count: Fuzz.iterations(default: 1500))
        let result = Fuzz.check(variants) { bytes in
            _ = try Recording(text: String(decoding: bytes, as: UTF8.self), file: "fuzz.jsonl").replay()
        }
        #expect(result.refused > 0 && result.loaded > 0, "\(result)")
        #expect(result.seconds < 30, "\(result)")
    }
}
