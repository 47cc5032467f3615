import Environments
import Foundation
import RLCore
import Support
import Interop
import Training

extension StableBaselines3 {
    /// What `importModel` made: the checkpoint written, the agent and environment, and the notes worth telling (the
    /// hyperparameters kept at rlbench's defaults and why).
    public struct Imported {
        public let checkpoint: URL
        public let agent: String
        public let environment: String
        public let notes: [String]
    }

    /// The largest `data` entry read (SB3's are a few kilobytes; a replay buffer is never in it).
    static let maxDataBytes = 64 << 20

    /// Turns the SB3 zip at `zip` (PPO, A2C or DQN with `MlpPolicy`) into an rlbench run folder `directory` holding
    /// `final.safetensors` (and `last.safetensors`). The environment is `environment`, else the one registered
    /// environment with the zip's observation and action spaces (SB3 does not store the environment's id).
    public static func importModel(_ zip: URL, environment: String?, into directory: URL) throws -> Imported {
        let source = zip.path
        let archive = try ZipReader(try Files.data(zip, maxBytes: Limits.modelZipBytes), source: source)
        func entry(_ name: String) throws -> Data {
            guard let data = try archive.read(name) else {
                throw Failure("\(source) is not an SB3 model zip: it has no '\(name)' (it has: \(archive.names.joined(separator: ", ")))")
            }
            return data
        }
        let dataBytes = try entry("data")
        guard dataBytes.count <= maxDataBytes,
              let data = try? JSONSerialization.jsonObject(with: dataBytes) as? [String: Any] else {
            throw Failure("\(source): its 'data' entry is not a JSON object")
        }
        let parameters = try TorchSave.readStateDict(try entry("policy.pth"), source: "\(source) policy.pth")

        // The algorithm: DQN's Q-network, or an actor-critic (PPO has a clip range, A2C not).
        let names = Set(parameters.map(\.name))
        let agent: String
        if names.contains(where: { $0.hasPrefix("q_net.") }) { agent = "dqn" }
        else if names.contains("action_net.weight") { agent = data["clip_range"] != nil || data["n_epochs"] != nil ? "ppo" : "a2c" }
        else { throw Failure("\(source): policy.pth holds neither an actor-critic (action_net) nor a Q-network (q_net): \(names.sorted().prefix(6).joined(separator: ", "))") }

        let observationSpace = try space(data, "observation_space", source: source)
        let actionSpace = try space(data, "action_space", source: source)
        let envID = try matchingEnvironment(environment, observationSpace: observationSpace, actionSpace: actionSpace, source: source)
        let kwargs = try policyKwargs(data, agent: agent, source: source)

        // The hyperparameters: rlbench's defaults for the agent, with the zip's shared ones where rlbench accepts them.
        let type = try AgentCatalog.agent(named: agent)
        var hp = HyperParameters(defaults: type.descriptor.defaults)
        var notes: [String] = []
        try hp.set("policy_kwargs", .map(["net_arch": agent == "dqn" ? sizes(kwargs.policy)
                                                      : .map(["pi": sizes(kwargs.policy), "vf": sizes(kwargs.value)]),
                                          "activation_fn": .string(kwargs.activation.rawValue)]), source: source)
        for key in sharedHyperparameters[agent] ?? [] {
            // JSON's true and 1 both read as NSNumber: rlbench's default says which the key is.
            guard let x = data[key] as? NSNumber else { continue }
            let value: ConfigValue
            switch hp.values[key] {
            case .bool?: value = .bool(x.boolValue)
            case .number?, .string?: value = .number(x.doubleValue)
            default: continue
            }
            do { try hp.set(key, value, source: source) } catch { notes.append("kept rlbench's default \(key): \(error)") }
        }
        if data["use_sde"] as? Bool == true, hp.values["use_sde"] == nil {
            throw Failure("\(source) explores with gSDE, which rlbench's \(agent) does not have")
        }

        // The agent, built for the environment, takes SB3's parameters under rlbench's names.
        let seed = UInt64(max(0, (data["seed"] as? NSNumber)?.intValue ?? 0))
        let factory = EnvironmentFactory(id: envID)
        let built = try type.init(environment: factory, hyperParameters: hp, seed: seed)
        var checkpoint = try built.checkpoint()
        let ours = checkpoint.tensors.filter { !$0.name.hasPrefix("optimizer.") && !$0.name.hasPrefix("obs_rms.") }
        let last = lastLinear(ours.map(\.name))
        var used: Set<String> = []
        for (name, tensor) in ours {
            guard let theirs = sb3Name(name, agent: agent, lastLinear: last),
                  let value = parameters.first(where: { $0.name == theirs })?.tensor else {
                throw Failure("\(source): policy.pth has no parameter for rlbench's '\(name)' (SB3 name "
                              + "'\(sb3Name(name, agent: agent, lastLinear: last) ?? "?")'); net_arch \(kwargs.policy) may not match")
            }
            guard value.shape == tensor.shape else {
                throw Failure("\(source): '\(theirs)' has shape \(value.shape), but a \(agent) with net_arch \(kwargs.policy) "
                              + "on \(envID) needs \(tensor.shape)")
            }
            tensor.data = value.data
            used.insert(theirs)
        }
        let unknown = names.subtracting(used).sorted()
        guard unknown.isEmpty else {
            throw Failure("\(source): policy.pth holds parameters rlbench's \(agent) has no place for: \(unknown.prefix(8).joined(separator: ", "))")
        }
        let step = max(0, (data["num_timesteps"] as? NSNumber)?.intValue ?? 0)
        checkpoint.metadata[.format] = CheckpointMetadata.Kind.agent.format
        checkpoint.metadata[.agent] = agent
        checkpoint.metadata[.env] = envID
        checkpoint.metadata[.envOptions] = [:]
        checkpoint.metadata[.hyperparameters] = hp.json
        checkpoint.metadata[.step] = step
        checkpoint.metadata[.seed] = seed
        let folder = RunFolder(directory)
        try folder.create()
        let file = try folder.saveCheckpoint(checkpoint.tensors, metadata: checkpoint.metadata, step: step, named: "final.safetensors")
        return Imported(checkpoint: file, agent: agent, environment: envID, notes: notes)
    }

    private static func sizes(_ s: [Int]) -> ConfigValue { .list(s.map { .number(Double($0)) }) }

    /// The pickle under `data[key][":serialized:"]`, read with the allow-list of spaces and classes.
    static func serializedValue(_ data: [String: Any], _ key: String, source: String) throws -> PickleValue? {
        guard let item = data[key] else { return nil }
        guard let entry = item as? [String: Any], let text = entry[":serialized:"] as? String else {
            return nil
        }
        guard let bytes = Data(base64Encoded: text) else { throw Failure("\(source): data.\(key) is not valid base64") }
        return try PickleReader(allowedGlobals: readableGlobals).read(bytes, source: "\(source) data.\(key)")
    }

    /// The Gymnasium space serialized under `key` (`Box` of float32/float64, or `Discrete` starting at 0).
    static func space(_ data: [String: Any], _ key: String, source: String) throws -> Space {
        guard let value = try serializedValue(data, key, source: source) else {
            throw Failure("\(source): data has no serialized \(key) (SB3's load needs it too)")
        }
        func fail(_ m: String) -> Failure { Failure("\(source): data.\(key) \(m)") }
        guard let o = value.object, o.isNewObject, let state = o.state?.dict else { throw fail("is \(value), not a Gymnasium space") }
        switch o.callableName {
        case "gymnasium.spaces.discrete.Discrete":
            guard let n = try state["n"].map({ try integer($0) }), n >= 1, n <= 1 << 24 else { throw fail("has no usable n") }
            let start = try state["start"].map { try integer($0) } ?? 0
            guard start == 0 else { throw fail("starts at \(start); rlbench's discrete spaces start at 0") }
            return .discrete(n)
        case "gymnasium.spaces.box.Box":
            guard let low = state["low"], let high = state["high"] else { throw fail("has no low and high") }
            let (lowValues, shape) = try numbers(low, fail: fail)
            let (highValues, highShape) = try numbers(high, fail: fail)
            guard shape == highShape, !shape.isEmpty else { throw fail("has low \(shape) and high \(highShape) of different shapes") }
            return .box(low: lowValues.map(Float.init), high: highValues.map(Float.init), shape: shape)
        default:
            throw fail("is a \(o.callableName); rlbench reads Box and Discrete spaces")
        }
    }

    /// A Python int or a numpy integer scalar (`scalar(dtype('i8'), bytes)`).
    private static func integer(_ value: PickleValue) throws -> Int {
        if let i = value.int { return i }
        if let o = value.object, o.callableName.hasSuffix("multiarray.scalar"), o.arguments.count == 2,
           case let .bytes(b) = o.arguments[1], b.count == 8 || b.count == 4 {
            let v = b.reversed().reduce(0) { $0 << 8 | Int($1) }
            return b.count == 4 ? Int(Int32(truncatingIfNeeded: v)) : v
        }
        throw Failure("\(value) is not an integer")
    }

    /// The values and shape of a numpy float array: numpy 2's `_frombuffer(buffer, dtype, shape, order)` or the
    /// older `_reconstruct(ndarray, …)` with state `(version, shape, dtype, fortran, bytes)`.
    private static func numbers(_ value: PickleValue, fail: (String) -> Failure) throws -> ([Double], [Int]) {
        guard let o = value.object else { throw fail("holds \(value), not a numpy array") }
        if o.callableName.hasSuffix("numeric._frombuffer"), o.arguments.count == 4 {
            switch o.arguments[0] {
            case let .bytearray(b), let .bytes(b):
                guard o.arguments[3].string == "C" else { throw fail("has a Fortran-ordered array") }
                return try decode(b, o.arguments[1], o.arguments[2], fail: fail)
            default: throw fail("has an array without data")
            }
        }
        if o.callableName.hasSuffix("multiarray._reconstruct"), let state = o.state?.tuple, state.count == 5 {
            guard state[3].bool == false, case let .bytes(b) = state[4] else { throw fail("has a Fortran-ordered or object array") }
            return try decode(b, state[2], state[1], fail: fail)
        }
        throw fail("holds \(o.callableName)(…), not a numpy array")
    }

    private static func decode(_ buffer: [UInt8], _ dtypeValue: PickleValue, _ shapeValue: PickleValue,
                               fail: (String) -> Failure) throws -> ([Double], [Int]) {
        guard let d = dtypeValue.object, d.callableName == "numpy.dtype", let code = d.arguments.first?.string,
              let shape = shapeValue.tuple?.compactMap(\.int), shape.count == shapeValue.tuple?.count,
              shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 24 }) else { throw fail("has an array with a bad dtype or shape") }
        if let order = d.state?.tuple?[1].string, order == ">" { throw fail("has a big-endian array") }
        let count = shape.reduce(1, *)
        switch code {
        case "f4":
            guard buffer.count == count * 4 else { throw fail("has an array of \(buffer.count) bytes for shape \(shape)") }
            return ((0..<count).map { i in Double(Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(buffer[i * 4 + $1]) << (8 * $1) })) }, shape)
        case "f8":
            guard buffer.count == count * 8 else { throw fail("has an array of \(buffer.count) bytes for shape \(shape)") }
            return ((0..<count).map { i in Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(buffer[i * 8 + $1]) << (8 * $1) }) }, shape)
        default:
            throw fail("has an array of dtype \(code); rlbench reads float32 and float64 boxes")
        }
    }

    /// `environment` when it has the zip's spaces, else the one registered environment that has them.
    static func matchingEnvironment(_ environment: String?, observationSpace: Space, actionSpace: Space, source: String) throws -> String {
        func matches(_ id: String) -> Bool {
            guard let env = try? Registry.make(id) else { return false }
            return env.observationSpace == observationSpace && env.actionSpace == actionSpace
        }
        if let environment {
            let env = try Registry.make(environment)
            guard matches(environment) else {
                throw Failure("\(source) acts on \(observationSpace) → \(actionSpace); \(environment) has "
                              + "\(env.observationSpace) → \(env.actionSpace)")
            }
            return environment
        }
        var found = Registry.ids.filter(matches)
        // A partially observed version has its environment's spaces: the environment itself, unless --env says so.
        let masked = found.filter { id in (try? Registry.entry(id))?.masks.map(found.contains) ?? false }
        found.removeAll(where: masked.contains)
        // Versions of one environment (CartPole-v0 and -v1 differ only in their time limit): the newest.
        let families = Set(found.map { $0.split(separator: "-v").dropLast().joined(separator: "-v") })
        if found.count > 1, families.count == 1,
           let newest = found.max(by: { (Int($0.split(separator: "-v").last ?? "") ?? 0) < (Int($1.split(separator: "-v").last ?? "") ?? 0) }) {
            found = [newest]
        }
        guard found.count == 1 else {
            throw Failure("\(source) does not say its environment (SB3 stores only the spaces, \(observationSpace) → \(actionSpace)) and "
                          + (found.isEmpty ? "no registered environment has them" : "several have them (\(found.joined(separator: ", ")))")
                          + ": name it with --env")
        }
        return found[0]
    }

    /// The network shape `policy_kwargs` asks for, with SB3's defaults (64-64; Tanh for actor-critics, ReLU for
    /// DQN). Entries that change the acting network in ways rlbench has no counterpart for are refused.
    static func policyKwargs(_ data: [String: Any], agent: String, source: String) throws -> (policy: [Int], value: [Int], activation: Activation) {
        var entries: [(key: String, value: PickleValue)] = []
        if let value = try serializedValue(data, "policy_kwargs", source: source) {
            guard let dict = value.dict else { throw Failure("\(source): data.policy_kwargs is \(value), not a dict") }
            entries = try dict.entries.map {
                guard let k = $0.key.string else { throw Failure("\(source): data.policy_kwargs has a key \($0.key)") }
                return (k, $0.value)
            }
        } else if let plain = data["policy_kwargs"] as? [String: Any] {
            entries = try plain.map { key, value in
                if let sizes = value as? [Int] { return (key, .list(PickleList(sizes.map { .int($0) }))) }
                if let map = value as? [String: [Int]] {
                    return (key, .dict(PickleDict(map.map { (.string($0.key), .list(PickleList($0.value.map { .int($0) }))) })))
                }
                if let b = value as? Bool { return (key, .bool(b)) }
                if let x = value as? NSNumber { return (key, .float(x.doubleValue)) }
                throw Failure("\(source): data.policy_kwargs.\(key) is not understood")
            }
        }
        var policy = [64, 64], value = [64, 64]
        var activation: Activation = agent == "dqn" ? .relu : .tanh
        func layerSizes(_ v: PickleValue) throws -> [Int] {
            guard case let .list(l) = v, let s = Optional(l.items.compactMap(\.int)), s.count == l.items.count,
                  s.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }) else { throw Failure("\(source): policy_kwargs.net_arch holds \(v), not layer sizes") }
            return s
        }
        for (key, v) in entries {
            switch key {
            case "net_arch":
                if let d = v.dict {
                    guard let pi = d["pi"], let vf = d["vf"] else { throw Failure("\(source): policy_kwargs.net_arch needs pi and vf") }
                    policy = try layerSizes(pi); value = try layerSizes(vf)
                } else if case let .list(l) = v, l.items.count == 1, let d = l.items[0].dict, let pi = d["pi"], let vf = d["vf"] {
                    policy = try layerSizes(pi); value = try layerSizes(vf)  // SB3 < 1.8: [dict(pi=…, vf=…)]
                } else {
                    policy = try layerSizes(v); value = policy
                }
            case "activation_fn":
                guard case let .global(module, name) = v,
                      let a = activationClasses.first(where: { $0.value.module == module && $0.value.name == name })?.key else {
                    throw Failure("\(source): policy_kwargs.activation_fn is \(v), which rlbench has no counterpart for")
                }
                activation = a
            case "optimizer_class", "optimizer_kwargs", "ortho_init", "log_std_init", "normalize_images", "share_features_extractor":
                break  // training settings, or no effect on an MLP's actions
            case "features_extractor_class":
                guard case .global(_, "FlattenExtractor") = v else { throw Failure("\(source): policy_kwargs.features_extractor_class is \(v); rlbench reads MlpPolicy's FlattenExtractor") }
            case "full_std" where v.bool == true, "use_expln" where v.bool == false, "squash_output" where v.bool == false:
                break  // rlbench's gSDE: full σ matrix, exp, no squashing
            default:
                throw Failure("\(source): policy_kwargs.\(key) = \(v) is not understood (rlbench reads MlpPolicy's net_arch and activation_fn)")
            }
        }
        return (policy, value, activation)
    }
}
