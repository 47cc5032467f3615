import Datasets
import Foundation
import RLCore
import Support
import Training

/// Scores of generative-model samples by rlbench's own LeNet for their data set (an FID in the spirit of Heusel et al.
/// 2017, with LeNet's 84 features in place of Inception's, so the figures compare runs within rlbench only).
public enum ClassifierScore {
    /// The LeNet scorer of `data` (`digits`, `mnist`, `fashion-mnist`): loaded from the cache, or trained on first use
    /// (seed 0, with `recipe(data)`: the same network every time) and cached as `<data>-lenet.safetensors` under
    /// `$RLBENCH_CACHE/classifiers/`, else `~/.cache/rlbench/classifiers/`. A cache file that cannot be loaded is
    /// trained again and replaced.
    public static func scorer(data: String, directory: URL?) throws -> Scorer {
        let cache = cacheFolder().appendingPathComponent("\(data)-lenet.safetensors")
        let (train, test) = try Datasets.load(data, directory: directory)
        guard train.isImage else { throw ClassifierError.unsuitableData("the scorer needs an image data set, not \(data)") }
        let descriptor = LeNet.descriptor
        var settings = HyperParameters(defaults: descriptor.defaults)
        for o in recipe(data) { try settings.apply(override: o) }
        let (network, _) = try descriptor.build(settings, train.sampleShape, train.classCount, 0)
        if let loaded = try? SafeTensors.read(from: cache), (try? network.load(stateDict: loaded.tensors)) != nil {
            return Scorer(network: network, reference: test)
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rlbench-scorer-\(getpid())-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        var options = ClassifierRunOptions(model: "lenet", data: data, outputDirectory: scratch)
        options.dataDirectory = directory
        options.overrides = recipe(data)
        options.progress = .quiet
        let run = try ClassifierRun(options)
        try run.run()
        try network.load(stateDict: run.network.stateDict())
        try Files.makeDirectory(cache.deletingLastPathComponent())
        try SafeTensors.write(run.network.stateDict(), metadata: ["model": "lenet", "data": data, "seed": "0",
                                                                  "layers": run.network.layerList], to: cache)
        return Scorer(network: network, reference: test)
    }

    /// The scorer's training settings: fixed here rather than taken from the tuned files, so that scores stay
    /// comparable when a tuned config changes (every key a tuned LeNet file sets is given).
    static func recipe(_ data: String) -> [String] {
        let common = ["dropout=0", "augment=0", "lr_schedule=cosine", "validation_fraction=0", "train_subset=0"]
        return common + (data == "digits" ? ["learning_rate=0.005", "batch_size=32", "epochs=40", "flip=false"]
                                          : ["learning_rate=0.002", "batch_size=64", "epochs=3", "flip=\(data == "fashion-mnist")"])
    }

    static func cacheFolder() -> URL {
        if let root = ProcessInfo.processInfo.environment["RLBENCH_CACHE"], !root.isEmpty {
            return URL(fileURLWithPath: root).appendingPathComponent("classifiers")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/rlbench/classifiers")
    }
}

/// A trained classifier that scores images: how confidently it recognizes them, how evenly they spread over the
/// classes, and how far their features lie from the reference images'.
public final class Scorer {
    public let network: ClassifierNetwork
    /// The data set's test part: the usual `reference` of `score`.
    public let reference: LabelledDataset
    /// The features of the last reference scored against (the same array is compared in O(1)).
    private var cached: (images: [Float], features: [Double])?

    init(network: ClassifierNetwork, reference: LabelledDataset) {
        self.network = network
        self.reference = reference
        network.setTraining(false)
    }

    /// Class probabilities `[n, classes]` and body features `[n, 84]` of `count` flattened images (values in [0, 1]).
    public func outputs(_ images: [Float], count: Int) -> (probabilities: [Double], features: [Double]) {
        let f = reference.featureCount
        precondition(images.count == count * f, "\(count) images of \(f) values expected, got \(images.count) values")
        var probabilities: [Double] = [], features: [Double] = []
        Tensor.withoutGrad {
            for start in stride(from: 0, to: count, by: 500) {
                let n = min(500, count - start)
                let h = network.features(Tensor(Array(images[(start * f)..<((start + n) * f)]), shape: [n, f]))
                features += h.data.map(Double.init)
                probabilities += network.head(h).softmax(axis: 1).data.map(Double.init)
            }
        }
        return (probabilities, features)
    }

    /// The fraction of `samples` (`count` flattened images, values in [0, 1]) classified with confidence above 0.9,
    /// the entropy (nats) of their predicted classes, and the Fréchet distance between Gaussian fits of their features
    /// and those of `reference` (normally `self.reference`, the test images).
    public func score(samples: [Float], count: Int, reference: LabelledDataset) -> (confidentFraction: Double, classEntropy: Double, frechetDistance: Double) {
        let (p, h) = outputs(samples, count: count)
        if cached?.images != reference.features {
            cached = (reference.features, outputs(reference.features, count: reference.count).features)
        }
        let classes = self.reference.classCount
        return (Self.confidentFraction(p, classes: classes), Self.classEntropy(p, classes: classes),
                Frechet.distance(h, count: count, cached!.features, count: reference.count, dimension: LeNet.featureSize))
    }

    /// The share of rows of `probabilities` (`[n, classes]`) whose largest entry is above 0.9.
    public static func confidentFraction(_ probabilities: [Double], classes: Int) -> Double {
        let n = probabilities.count / classes
        guard n > 0 else { return 0 }
        return Double((0..<n).filter { probabilities[($0 * classes)..<(($0 + 1) * classes)].max()! > 0.9 }.count) / Double(n)
    }

    /// The entropy (nats) of the histogram of each row's most probable class: log(classes) when the samples spread
    /// evenly, 0 when they all look alike.
    public static func classEntropy(_ probabilities: [Double], classes: Int) -> Double {
        let n = probabilities.count / classes
        guard n > 0 else { return 0 }
        var counts = [Int](repeating: 0, count: classes)
        for i in 0..<n {
            let row = probabilities[(i * classes)..<((i + 1) * classes)]
            counts[row.firstIndex(of: row.max()!)! - i * classes] += 1
        }
        return counts.filter { $0 > 0 }.reduce(0) { h, c in
            let q = Double(c) / Double(n)
            return h - q * log(q)
        }
    }
}

/// The Fréchet distance between two Gaussians, ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁^½ Σ₂ Σ₁^½)^½), with the matrix square roots
/// from symmetric eigendecompositions in Double (the form with Σ₁^½ keeps every matrix symmetric, unlike √(Σ₁Σ₂)).
public enum Frechet {
    /// The distance between the Gaussian fits (mean, unbiased covariance) of two sets of `dimension`-vectors, row-major.
    public static func distance(_ a: [Double], count n: Int, _ b: [Double], count m: Int, dimension d: Int) -> Double {
        let (mu1, sigma1) = fit(a, count: n, dimension: d), (mu2, sigma2) = fit(b, count: m, dimension: d)
        return distance(mean: mu1, covariance: sigma1, mean: mu2, covariance: sigma2)
    }

    public static func distance(mean mu1: [Double], covariance s1: [Double], mean mu2: [Double], covariance s2: [Double]) -> Double {
        let d = mu1.count
        let root1 = squareRoot(s1, dimension: d)
        let inner = multiply(multiply(root1, s2, d), root1, d)
        let (values, _) = symmetricEigen(inner, dimension: d)
        let meanTerm = zip(mu1, mu2).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let traces = (0..<d).reduce(0) { $0 + s1[$1 * d + $1] + s2[$1 * d + $1] }
        return max(0, meanTerm + traces - 2 * values.reduce(0) { $0 + max($1, 0).squareRoot() })
    }

    /// The mean and the unbiased covariance of `n` rows.
    static func fit(_ x: [Double], count n: Int, dimension d: Int) -> (mean: [Double], covariance: [Double]) {
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += x[i * d + j] } }
        mean = mean.map { $0 / Double(max(n, 1)) }
        var cov = [Double](repeating: 0, count: d * d)
        for i in 0..<n {
            for j in 0..<d {
                let u = x[i * d + j] - mean[j]
                for k in j..<d { cov[j * d + k] += u * (x[i * d + k] - mean[k]) }
            }
        }
        let scale = 1 / Double(max(n - 1, 1))
        for j in 0..<d { for k in j..<d { cov[j * d + k] *= scale; cov[k * d + j] = cov[j * d + k] } }
        return (mean, cov)
    }

    /// The symmetric square root V·diag(√λ)·Vᵀ of a symmetric positive semidefinite matrix (negative rounding noise in
    /// the eigenvalues is taken as 0).
    static func squareRoot(_ a: [Double], dimension d: Int) -> [Double] {
        let (values, vectors) = symmetricEigen(a, dimension: d)
        var out = [Double](repeating: 0, count: d * d)
        for k in 0..<d {
            let r = max(values[k], 0).squareRoot()
            guard r > 0 else { continue }
            for i in 0..<d { for j in 0..<d { out[i * d + j] += r * vectors[i * d + k] * vectors[j * d + k] } }
        }
        return out
    }

    static func multiply(_ a: [Double], _ b: [Double], _ d: Int) -> [Double] {
        var c = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for k in 0..<d where a[i * d + k] != 0 { for j in 0..<d { c[i * d + j] += a[i * d + k] * b[k * d + j] } } }
        return c
    }

    /// Eigenvalues and eigenvectors (columns of `vectors`) of a symmetric matrix by cyclic Jacobi rotations: slow for
    /// large matrices but exact to rounding and dependency-free, and 84×84 takes milliseconds.
    public static func symmetricEigen(_ matrix: [Double], dimension n: Int) -> (values: [Double], vectors: [Double]) {
        var a = matrix
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<max(n, p + 1) { off += a[p * n + q] * a[p * n + q] } }
            let scale = (0..<n).reduce(0) { $0 + a[$1 * n + $1] * a[$1 * n + $1] }
            if off <= 1e-30 * max(scale, 1e-300) { break }
            for p in 0..<n {
                for q in (p + 1)..<max(n, p + 1) where a[p * n + q] != 0 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n { // columns p, q
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n { // rows p, q
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0 * n + $0] }, v)
    }
}
