import Datasets
import Foundation
import RLCore
import Testing

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
