import Environments
import Foundation
import RLCore
import Training

/// Loads an agent from a self-describing checkpoint (for `rlbench eval` and `rlbench play`).
public enum SavedAgent {
    /// The agent, its descriptor and the environment id stored in the checkpoint at `file`. `environment`
    /// overrides the stored id (it must have the same spaces); errors name what is wrong.
    public static func load(_ file: URL, environment override: String? = nil) throws -> (agent: Agent, descriptor: AgentDescriptor, environment: EnvironmentFactory) {
        try load(SafeTensors.read(from: file), source: file.path, environment: override)
    }

    /// The same from checkpoint bytes in memory (a policy snapshot published by a training run).
    public static func load(data: Data, environment override: String? = nil) throws -> (agent: Agent, descriptor: AgentDescriptor, environment: EnvironmentFactory) {
        try load(SafeTensors.decode(data), source: "policy snapshot", environment: override)
    }

    private static func load(_ loaded: (tensors: [(name: String, tensor: Tensor)], metadata: [String: String]),
                             source: String, environment override: String?) throws -> (agent: Agent, descriptor: AgentDescriptor, environment: EnvironmentFactory) {
        let meta = loaded.metadata
        if let format = meta["format"], format != AgentCheckpoint.format {
            throw AgentError.badCheckpoint("\(source) has format '\(format)'; this rlbench reads \(AgentCheckpoint.format)")
        }
        guard meta["format"] == AgentCheckpoint.format, let name = meta["agent"], let storedEnv = meta["env"] else {
            throw AgentError.badCheckpoint("\(source) is not an rlbench agent checkpoint (no agent/env metadata)")
        }
        let type = try AgentCatalog.agent(named: name)
        var hp = HyperParameters(defaults: type.descriptor.defaults)
        if let json = meta["hyperparameters"] {
            do { try hp.apply(json: json, source: source) } catch ConfigError.malformed {
                throw AgentError.badCheckpoint("\(source): hyperparameters metadata is not a JSON object")
            }
        }
        var options: [String: String] = [:]
        if let json = meta["env_options"], let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String] {
            options = object
        }
        let storedFactory = EnvironmentFactory(id: storedEnv, options: options)
        let factory = EnvironmentFactory(id: override ?? storedEnv, options: override == nil ? options : [:])
        if let override, override != storedEnv {
            let a = try storedFactory.make(), b = try factory.make()
            guard a.observationSpace == b.observationSpace, a.actionSpace == b.actionSpace else {
                throw AgentError.checkpointMismatch("\(source) was trained on \(storedEnv) (\(a.observationSpace) → \(a.actionSpace)); "
                                                    + "\(override) has \(b.observationSpace) → \(b.actionSpace)")
            }
        }
        let agent = try type.init(environment: storedFactory, hyperParameters: hp, seed: UInt64(meta["seed"] ?? "") ?? 0)
        try agent.restore(AgentCheckpoint(tensors: loaded.tensors, metadata: meta))
        return (agent, type.descriptor, factory)
    }
}
