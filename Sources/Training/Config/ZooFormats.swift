import Foundation
import Yams

/// The forms rl-baselines3-zoo's own hyperparameter files use beside plain YAML, so that a section copied from the
/// zoo's `hyperparams/<algo>.yml` loads as it is:
///
/// - a file keyed by environment id (`CartPole-v1: {n_envs: 8, ...}`): the section of the run's environment is used;
/// - Python call strings: `policy_kwargs: "dict(net_arch=[64, 64], activation_fn=nn.ReLU)"`;
/// - `normalize: "dict(norm_obs=True, norm_reward=True)"` or `"{'norm_obs': True, 'norm_reward': True}"` (rlbench
///   normalizes both or neither);
/// - `train_freq: [4, step]` (a step count; per-episode training is refused);
/// - `policy: 'MlpPolicy'` (the only policy class rlbench builds).
enum ZooFormats {
    /// The mapping to apply from a parsed file: the file itself, or its section for `environment` when its top-level
    /// keys are environment ids. A file of sections without one for `environment` is an error listing them.
    static func section(of mapping: [String: Any], for environment: String?, source: String) throws -> [String: Any] {
        // Environment ids (`CartPole-v1`, `ALE/Pong-v5`) and the zoo's `atari` section.
        let sections = mapping.filter {
            $0.value is [String: Any] && ($0.key == "atari" || $0.key.wholeMatch(of: /[A-Za-z0-9_\/]+-v\d+/) != nil)
        }
        guard !sections.isEmpty, sections.count == mapping.count else { return mapping }
        if let environment, let own = mapping[environment] as? [String: Any] { return own }
        throw ConfigError.malformed(source: source, reason: "its sections are for \(sections.keys.sorted().joined(separator: ", "))"
                                    + ", none for \(environment ?? "this environment")")
    }

    /// The zoo's `policy` key names SB3's policy class: rlbench's networks are SB3's MlpPolicy, any other is an error.
    static func checkPolicyClass(_ value: ConfigValue, source: String) throws {
        guard case .string("MlpPolicy") = value else {
            throw ConfigError.badValue(key: "policy", source: source, reason: "rlbench's networks are MlpPolicy, not \(value)")
        }
    }

    /// `value` for `key` with the zoo's Python-flavoured forms turned into rlbench's.
    static func normalized(_ value: ConfigValue, key: String, source: String) throws -> ConfigValue {
        var value = value
        if case let .string(text) = value, text.hasPrefix("dict(") || text.hasPrefix("{") {
            value = try pythonDict(text, key: key, source: source)
        }
        switch (key, value) {
        case let ("normalize", .map(options)):
            let unknown = options.keys.filter { $0 != "norm_obs" && $0 != "norm_reward" }
            guard unknown.isEmpty else {
                throw ConfigError.badValue(key: key, source: source, reason: "unknown entry '\(unknown.sorted()[0])' (known: norm_obs, norm_reward)")
            }
            let observations = options["norm_obs"] ?? .bool(true), rewards = options["norm_reward"] ?? .bool(true)
            guard case let .bool(both) = observations, observations == rewards else {
                throw ConfigError.badValue(key: key, source: source, reason: "rlbench normalizes observations and rewards "
                                           + "together (SB3's VecNormalize default): norm_obs and norm_reward must agree")
            }
            return .bool(both)
        case let ("train_freq", .list(items)):
            guard items.count == 2, case .number = items[0], case let .string(unit) = items[1] else {
                throw ConfigError.badValue(key: key, source: source, reason: "expected a step count or [n, step], got \(value)")
            }
            guard unit == "step" else {
                throw ConfigError.badValue(key: key, source: source, reason: "rlbench trains every n steps; [n, \(unit)] is not supported")
            }
            return items[0]
        default:
            return value
        }
    }

    /// `dict(a=1, b=dict(c=[2, 3]), f=nn.ReLU, t=True)` or `{'a': 1, 't': True}` as a mapping: the call syntax
    /// becomes a YAML flow mapping (`{a: 1, b: {c: [2, 3]}, f: nn.ReLU, t: true}`), which Yams then reads.
    static func pythonDict(_ text: String, key: String, source: String) throws -> ConfigValue {
        var yaml = "", closers: [Character] = [], word = ""
        func flushWord() {
            switch word {
            case "True": yaml += "true"
            case "False": yaml += "false"
            case "None": yaml += "null"
            default: yaml += word
            }
            word = ""
        }
        var quote: Character?
        for c in text {
            if let q = quote {
                yaml.append(c)
                if c == q { quote = nil }
                continue
            }
            switch c {
            case "'", "\"":
                flushWord(); quote = c; yaml.append(c)
            case "(":
                if word == "dict" { word = ""; yaml += "{"; closers.append("}") } else { flushWord(); yaml += "("; closers.append(")") }
            case ")":
                flushWord()
                guard let closer = closers.popLast() else {
                    throw ConfigError.badValue(key: key, source: source, reason: "unbalanced parentheses in \(text)")
                }
                yaml.append(closer)
            case "=":
                flushWord(); yaml += ": "
            case "[", "]", "{", "}", ",", ":", " ", "\n", "\t":
                flushWord(); yaml.append(c)
            default:
                word.append(c)
            }
        }
        flushWord()
        guard closers.isEmpty, quote == nil, let parsed = try? Yams.load(yaml: yaml), let mapping = parsed as? [String: Any] else {
            throw ConfigError.badValue(key: key, source: source, reason: "cannot read \(text) as dict(key=value, ...)")
        }
        return try ConfigValue(any: mapping, key: key, source: source)
    }
}
