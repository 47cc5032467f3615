import Environments
import Foundation
import RLCore
import Support
import Interop
import Training

/// Stable-Baselines3 model zips, both ways, for PPO, A2C and DQN with SB3's `MlpPolicy` (docs/interop.md maps the
/// formats). A zip holds `data` (JSON: the algorithm's attributes; spaces, classes and `policy_kwargs` as base64
/// cloudpickles under `:serialized:`), `policy.pth` and `policy.optimizer.pth` (`torch.save` state dicts),
/// `pytorch_variables.pth`, `_stable_baselines3_version` and `system_info.txt`.
///
/// Reading never runs a pickle: `PickleReader` refuses every global outside the allow-lists below.
public enum StableBaselines3 {
    /// The SB3 version whose format this writes (and that the tests load the files with).
    public static let formatVersion = "2.9.2"

    /// The agents that have an SB3 counterpart, by rlbench name (SB3's class is the upper-cased name).
    public static let agents = ["ppo", "a2c", "dqn"]

    /// An SB3 zip rlbench cannot write or read, with what was not understood.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: Names

    /// The globals a serialized space or `policy_kwargs` may name: spaces, numpy arrays and scalars, torch's
    /// activation and optimizer classes, SB3's default features extractor.
    public static let readableGlobals: Set<String> = {
        var names: Set<String> = ["gymnasium.spaces.box.Box", "gymnasium.spaces.discrete.Discrete", "numpy.dtype", "numpy.ndarray",
                                  "torch.optim.adam.Adam", "torch.optim.rmsprop.RMSprop", "torch.optim.sgd.SGD",
                                  "stable_baselines3.common.torch_layers.FlattenExtractor", PickleReader.orderedDict,
                                  // A seeded space's `_np_random`: a numpy Generator and its bit generator's state.
                                  "numpy.random._pickle.__generator_ctor", "numpy.random._pickle.__bit_generator_ctor",
                                  "numpy.random._pcg64.PCG64", "numpy.random._pcg64.PCG64DXSM", "numpy.random._mt19937.MT19937",
                                  "numpy.random._philox.Philox", "numpy.random._sfc64.SFC64",
                                  "numpy.random.bit_generator.__pyx_unpickle_SeedSequence", "numpy.random.bit_generator.SeedSequence"]
        for core in ["numpy._core", "numpy.core"] {
            names.formUnion(["\(core).numeric._frombuffer", "\(core).multiarray.scalar", "\(core).multiarray._reconstruct"])
        }
        names.formUnion(activationClasses.values.map { "\($0.module).\($0.name)" })
        return names
    }()

    /// torch.nn's class for each activation rlbench has (the same functions: LeakyReLU's slope 0.01, ELU's α 1).
    static let activationClasses: [Activation: (module: String, name: String)] = [
        .tanh: ("torch.nn.modules.activation", "Tanh"), .relu: ("torch.nn.modules.activation", "ReLU"),
        .leakyRelu: ("torch.nn.modules.activation", "LeakyReLU"), .elu: ("torch.nn.modules.activation", "ELU"),
        .sigmoid: ("torch.nn.modules.activation", "Sigmoid"), .softplus: ("torch.nn.modules.activation", "Softplus"),
        .identity: ("torch.nn.modules.linear", "Identity"),
    ]

    /// SB3's policy class of each agent.
    static let policyClasses = ["ppo": ("stable_baselines3.common.policies", "ActorCriticPolicy"),
                                "a2c": ("stable_baselines3.common.policies", "ActorCriticPolicy"),
                                "dqn": ("stable_baselines3.dqn.policies", "DQNPolicy")]

    /// The hyperparameters copied between a checkpoint's config and the zip's `data`: the zoo's names are SB3's.
    static let sharedHyperparameters = [
        "ppo": ["n_envs", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range", "ent_coef", "vf_coef",
                "max_grad_norm", "learning_rate", "use_sde", "sde_sample_freq", "normalize_advantage", "target_kl"],
        "a2c": ["n_envs", "n_steps", "gamma", "gae_lambda", "ent_coef", "vf_coef", "max_grad_norm", "learning_rate",
                "use_sde", "sde_sample_freq", "normalize_advantage", "use_rms_prop", "rms_prop_eps"],
        "dqn": ["n_envs", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq", "gradient_steps",
                "target_update_interval", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps",
                "max_grad_norm", "learning_rate", "n_steps"],
    ]

    /// The SB3 parameter name of an rlbench one: an actor-critic's trunks go under `mlp_extractor`, their last
    /// layers are `action_net` and `value_net`; DQN's Q-network is `q_net.q_net`, its target `q_net_target.q_net`.
    /// `lastLinear` is the index of each `Sequential`'s output layer.
    static func sb3Name(_ name: String, agent: String, lastLinear: [String: Int]) -> String? {
        let parts = name.split(separator: ".").map(String.init)
        if name == "log_std", agent != "dqn" { return name }
        if agent == "dqn" {
            if parts.count == 3, parts[0] == "q" { return "q_net.q_net.\(parts[1]).\(parts[2])" }
            if parts.count == 4, parts[0] == "target", parts[1] == "q" { return "q_net_target.q_net.\(parts[2]).\(parts[3])" }
            return nil
        }
        guard parts.count == 3, let net = ["pi": "policy", "vf": "value"][parts[0]], let index = Int(parts[1]) else { return nil }
        if index == lastLinear[parts[0]] { return "\(parts[0] == "pi" ? "action" : "value")_net.\(parts[2])" }
        return "mlp_extractor.\(net)_net.\(index).\(parts[2])"
    }

    /// The index of the last layer of each network (`pi`, `vf`, `q`) among `names`.
    static func lastLinear(_ names: [String]) -> [String: Int] {
        var last: [String: Int] = [:]
        for name in names {
            let parts = name.split(separator: ".")
            guard parts.count == 3, let i = Int(parts[1]) else { continue }
            last[String(parts[0])] = max(last[String(parts[0])] ?? i, i)
        }
        return last
    }

    // MARK: Export

    /// Writes the agent checkpoint at `checkpoint` as an SB3 zip at `destination`. Refuses agents SB3 has no
    /// `MlpPolicy` for, dueling DQN, and normalized observations (SB3 keeps those in a `VecNormalize` file).
    public static func export(checkpoint: URL, to destination: URL) throws {
        let loaded = try SavedAgent.load(checkpoint)
        let agent = loaded.descriptor.name
        let meta = loaded.metadata
        guard agents.contains(agent), let policyClass = policyClasses[agent] else {
            throw Failure("\(checkpoint.path) holds a \(agent) agent; SB3 export covers \(agents.joined(separator: ", "))")
        }
        guard meta[.observation] == nil else {
            throw Failure("\(checkpoint.path) normalizes its observations (normalize: true); SB3 keeps those statistics in a "
                          + "VecNormalize file beside the zip, which rlbench does not write: train with --set normalize=false to export")
        }
        // MlpPolicy only: linear layers and activations (not a MinAtar CNN's convolutions).
        let mlpLayers: Set<String> = ["linear", "tanh", "relu", "leaky_relu", "elu", "sigmoid", "softplus", "identity"]
        let layers = (try? JSONSerialization.jsonObject(with: Data((meta[.policy] ?? "[]").utf8))) as? [[String: Any]] ?? []
        if let other = layers.compactMap({ $0["type"] as? String }).first(where: { !mlpLayers.contains($0) }) {
            throw Failure("\(checkpoint.path): its network has a \(other) layer; SB3 export covers MlpPolicy networks (linear layers)")
        }
        var hp = HyperParameters(defaults: loaded.descriptor.defaults)
        if let json = meta[.hyperparameters] { try hp.apply(json: json, source: checkpoint.path) }
        if case let .bool(dueling)? = hp.values["dueling"], dueling {
            throw Failure("\(checkpoint.path) is a dueling DQN; SB3's DQN has no dueling head")
        }
        let kwargs = try PolicyKwargs(hp, entries: PolicyKwargs.Entry.allCases)
        let environment = try loaded.environment.make()

        // policy.pth: the parameters under SB3's names (not the optimizer's state).
        let file = try SafeTensors.read(from: checkpoint)
        let parameters = file.tensors.filter { !$0.name.hasPrefix("optimizer.") }
        let last = lastLinear(parameters.map(\.name))
        let stateDict = try parameters.map { p in
            guard let name = sb3Name(p.name, agent: agent, lastLinear: last) else {
                throw Failure("\(checkpoint.path): tensor '\(p.name)' has no place in SB3's \(agent.uppercased()) MlpPolicy")
            }
            return (name: name, tensor: p.tensor)
        }
        // The optimizer holds the online network's parameters (DQN: not the target's), with no state yet.
        let optimized = stateDict.filter { !$0.name.hasPrefix("q_net_target.") }.count
        var zip = ZipWriter()
        zip.add("data", try data(agent: agent, hp: hp, kwargs: kwargs, environment: environment,
                                 policyClass: policyClass, step: try meta.value(.step), seed: try meta.value(.seed)))
        zip.add("pytorch_variables.pth", TorchSave.encode(.dict(PickleDict()), storages: []))
        zip.add("policy.pth", TorchSave.encode(stateDict: stateDict))
        zip.add("policy.optimizer.pth", TorchSave.encode(optimizerState(agent: agent, hp: hp, parameters: optimized), storages: []))
        zip.add("_stable_baselines3_version", Data(formatVersion.utf8))
        zip.add("system_info.txt", Data("- Written by: rlbench export --sb3 (from \(checkpoint.lastPathComponent))\n- Stable-Baselines3: \(formatVersion)\n".utf8))
        try AtomicFile.write(zip.finish(), to: destination)
    }

    /// The `data` JSON: SB3's attributes that `load` needs (the spaces, the policy class and kwargs) and the
    /// hyperparameters both sides share; SB3's constructor defaults fill the rest.
    static func data(agent: String, hp: HyperParameters, kwargs: PolicyKwargs, environment: Environment,
                     policyClass: (String, String), step: Int, seed: UInt64) throws -> Data {
        var object: [String: Any] = [
            "policy_class": serialized(.global(module: policyClass.0, name: policyClass.1), type: "<class 'abc.ABCMeta'>"),
            "verbose": 0, "num_timesteps": step, "_total_timesteps": step, "seed": seed, "n_envs": 1,  // DQN: one environment
            "observation_space": serialized(pickle(environment.observationSpace), type: spaceType(environment.observationSpace)),
            "action_space": serialized(pickle(environment.actionSpace), type: spaceType(environment.actionSpace)),
        ]
        for key in sharedHyperparameters[agent] ?? [] {
            switch hp.values[key] {
            case let .number(x)?: object[key] = x == x.rounded() && abs(x) < 1e15 && key != "learning_rate" ? Int(x) as Any : x
            case let .bool(b)?: object[key] = b
            case let .string(s)? where s.hasPrefix("lin_"): object[key] = Double(s.dropFirst(4))  // the initial rate
            default: break
            }
        }
        // Policy kwargs: SB3's default net_arch for actor-critics is separate pi and vf lists.
        let netArch: PickleValue = agent == "dqn" ? intList(kwargs.policyLayers)
            : .dict(PickleDict([(.string("pi"), intList(kwargs.policyLayers)), (.string("vf"), intList(kwargs.valueLayers))]))
        guard let activation = activationClasses[kwargs.activation] else { throw Failure("activation \(kwargs.activation) has no torch.nn class") }
        var policyKwargs: [(key: PickleValue, value: PickleValue)] = [
            (.string("net_arch"), netArch), (.string("activation_fn"), .global(module: activation.module, name: activation.name)),
        ]
        if agent == "a2c" {  // A2C's RMSprop, as SB3's A2C sets it (use_rms_prop)
            policyKwargs += [(.string("optimizer_class"), .global(module: "torch.optim.rmsprop", name: "RMSprop")),
                             (.string("optimizer_kwargs"), .dict(PickleDict([(.string("alpha"), .float(0.99)),
                                                                             (.string("eps"), .float(1e-5)),
                                                                             (.string("weight_decay"), .int(0))])))]
        }
        object["policy_kwargs"] = serialized(.dict(PickleDict(policyKwargs)), type: "<class 'dict'>")
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    private static func intList(_ sizes: [Int]) -> PickleValue { .list(PickleList(sizes.map { .int($0) })) }

    /// A `:serialized:` entry: base64 of a pickle (cloudpickle reads plain pickles).
    private static func serialized(_ value: PickleValue, type: String) -> [String: Any] {
        [":type:": type, ":serialized:": PickleWriter.encode(value, protocol: 4).base64EncodedString()]
    }

    private static func spaceType(_ space: Space) -> String {
        switch space {
        case .discrete: "<class 'gymnasium.spaces.discrete.Discrete'>"
        case .box: "<class 'gymnasium.spaces.box.Box'>"
        }
    }

    /// A numpy dtype as numpy pickles it: `numpy.dtype(code, False, True)` with its byte order as state.
    private static func dtype(_ code: String) -> PickleValue {
        let order = code == "b1" ? "|" : "<"
        return .object(PickleObject(callable: .global(module: "numpy", name: "dtype"),
                                    arguments: [.string(code), .bool(false), .bool(true)],
                                    state: .tuple([.int(3), .string(order), .none, .none, .none, .int(-1), .int(-1), .int(0)])))
    }

    /// A 1-D or n-D numpy array as numpy 2 pickles it: `numpy._core.numeric._frombuffer(bytearray, dtype, shape, 'C')`.
    private static func array(_ bytes: [UInt8], dtype code: String, shape: [Int]) -> PickleValue {
        .object(PickleObject(callable: .global(module: "numpy._core.numeric", name: "_frombuffer"),
                             arguments: [.bytearray(bytes), dtype(code), .tuple(shape.map { .int($0) }), .string("C")]))
    }

    /// A Gymnasium space as cloudpickle writes it: `Space.__new__` then its `__dict__` as state.
    static func pickle(_ space: Space) -> PickleValue {
        let state: [(String, PickleValue)]
        switch space {
        case let .discrete(n):
            func scalar(_ v: Int) -> PickleValue {
                .object(PickleObject(callable: .global(module: "numpy._core.multiarray", name: "scalar"),
                                     arguments: [dtype("i8"), .bytes((0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) })]))
            }
            state = [("dtype", dtype("i8")), ("n", scalar(n)), ("start", scalar(0)), ("_shape", .tuple([])), ("_np_random", .none)]
            return .object(PickleObject(callable: .global(module: "gymnasium.spaces.discrete", name: "Discrete"), arguments: [],
                                        isNewObject: true, state: .dict(PickleDict(state.map { (.string($0.0), $0.1) }))))
        case let .box(low, high, shape):
            func floats(_ v: [Float]) -> PickleValue { array(v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }, dtype: "f4", shape: shape) }
            func flags(_ v: [Bool]) -> PickleValue { array(v.map { $0 ? 1 : 0 }, dtype: "b1", shape: shape) }
            state = [("dtype", dtype("f4")), ("_shape", .tuple(shape.map { .int($0) })), ("low", floats(low)),
                     ("bounded_below", flags(low.map { $0 > -.infinity })), ("high", floats(high)),
                     ("bounded_above", flags(high.map { $0 < .infinity })), ("low_repr", .none), ("high_repr", .none),
                     ("_np_random", .none)]
            return .object(PickleObject(callable: .global(module: "gymnasium.spaces.box", name: "Box"), arguments: [],
                                        isNewObject: true, state: .dict(PickleDict(state.map { (.string($0.0), $0.1) }))))
        }
    }

    /// `policy.optimizer.pth`: the optimizer SB3 builds (Adam; A2C's RMSprop) with `parameters` parameters and no
    /// moments yet (rlbench's Adam state is not carried over: SB3 starts its moments afresh).
    static func optimizerState(agent: String, hp: HyperParameters, parameters: Int) -> PickleValue {
        var learningRate = 3e-4
        switch hp.values["learning_rate"] {
        case let .number(x)?: learningRate = x
        case let .string(s)? where s.hasPrefix("lin_"): learningRate = Double(s.dropFirst(4)) ?? learningRate
        default: break
        }
        var group: [(String, PickleValue)] = [("lr", .float(learningRate))]
        if agent == "a2c" {
            group += [("momentum", .int(0)), ("alpha", .float(0.99)), ("eps", .float(1e-5)), ("centered", .bool(false)),
                      ("weight_decay", .int(0)), ("capturable", .bool(false)), ("foreach", .none), ("maximize", .bool(false)),
                      ("differentiable", .bool(false))]
        } else {
            group += [("betas", .tuple([.float(0.9), .float(0.999)])), ("eps", .float(agent == "dqn" ? 1e-8 : 1e-5)),
                      ("weight_decay", .int(0)), ("amsgrad", .bool(false)), ("maximize", .bool(false)), ("foreach", .none),
                      ("capturable", .bool(false)), ("differentiable", .bool(false)), ("fused", .none)]
        }
        group.append(("params", .list(PickleList((0..<parameters).map { .int($0) }))))
        return .dict(PickleDict([(.string("state"), .dict(PickleDict())),
                                 (.string("param_groups"), .list(PickleList([.dict(PickleDict(group.map { (.string($0.0), $0.1) }))])))]))
    }
}
