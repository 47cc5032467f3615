import RLCore
import Training

/// The hyperparameters that shape an agent's networks (`policy_kwargs`), read from a run's config.
extension HyperParameters {
    /// The most weights a network may hold: 2²⁷ (512 MiB of Float32 a copy; an optimizer keeps several copies). A
    /// larger `net_arch` is an error before anything is allocated.
    public static let maxNetworkWeights = 1 << 27

    /// `policy_kwargs: {net_arch: [64, 64]}` (also accepts the zoo's `dict(pi=[..], vf=[..])` as `{pi: [...], vf: [...]}`):
    /// the hidden layer sizes of networks with `inputs` inputs and `outputs` outputs, at most `maxNetworkWeights`
    /// weights each.
    public func netArch(inputs: Int, outputs: Int) throws -> (policy: [Int], value: [Int]) {
        guard case let .map(kwargs)? = values["policy_kwargs"] else { throw fail("policy_kwargs", "expected a mapping") }
        func sizes(_ v: ConfigValue?, _ what: String) throws -> [Int] {
            guard case let .list(items)? = v else { throw fail("policy_kwargs", "\(what) must be a list of layer sizes") }
            return try items.map {
                guard case let .number(x) = $0, x >= 1, x == x.rounded() else { throw fail("policy_kwargs", "\(what) holds \($0), not a layer size") }
                return Int(x)
            }
        }
        func checkSize(_ hidden: [Int], _ what: String) throws {
            let sizes = [inputs] + hidden + [outputs]
            var weights = 0
            for (a, b) in zip(sizes, sizes.dropFirst()) where weights <= Self.maxNetworkWeights {
                let (product, overflow) = a.multipliedReportingOverflow(by: b)
                weights = overflow ? Int.max : weights.addingReportingOverflow(product).partialValue
            }
            guard weights <= Self.maxNetworkWeights else {
                throw fail("policy_kwargs", "\(what) \(hidden) is too large: a \(sizes.map(String.init).joined(separator: "-")) "
                           + "network holds more than \(Self.maxNetworkWeights) weights (512 MiB a copy)")
            }
        }
        let arch: (policy: [Int], value: [Int])
        var netArch = kwargs["net_arch"]
        if case let .list(items)? = netArch, items.count == 1, case .map = items[0] { netArch = items[0] }  // [dict(pi=.., vf=..)]
        switch netArch {
        case .list?: let s = try sizes(netArch, "net_arch"); arch = (s, s)
        case let .map(m)?: arch = (try sizes(m["pi"], "net_arch.pi"), try sizes(m["vf"] ?? m["qf"], "net_arch.vf"))
        default: throw fail("policy_kwargs", "needs net_arch: [sizes]")
        }
        try checkSize(arch.policy, "net_arch")
        try checkSize(arch.value, "net_arch")
        return arch
    }

    /// The network options of `policy_kwargs`: activation (`activation_fn`), orthogonal init (`ortho_init`) and the
    /// initial log standard deviation (`log_std_init`), with SB3's defaults when absent. Entries other than `allowed`
    /// (the ones the agent's networks use) are errors.
    public func policyOptions(allowed: [String] = ["net_arch", "activation_fn", "ortho_init", "log_std_init"]) throws
        -> (activation: Activation, orthoInit: Bool, logStdInit: Float) {
        guard case let .map(kwargs)? = values["policy_kwargs"] else { throw fail("policy_kwargs", "expected a mapping") }
        var activation = Activation.tanh
        if case let .string(name)? = kwargs["activation_fn"] {
            guard let a = Activation(name: name) else { throw fail("policy_kwargs", "unknown activation_fn '\(name)'") }
            activation = a
        }
        var ortho = true
        if let v = kwargs["ortho_init"] {
            guard case let .bool(b) = v else { throw fail("policy_kwargs", "ortho_init must be true or false") }
            ortho = b
        }
        var logStd: Float = 0
        if let v = kwargs["log_std_init"] {
            guard case let .number(x) = v else { throw fail("policy_kwargs", "log_std_init must be a number") }
            logStd = Float(x)
        }
        for key in kwargs.keys.sorted() where !allowed.contains(key) {
            throw fail("policy_kwargs", "'\(key)' is not an entry this agent's networks use (they use: \(allowed.joined(separator: ", ")))")
        }
        return (activation, ortho, logStd)
    }
}
