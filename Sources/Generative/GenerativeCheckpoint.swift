import Foundation
import RLCore
import SeededRandom
import Training

/// A trained generative model loaded from a run's checkpoint, for `rlbench sample`: the model rebuilt from the
/// checkpoint's metadata (its name, settings and data shape) and its tensors.
public struct GenerativeCheckpoint {
    public let model: any GenerativeModel
    public let descriptor: ModelDescriptor
    /// The data set it was trained on.
    public let data: String
    public let shape: DataShape
    public let metadata: CheckpointMetadata

    public init(contentsOf url: URL) throws {
        let loaded = try SafeTensors.read(from: url)
        let meta = CheckpointMetadata(loaded.metadata)
        if let kind = meta.kind, kind != .generative {
            let name = (meta[.agent] ?? meta[.model]).map { " (\($0))" } ?? ""
            throw GenerativeError.badCheckpoint("\(url.path) is \(kind.article) checkpoint\(name); sample needs a checkpoint "
                                                + "of `rlbench run <model>`")
        }
        try meta.validated(as: .generative, source: url.path)
        let name = try meta.value(.model), data = try meta.value(.data), settingsJSON = try meta.value(.hyperparameters)
        let sample = try meta.value(.sampleShape), classes = try meta.value(.classes)
        let type = try ModelCatalog.model(named: name)
        var settings = HyperParameters(defaults: type.descriptor.defaults)
        try settings.apply(json: settingsJSON, source: url.path)
        shape = DataShape(sample: sample, classCount: classes)
        model = try type.init(settings: settings, shape: shape, seed: 0)
        try model.restore(loaded.tensors)
        model.setTraining(false)
        descriptor = type.descriptor
        self.data = data
        metadata = meta
    }
}
