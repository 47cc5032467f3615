import Environments
import Foundation
import RLCore
import Training

/// What a training loop holds besides the agent's checkpoint, so that a run resumed from that checkpoint continues bit
/// for bit: its environments' snapshots, the observations it acts on next, the episodes under way, DQN's replay
/// buffer, the exact normalizer statistics, and the run's latest diagnostics (`Agent.trainingState()`).
///
/// `TrainingRun` saves it beside each checkpoint `--resume` can continue from, as `<name>.state.safetensors`
/// (`last.state.safetensors`, `checkpoints/step_<N>.state.safetensors`), written before the checkpoint itself. The
/// file is a safetensors file: large float arrays (the replay buffer's fields, only their filled rows) are F32
/// tensors; everything else is lists of 64-bit words (`EnvironmentSnapshot`'s form: a Double as its bits), written
/// in the metadata as `words.<name>`, comma-separated. The metadata also holds `format` (`rlbench-training-state-1`),
/// the checkpoint's `step` and `checkpoint_fnv1a64`, the FNV-1a hash of the checkpoint file's bytes: a state is
/// used only with the very checkpoint it was saved with.
public struct TrainingState {
    public static let format = "rlbench-training-state-1"

    /// Named lists of words (see `SnapshotWriter`).
    public var words: [String: [UInt64]] = [:]
    /// Named float tensors.
    public var tensors: [(name: String, tensor: Tensor)] = []

    public init() {}

    /// A reader of the words named `name`; an error names a missing entry.
    func reader(_ name: String) throws -> SnapshotReader {
        guard let list = words[name] else { throw TrainingStateError("it has no '\(name)' entry") }
        return SnapshotReader(list, of: "the training state's '\(name)'")
    }

    /// The environment snapshot named `name`.
    func snapshot(_ name: String) throws -> EnvironmentSnapshot {
        guard let list = words[name] else { throw TrainingStateError("it has no '\(name)' entry") }
        return EnvironmentSnapshot(words: list)
    }

    /// The values of the tensor named `name`, which must hold `count` of them.
    func floats(_ name: String, count: Int) throws -> [Float] {
        guard let t = tensors.first(where: { $0.name == name })?.tensor else { throw TrainingStateError("it has no tensor '\(name)'") }
        guard t.count == count else { throw TrainingStateError("tensor '\(name)' has \(t.count) values, not \(count)") }
        return t.data
    }

    /// The state file's bytes, for the checkpoint of `step` whose file bytes are `checkpoint`.
    func encoded(step: Int, checkpoint: Data) throws -> Data {
        var metadata = ["format": Self.format, "step": String(step), "checkpoint_fnv1a64": Self.hash(checkpoint)]
        for (name, list) in words { metadata["words.\(name)"] = list.map(String.init).joined(separator: ",") }
        return try SafeTensors.encode(tensors, metadata: metadata)
    }

    /// The state saved beside the checkpoint `checkpoint` (of `step`) in `stateFile`; an error says why it cannot
    /// be used with that checkpoint (missing, unreadable, or saved with another one).
    static func read(_ stateFile: URL, checkpoint: URL, step: Int) throws -> TrainingState {
        guard FileManager.default.fileExists(atPath: stateFile.path) else { throw TrainingStateError("\(stateFile.lastPathComponent) is missing") }
        let (tensors, metadata) = try SafeTensors.read(from: stateFile)
        guard metadata["format"] == format else {
            throw TrainingStateError("\(stateFile.lastPathComponent) is not an rlbench training state (format \(metadata["format"] ?? "missing"))")
        }
        guard metadata["step"] == String(step) else {
            throw TrainingStateError("\(stateFile.lastPathComponent) was saved at step \(metadata["step"] ?? "(none)"), "
                                     + "its checkpoint at step \(step)")
        }
        guard metadata["checkpoint_fnv1a64"] == hash(try Data(contentsOf: checkpoint)) else {
            throw TrainingStateError("\(stateFile.lastPathComponent) was saved with another checkpoint of step \(step) "
                                     + "(the checkpoint's hash differs)")
        }
        var state = TrainingState()
        state.tensors = tensors
        for (key, text) in metadata where key.hasPrefix("words.") {
            let list = text.isEmpty ? [] : text.split(separator: ",").map { UInt64($0) }
            guard !list.contains(nil) else { throw TrainingStateError("\(stateFile.lastPathComponent): \(key) is not a list of whole numbers") }
            state.words[String(key.dropFirst("words.".count))] = list.map { $0! }
        }
        return state
    }

    /// The 64-bit FNV-1a hash of `data`, in hexadecimal: what ties a state file to its checkpoint.
    static func hash(_ data: Data) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        data.withUnsafeBytes { bytes in
            for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        }
        return String(h, radix: 16)
    }
}

/// Why a training state cannot be used (the resumed run then starts new episodes).
public struct TrainingStateError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
