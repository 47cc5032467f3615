import Foundation

/// How well samples of a 2-D mixture cover it, as the GAN literature measures mode collapse (VEEGAN, PacGAN): a sample
/// is high quality when it lies within 3σ of some mode, and a mode is covered when at least 1% of the samples are
/// high-quality samples nearest to it.
public struct MixtureCoverage: Sendable, Equatable {
    public var modesCovered: Int
    public var modeCount: Int
    public var highQualityFraction: Double

    public init(points: [Float], modes: [(x: Double, y: Double)], std: Double) {
        var perMode = [Int](repeating: 0, count: modes.count)
        var good = 0
        let n = points.count / 2
        for i in 0..<n {
            let (x, y) = (Double(points[2 * i]), Double(points[2 * i + 1]))
            var best = 0, bestDistance = Double.infinity
            for (k, m) in modes.enumerated() {
                let d = ((x - m.x) * (x - m.x) + (y - m.y) * (y - m.y)).squareRoot()
                if d < bestDistance { bestDistance = d; best = k }
            }
            if bestDistance <= 3 * std { good += 1; perMode[best] += 1 }
        }
        modesCovered = perMode.filter { Double($0) >= 0.01 * Double(n) }.count
        modeCount = modes.count
        highQualityFraction = n > 0 ? Double(good) / Double(n) : 0
    }
}
