import CZlib
import Foundation
import SeededRandom

/// A labelled data set of feature vectors: `features` row-major `[count, featureCount]`, integer `labels`.
public struct LabelledDataset: Sendable {
    public var features: [Float]
    public var labels: [Int]
    public let featureCount: Int
    public let classCount: Int
    /// The shape of one sample: `[channels, height, width]` for images, `[featureCount]` otherwise.
    public let sampleShape: [Int]
    public var count: Int { labels.count }

    public init(features: [Float], labels: [Int], featureCount: Int, classCount: Int, sampleShape: [Int]? = nil) {
        precondition(features.count == labels.count * featureCount, "features do not match labels × featureCount")
        let shape = sampleShape ?? [featureCount]
        precondition(shape.reduce(1, *) == featureCount, "sample shape \(shape) does not hold \(featureCount) features")
        self.features = features; self.labels = labels; self.featureCount = featureCount; self.classCount = classCount
        self.sampleShape = shape
    }

    /// Whether samples are images (`[channels, height, width]`).
    public var isImage: Bool { sampleShape.count == 3 }

    /// The rows at `indices`.
    public func subset(_ indices: [Int]) -> LabelledDataset {
        var f = [Float]()
        f.reserveCapacity(indices.count * featureCount)
        for i in indices { f.append(contentsOf: features[(i * featureCount)..<((i + 1) * featureCount)]) }
        return LabelledDataset(features: f, labels: indices.map { labels[$0] }, featureCount: featureCount,
                               classCount: classCount, sampleShape: sampleShape)
    }

    /// A reproducible split: a permutation drawn from `seed`, the first `trainFraction` for training, the rest for testing.
    public func split(trainFraction: Double, seed: UInt64) -> (train: LabelledDataset, test: LabelledDataset) {
        var rng = SeededGenerator(seed: seed)
        let order = rng.permutation(count)
        let cut = Int((Double(count) * trainFraction).rounded())
        return (subset(Array(order[..<cut])), subset(Array(order[cut...])))
    }

    /// The 8×8 handwritten digits (UCI optdigits test part, as scikit-learn ships it): gzip CSV, 64 pixels 0…16 then the
    /// label per line. Pixels are scaled to [0, 1].
    public static func digits(contentsOf url: URL) throws -> LabelledDataset {
        let bytes = try IDX.inflatedContents(of: url)
        var features: [Float] = [], labels: [Int] = []
        for (number, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n").enumerated() {
            let values = line.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard values.count == 65, values.allSatisfy({ $0 != nil }) else {
                throw DatasetError.malformed(url.path, "line \(number + 1) does not hold 65 integers")
            }
            let v = values.map { $0! }
            guard v[..<64].allSatisfy({ (0...16).contains($0) }), (0...9).contains(v[64]) else {
                throw DatasetError.malformed(url.path, "line \(number + 1) has a pixel outside 0…16 or a label outside 0…9")
            }
            features.append(contentsOf: v[..<64].map { Float($0) / 16 })
            labels.append(v[64])
        }
        return LabelledDataset(features: features, labels: labels, featureCount: 64, classCount: 10, sampleShape: [1, 8, 8])
    }
}

public enum DatasetError: Error, CustomStringConvertible {
    case unreadable(String)
    case malformed(String, String)
    /// A data set name rlbench does not know.
    case unknown(String, known: [String])
    /// A data set whose files are in none of the folders looked in.
    case notFound(String, looked: [String])
    public var description: String {
        switch self {
        case let .unreadable(path): "cannot read \(path)"
        case let .malformed(path, why): "\(path): \(why)"
        case let .unknown(name, known): "unknown data set '\(name)'; known: \(known.joined(separator: ", "))"
        case let .notFound(name, looked):
            "no \(name) files (train-images-idx3-ubyte[.gz] and the other three) in "
                + looked.joined(separator: ", ") + "; put them in one of these folders, or name theirs with --data-dir"
        }
    }
}

/// Trains an MLP classifier with cross-entropy and Adam on shuffled minibatches; reports test accuracy per epoch.
public struct ClassifierTraining {
    public var hidden: [Int] = [128]
    public var activation: Activation = .relu
    public var epochs = 40
    public var batchSize = 32
    public var learningRate: Float = 1e-3
    public var seed: UInt64 = 0
    public init() {}

    /// Fraction of `data` the network classifies correctly.
    public static func accuracy(_ net: Sequential, _ data: LabelledDataset) -> Double {
        let predictions = Tensor.withoutGrad { net(Tensor(data.features, shape: [data.count, data.featureCount])).argmax(axis: 1) }
        return Double(zip(predictions, data.labels).filter { $0 == $1 }.count) / Double(data.count)
    }

    /// Trains on `train` and returns the network with the test accuracy after each epoch (`onEpoch` sees them live).
    public func run(train: LabelledDataset, test: LabelledDataset,
                    onEpoch: (Int, Double, Double) -> Void = { _, _, _ in }) -> (net: Sequential, testAccuracy: [Double]) {
        var rng = SeededGenerator(seed: seed)
        let net = MLP(sizes: [train.featureCount] + hidden + [train.classCount], activation: activation, using: &rng)
        let optimizer = Adam(net.namedParameters(), learningRate: learningRate)
        var history: [Double] = []
        for epoch in 1...epochs {
            let order = rng.permutation(train.count)
            var lossSum = 0.0, batches = 0
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let batch = train.subset(Array(order[start..<min(start + batchSize, order.count)]))
                let loss = crossEntropyLoss(net(Tensor(batch.features, shape: [batch.count, batch.featureCount])), labels: batch.labels)
                net.zeroGrad()
                loss.backward()
                optimizer.step()
                lossSum += Double(loss.item); batches += 1
            }
            let accuracy = Self.accuracy(net, test)
            history.append(accuracy)
            onEpoch(epoch, lossSum / Double(batches), accuracy)
        }
        return (net, history)
    }
}
