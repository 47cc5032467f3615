import Foundation

/// Everything `rlbench run <model> --data …` asks of a trainer that learns from a data set in epochs (generative
/// models, classifiers).
public struct DataRunOptions: Sendable {
    public var model: String
    public var data: String
    /// Where the IDX files of `mnist` / `fashion-mnist` are (nil: the usual places, see `Datasets`).
    public var dataDirectory: URL?
    /// Training epochs; nil: the config's `epochs`.
    public var epochs: Int?
    public var seed: UInt64 = 0
    public var configFile: URL?
    /// `key=value` overrides, applied last.
    public var overrides: [String] = []
    public var outputDirectory: URL
    /// Continue the run in `outputDirectory` from its last checkpoint (with its own data, seed and config).
    public var resume = false
    public var progress: ProgressStyle = .automatic
    /// Generative models: whether `eval.json` scores 10,000 image samples with rlbench's classifier for the data set
    /// (trained on first use).
    public var scoreSamples = true

    public init(model: String, data: String, outputDirectory: URL) {
        self.model = model; self.data = data; self.outputDirectory = outputDirectory
    }
}
