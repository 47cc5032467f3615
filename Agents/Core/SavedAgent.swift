import Environments
import Foundation
import RLCore
import Training

/// Loads an agent from a self-describing checkpoint (for `rlbench eval` and `rlbench play`).
public enum SavedAgent {
    /// What `load` returns: the agent restored from the checkpoint, its descriptor, the environment to act in, and
    /// the checkpoint's validated metadata.
    public typealias Loaded = (agent: Agent, descriptor: AgentDescriptor, environment: EnvironmentFactory, metadata: CheckpointMetadata)

    /// The agent, its descriptor and the environment id stored in the checkpoint at `file`. `environment`
    /// overrides the stored id (it must have the same spaces); errors name what is wrong (every bad metadata key).
    public static func load(_ file: URL, environment override: String? = nil) throws -> Loaded {
        try load(SafeTensors.read(from: file), source: file.path, environment: override)
    }

    /// The same from checkpoint bytes in memory (a policy snapshot published by a training run).
    public static func load(data: Data, environment override: String? = nil) throws -> Loaded {
        try load(SafeTensors.decode(data), source: "policy snapshot", environment: override)
    }

    private static func load(_ loaded: (tensors: [(name: String, tensor: Tensor)], metadata: [String: String]),
                             source: String, environment override: String?) throws -> Loaded {
        let meta = try CheckpointMetadata(loaded.metadata).validated(as: .agent, source: source)
        let type = try AgentCatalog.agent(named: try meta.value(.agent))
        let storedEnv = try meta.value(.env)
        var hp = HyperParameters(defaults: type.descriptor.defaults)
        if let json = meta[.hyperparameters] { try hp.apply(json: json, source: source) }
        let options = meta[.envOptions] ?? [:]
        let storedFactory = EnvironmentFactory(id: storedEnv, options: options)
        let factory = EnvironmentFactory(id: override ?? storedEnv, options: override == nil ? options : [:])
        if let override, override != storedEnv {
            let a = try storedFactory.make(), b = try factory.make()
            guard a.observationSpace == b.observationSpace, a.actionSpace == b.actionSpace else {
                throw AgentError.checkpointMismatch("\(source) was trained on \(storedEnv) (\(a.observationSpace) → \(a.actionSpace)); "
                                                    + "\(override) has \(b.observationSpace) → \(b.actionSpace)")
            }
        }
        let agent = try type.init(environment: storedFactory, hyperParameters: hp, seed: try meta.value(.seed))
        try agent.restore(AgentCheckpoint(tensors: loaded.tensors, metadata: meta))
        return (agent, type.descriptor, factory, meta)
    }
}
