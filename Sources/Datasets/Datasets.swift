import Foundation
import RLCore
import SeededRandom

/// The data sets rlbench trains classifiers and generative models on, by name:
///
/// - `digits`: the 1,797 8×8 handwritten digits, shipped with rlbench; a fixed split (seed 0): 80% train, 20% test.
/// - `mnist`, `fashion-mnist`: 28×28 images in IDX files (gzipped or plain), 60,000 train and 10,000 test, looked
///   for in `--data-dir`, else `$RLBENCH_DATA/<name>/`, else `/usr/share/datasets/<name>/` (where Debian's
///   `dataset-fashion-mnist` puts its files).
/// - `ring8`, `grid25`: 2-D mixtures of Gaussians (σ 0.02) from the GAN literature, drawn from the seed: 8 modes on
///   a circle of radius 2, or 25 on a 5×5 grid at −4, −2, 0, 2, 4; the label is the mode a point was drawn from.
public enum Datasets {
    public static let names = ["digits", "mnist", "fashion-mnist", "ring8", "grid25"]

    /// A data set's train and test parts. `directory` overrides where IDX files are looked for; `seed` draws the
    /// Gaussian mixtures (the image sets do not depend on it).
    public static func load(_ name: String, directory: URL? = nil, seed: UInt64 = 0) throws -> (train: LabelledDataset, test: LabelledDataset) {
        switch name {
        case "digits":
            guard let url = Bundle.module.url(forResource: "digits.csv", withExtension: "gz") else {
                throw DatasetError.unreadable("the digits data set bundled with rlbench")
            }
            return try LabelledDataset.digits(contentsOf: url).split(trainFraction: 0.8, seed: 0)
        case "mnist", "fashion-mnist":
            let folder = try idxFolder(name, directory: directory)
            func part(_ prefix: String) throws -> LabelledDataset {
                try IDX.labelledImages(images: try idxFile(folder, "\(prefix)-images-idx3-ubyte"),
                                       labels: try idxFile(folder, "\(prefix)-labels-idx1-ubyte"))
            }
            return (try part("train"), try part("t10k"))
        case "ring8", "grid25":
            var rng = SeededGenerator(seed: seed)
            let modes = mixtureModes(name)
            return (mixture(modes, count: 50_000, using: &rng), mixture(modes, count: 10_000, using: &rng))
        default:
            throw DatasetError.unknown(name, known: names)
        }
    }

    /// The standard deviation of each Gaussian of `ring8` and `grid25`.
    public static let mixtureStd = 0.02

    /// The centres of `ring8` (radius 2) or `grid25` (spacing 2); empty for other names.
    public static func mixtureModes(_ name: String) -> [(x: Double, y: Double)] {
        switch name {
        case "ring8":
            return (0..<8).map { (k: Int) -> (x: Double, y: Double) in
                let angle: Double = 2 * Double.pi * Double(k) / 8
                return (x: 2 * cos(angle), y: 2 * sin(angle))
            }
        case "grid25":
            return (0..<25).map { (k: Int) -> (x: Double, y: Double) in (x: Double(k / 5 * 2 - 4), y: Double(k % 5 * 2 - 4)) }
        default:
            return []
        }
    }

    static func mixture(_ modes: [(x: Double, y: Double)], count: Int, using rng: inout SeededGenerator) -> LabelledDataset {
        var points = [Float](), labels = [Int]()
        points.reserveCapacity(2 * count)
        for _ in 0..<count {
            let k = rng.nextInt(below: modes.count)
            points.append(Float(modes[k].x + mixtureStd * rng.nextGaussian()))
            points.append(Float(modes[k].y + mixtureStd * rng.nextGaussian()))
            labels.append(k)
        }
        return LabelledDataset(features: points, labels: labels, featureCount: 2, classCount: modes.count)
    }

    /// The folder holding a data set's IDX files: the first of `directory`, `$RLBENCH_DATA/<name>`,
    /// `/usr/share/datasets/<name>` that holds its training images; an error saying where it looked otherwise.
    static func idxFolder(_ name: String, directory: URL?) throws -> URL {
        var candidates: [URL] = []
        if let directory { candidates.append(directory) } else {
            if let root = ProcessInfo.processInfo.environment["RLBENCH_DATA"], !root.isEmpty {
                candidates.append(URL(fileURLWithPath: root).appendingPathComponent(name))
            }
            candidates.append(URL(fileURLWithPath: "/usr/share/datasets").appendingPathComponent(name))
        }
        for folder in candidates where (try? idxFile(folder, "train-images-idx3-ubyte")) != nil { return folder }
        throw DatasetError.notFound(name, looked: candidates.map(\.path))
    }

    /// `base` or `base.gz` in `folder`, whichever exists.
    static func idxFile(_ folder: URL, _ base: String) throws -> URL {
        for file in [base, base + ".gz"] {
            let url = folder.appendingPathComponent(file)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw DatasetError.unreadable(folder.appendingPathComponent(base + "[.gz]").path + " (no such file)")
    }
}
