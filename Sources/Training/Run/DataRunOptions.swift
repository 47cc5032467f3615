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
    /// The folder of TensorBoard logs (`run --tensorboard`): sets `tensorboard_log` over the config's, also when
    /// resuming.
    public var tensorboardLog: String?

    public init(model: String, data: String, outputDirectory: URL) {
        self.model = model; self.data = data; self.outputDirectory = outputDirectory
    }
}

extension DataRunOptions {
    /// Checks the run folder before anything is written: a new run needs a folder without a run to continue (the
    /// returned point is nil; a note says when the folder's earlier run is started over); a resumed one needs a valid
    /// `kind` checkpoint of this model on this data (see `RunFolder.resumePoint`), whose seed it adopts.
    public mutating func openFolder(_ folder: RunFolder, kind: CheckpointMetadata.Kind) throws -> (point: ResumePoint?, note: String?) {
        guard resume else { return (nil, try folder.checkUnused()) }
        let point = try folder.resumePoint(kind: kind)
        let meta = point.metadata
        let model = try meta.value(.model), data = try meta.value(.data)
        guard model == self.model, data == self.data else {
            throw RunFolderError.nothingToResume("the run in \(folder.url.path) trains \(model) on \(data), "
                                                 + "not \(self.model) on \(self.data)")
        }
        self.seed = try meta.value(.seed)
        return (point, point.note)
    }

    /// The run's settings, in layers: the model's `defaults`; then for a new run the tuned file for (model, data), the
    /// `--config` file and the `--set` overrides, or for a resumed run the folder's `config.yml`; then `--epochs` and
    /// `--tensorboard`.
    public func settings(defaults: [String: ConfigValue], tuned: TunedConfigs, folder: RunFolder) throws -> HyperParameters {
        var hp = HyperParameters(defaults: defaults)
        if resume {
            try hp.apply(file: folder.config)
        } else {
            if let text = tuned.text(model, for: data) {
                try hp.apply(yaml: text, source: "tuned defaults for \(model) on \(data)")
            }
            if let configFile { try hp.apply(file: configFile) }
            for o in overrides { try hp.apply(override: o) }
        }
        if let epochs { try hp.set("epochs", .number(Double(epochs)), source: "--epochs") }
        if let tensorboardLog { try hp.set(HyperParameters.tensorboardLogKey, .string(tensorboardLog), source: "--tensorboard") }
        return hp
    }
}

/// Tuned settings shipped in a resource bundle as `Configs/<name>/<target>.yml`: per (model, data set) for
/// classifiers and generative models, per (agent, environment id) for agents.
public struct TunedConfigs: Sendable {
    public let bundle: Bundle

    public init(_ bundle: Bundle) { self.bundle = bundle }

    /// Where the tuned file for `name` on `target` is, if there is one. An id with a namespace (`MinAtar/Breakout-v1`)
    /// has its file in a folder of that name (`Configs/dqn/MinAtar/Breakout-v1.yml`).
    public func url(_ name: String, for target: String) -> URL? {
        let parts = target.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return nil }
        let folder = (["Configs", name] + parts.dropLast()).joined(separator: "/")
        return bundle.url(forResource: parts.last!, withExtension: "yml", subdirectory: folder)
    }

    /// The tuned file's text for `name` on `target`, if there is one.
    public func text(_ name: String, for target: String) -> String? {
        url(name, for: target).flatMap { try? String(contentsOf: $0, encoding: .utf8) }
    }

    /// The targets (data sets or environments) with a tuned file for `name`.
    public func targets(_ name: String) -> [String] {
        guard let dir = bundle.url(forResource: name, withExtension: nil, subdirectory: "Configs") else { return [] }
        func files(_ folder: URL, _ prefix: String) -> [String] {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
            return names.flatMap { n -> [String] in
                if n.hasSuffix(".yml") { return [prefix + n.dropLast(4)] }
                return prefix.isEmpty ? files(folder.appendingPathComponent(n), n + "/") : []   // a namespace folder
            }
        }
        return files(dir, "").sorted()
    }
}
