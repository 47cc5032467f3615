import RLCore
import Training

/// SB3's `policy_kwargs`: the shape of an agent's networks. `net_arch: [64, 64]` (also the zoo's
/// `dict(pi=[..], vf=[..])`, read as `{pi: [...], vf: [...]}`), `activation_fn`, `ortho_init`, `log_std_init` and
/// `features_extractor_class` (`FlattenExtractor` or `MinAtarCNN`; without it, chosen by the observation space); an
/// agent declares which of these entries its networks use, and any other is an error.
public struct PolicyKwargs: Sendable, Equatable {
    /// The entries, by their zoo names.
    public enum Entry: String, Sendable, CaseIterable {
        case netArch = "net_arch", activation = "activation_fn", orthoInit = "ortho_init", logStdInit = "log_std_init"
        case featuresExtractor = "features_extractor_class"
    }

    /// The most weights a network may hold: 2²⁷ (512 MiB of Float32 a copy; an optimizer keeps several copies). A
    /// larger `net_arch` is an error before anything is allocated.
    public static let maxNetworkWeights = 1 << 27

    /// Hidden layer sizes of the policy (or Q) network and of the value network.
    public var policyLayers: [Int]
    public var valueLayers: [Int]
    public var activation: Activation
    /// SB3's orthogonal initialization.
    public var orthoInit: Bool
    /// The initial log standard deviation of a Gaussian policy.
    public var logStdInit: Float
    /// What turns observations into the hidden layers' input; nil: the observation space decides
    /// (`FeaturesExtractor.automatic`). Written to the config only when set.
    public var featuresExtractor: FeaturesExtractor?
    /// Where the value was set: the size check, made once the environment's spaces are known, names it.
    var source = "defaults"

    public init(netArch: [Int], activation: Activation, orthoInit: Bool = true, logStdInit: Float = 0) {
        policyLayers = netArch; valueLayers = netArch
        self.activation = activation; self.orthoInit = orthoInit; self.logStdInit = logStdInit
    }

    public static func == (a: Self, b: Self) -> Bool {
        (a.policyLayers, a.valueLayers, a.activation, a.orthoInit, a.logStdInit, a.featuresExtractor)
            == (b.policyLayers, b.valueLayers, b.activation, b.orthoInit, b.logStdInit, b.featuresExtractor)
    }

    /// The hidden layers of networks with `inputs` inputs and `outputs` outputs; a network of more than
    /// `maxNetworkWeights` weights is an error naming `policy_kwargs` and where it was set.
    public func hiddenLayers(inputs: Int, outputs: Int) throws -> (policy: [Int], value: [Int]) {
        for hidden in [policyLayers, valueLayers] {
            let sizes = [inputs] + hidden + [outputs]
            var weights = 0
            for (a, b) in zip(sizes, sizes.dropFirst()) where weights <= Self.maxNetworkWeights {
                let (product, overflow) = a.multipliedReportingOverflow(by: b)
                weights = overflow ? Int.max : weights.addingReportingOverflow(product).partialValue
            }
            guard weights <= Self.maxNetworkWeights else {
                throw ConfigError.badValue(key: Self.key, source: source, reason: "net_arch \(hidden) is too large: a "
                                           + "\(sizes.map(String.init).joined(separator: "-")) network holds more than "
                                           + "\(Self.maxNetworkWeights) weights (512 MiB a copy)")
            }
        }
        return (policyLayers, valueLayers)
    }

    static let key = "policy_kwargs"

    /// The entries as the config file writes them.
    func value(_ entries: [Entry]) -> ConfigValue {
        func sizes(_ s: [Int]) -> ConfigValue { .list(s.map { .number(Double($0)) }) }
        var map: [String: ConfigValue] = [:]
        for entry in entries {
            switch entry {
            case .netArch:
                map[entry.rawValue] = policyLayers == valueLayers ? sizes(policyLayers)
                    : .map(["pi": sizes(policyLayers), "vf": sizes(valueLayers)])
            case .activation: map[entry.rawValue] = .string(activation.rawValue)
            case .orthoInit: map[entry.rawValue] = .bool(orthoInit)
            case .logStdInit: map[entry.rawValue] = .number(Double(logStdInit))
            case .featuresExtractor: if let featuresExtractor { map[entry.rawValue] = .string(featuresExtractor.rawValue) }
            }
        }
        return .map(map)
    }

    /// Reads the mapping layered under `policy_kwargs` (whose entries merge into the defaults'); entries other than
    /// `entries` are errors.
    init(_ hp: HyperParameters, entries: [Entry]) throws {
        let key = Self.key
        guard case let .map(kwargs)? = hp.values[key] else { throw hp.fail(key, "expected a mapping") }
        func sizes(_ v: ConfigValue?, _ what: String) throws -> [Int] {
            guard case let .list(items)? = v else { throw hp.fail(key, "\(what) must be a list of layer sizes") }
            return try items.map {
                guard case let .number(x) = $0, x >= 1, x == x.rounded(), x <= Double(Self.maxNetworkWeights) else {
                    throw hp.fail(key, "\(what) holds \($0), not a layer size from 1 to \(Self.maxNetworkWeights)")
                }
                return Int(x)
            }
        }
        var netArch = kwargs[Entry.netArch.rawValue]
        if case let .list(items)? = netArch, items.count == 1, case .map = items[0] { netArch = items[0] }  // [dict(pi=.., vf=..)]
        switch netArch {
        case .list?: policyLayers = try sizes(netArch, "net_arch"); valueLayers = policyLayers
        case let .map(m)?: policyLayers = try sizes(m["pi"], "net_arch.pi"); valueLayers = try sizes(m["vf"] ?? m["qf"], "net_arch.vf")
        default: throw hp.fail(key, "needs net_arch: [sizes]")
        }
        // SB3's defaults when an entry is absent.
        activation = .tanh
        if case let .string(name)? = kwargs[Entry.activation.rawValue] {
            guard let a = Activation(name: name) else { throw hp.fail(key, "unknown activation_fn '\(name)'") }
            activation = a
        }
        orthoInit = true
        if let v = kwargs[Entry.orthoInit.rawValue] {
            guard case let .bool(b) = v else { throw hp.fail(key, "ortho_init must be true or false") }
            orthoInit = b
        }
        logStdInit = 0
        if let v = kwargs[Entry.logStdInit.rawValue] {
            guard case let .number(x) = v else { throw hp.fail(key, "log_std_init must be a number") }
            logStdInit = Float(x)
        }
        if let v = kwargs[Entry.featuresExtractor.rawValue] {
            let names = FeaturesExtractor.allCases.map(\.rawValue)
            guard case let .string(name) = v, let extractor = FeaturesExtractor(rawValue: name) else {
                throw hp.fail(key, "features_extractor_class must be one of \(names.joined(separator: ", ")), got \(v)")
            }
            featuresExtractor = extractor
        }
        let allowed = entries.map(\.rawValue)
        for name in kwargs.keys.sorted() where !allowed.contains(name) {
            throw hp.fail(key, "'\(name)' is not an entry this agent's networks use (they use: \(allowed.joined(separator: ", ")))")
        }
        source = hp.sources[key] ?? "defaults"
    }
}

extension ConfigField {
    /// `policy_kwargs` with the `entries` the agent's networks use.
    public static func policyKwargs(_ path: WritableKeyPath<Config, PolicyKwargs>, entries: [PolicyKwargs.Entry],
                                    _ help: String) -> Self {
        Self(PolicyKwargs.key, path, help: help + " (" + entries.map(\.rawValue).joined(separator: ", ") + ")",
             value: { $0.value(entries) }, read: { try PolicyKwargs($0, entries: entries) })
    }
}
