import Foundation
import RLCore
import TestSupport
import Testing

@Suite struct ClassificationTests {
    static let digitsFile = TorchFixture.packageRoot.appendingPathComponent("Sources/Datasets/Resources/digits.csv.gz")

    @Test func digitsLoadAsDocumented() throws {
        let data = try LabelledDataset.digits(contentsOf: Self.digitsFile)
        #expect(data.count == 1797 && data.featureCount == 64)
        let counts = (0..<10).map { c in data.labels.filter { $0 == c }.count }
        #expect(counts == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
        #expect(data.features.allSatisfy { $0 >= 0 && $0 <= 1 })
        let (train, test) = data.split(trainFraction: 0.8, seed: 0)
        #expect(train.count == 1438 && test.count == 359)
        #expect(data.split(trainFraction: 0.8, seed: 0).test.labels == test.labels, "the split is reproducible")
    }

    @Test func shortRunLearnsDigits() throws {
        let (train, test) = try LabelledDataset.digits(contentsOf: Self.digitsFile).split(trainFraction: 0.8, seed: 0)
        var setup = ClassifierTraining()
        setup.epochs = 10
        let (_, history) = setup.run(train: train, test: test)
        #expect(history.last! >= 0.93, "test accuracy after 10 epochs: \(history.last!)")
    }

    @Test func corruptDataIsAClearError() throws {
        let dir = Scratch.directory("digits")
        let file = dir.appendingPathComponent("bad.csv")
        try "1,2,3\n".write(to: file, atomically: true, encoding: .utf8) // gzread reads plain files too
        #expect { try LabelledDataset.digits(contentsOf: file) } throws: { "\($0)".contains("line 1 does not hold 65 integers") }
        #expect { try LabelledDataset.digits(contentsOf: dir.appendingPathComponent("missing.gz")) } throws: { "\($0)".contains("cannot read") }
    }
}
