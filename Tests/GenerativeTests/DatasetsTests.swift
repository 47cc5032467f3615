import Datasets
import Foundation
import RLCore
import Testing
import TestSupport

@Suite struct DatasetsTests {
    @Test func mixturesAreDrawnFromTheSeed() throws {
        let a = try Datasets.load("ring8", seed: 3), b = try Datasets.load("ring8", seed: 3), c = try Datasets.load("ring8", seed: 4)
        #expect(a.train.features == b.train.features && a.train.features != c.train.features)
        #expect(a.train.count == 50_000 && a.test.count == 10_000 && a.train.sampleShape == [2])
        // Every point lies within 5σ of the mode it was drawn from.
        let modes = Datasets.mixtureModes("ring8")
        for i in 0..<1000 {
            let m = modes[a.train.labels[i]]
            let d = hypot(Double(a.train.features[2 * i]) - m.x, Double(a.train.features[2 * i + 1]) - m.y)
            #expect(d < 5 * Datasets.mixtureStd * 1.5)
        }
        #expect(Datasets.mixtureModes("grid25").count == 25)
    }
}

@Suite struct IDXTests {
    static let mnist = CLI.root.deletingLastPathComponent().appendingPathComponent("shared/data/mnist")

    /// The four MNIST files read with the counts and pixel sums their README gives.
    @Test func readsMNIST() throws {
        let (train, test) = try Datasets.load("mnist", directory: Self.mnist)
        #expect(train.count == 60_000 && test.count == 10_000 && train.sampleShape == [1, 28, 28])
        #expect(test.labels.filter { $0 == 1 }.count == 1135)
        let pixelSum = test.features.reduce(0.0) { $0 + (Double($1) * 255).rounded() }
        #expect(abs(pixelSum - 264_923_200) < 1)
    }

    @Test func malformedFilesAreClearErrors() throws {
        let dir = Scratch.directory("idx")
        func write(_ name: String, _ bytes: [UInt8]) -> URL {
            let url = dir.appendingPathComponent(name)
            FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
            return url
        }
        func message(_ body: () throws -> Any) -> String { do { _ = try body(); return "" } catch { return "\(error)" } }
        let images = write("images", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4])
        let labels = write("labels", [0, 0, 8, 1, 0, 0, 0, 2, 5, 9])
        let ok = try IDX.labelledImages(images: images, labels: labels)
        #expect(ok.count == 2 && ok.sampleShape == [1, 1, 2] && ok.labels == [5, 9])
        #expect(message { try IDX.read(write("bad", [0, 0, 9, 3, 0, 0])) }.contains("wrong magic 0x00000903"))
        #expect(message { try IDX.read(write("short", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1])) }.contains("truncated"))
        let three = write("three", [0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])
        #expect(message { try IDX.labelledImages(images: images, labels: three) }.contains("3 labels for the 2 images"))
        let big = write("big", [0, 0, 8, 1, 0, 0, 0, 2, 1, 12])
        #expect(message { try IDX.labelledImages(images: images, labels: big) }.contains("label 12 at index 1"))
        #expect(message { try IDX.labelledImages(images: dir.appendingPathComponent("none"), labels: labels) }.contains("cannot read"))
    }
}
