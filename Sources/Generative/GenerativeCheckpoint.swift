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
    public let metadata: [String: String]

    public init(contentsOf url: URL) throws {
        let loaded = try SafeTensors.read(from: url)
        let meta = loaded.metadata
        guard meta["format"] == GenerativeRun.checkpointFormat else {
            let what = meta["agent"].map { "an agent checkpoint (\($0))" } ?? "not an rlbench generative-model checkpoint"
            throw GenerativeError.badCheckpoint("\(url.path) is \(what); sample needs a checkpoint of `rlbench run <model>`")
        }
        guard let name = meta["model"], let data = meta["data"], let settingsJSON = meta["hyperparameters"],
              let shapeJSON = meta["sample_shape"], let classes = meta["classes"].flatMap({ Int($0) }),
              let sample = try? JSONSerialization.jsonObject(with: Data(shapeJSON.utf8)) as? [Int] else {
            throw GenerativeError.badCheckpoint("\(url.path) lacks the model, data, settings or sample shape in its metadata")
        }
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
