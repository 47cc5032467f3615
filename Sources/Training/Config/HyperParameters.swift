import Foundation
import Support
import Yams

/// One hyperparameter value as read from a YAML config or `--set key=value`.
public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case bool(Bool)
    case string(String)
    case list([ConfigValue])
    case map([String: ConfigValue])

    public var description: String {
        switch self {
        case let .number(x): x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)"
        case let .bool(b): b ? "true" : "false"
        case let .string(s): s
        case let .list(items): "[" + items.map(\.description).joined(separator: ", ") + "]"
        case let .map(m): "{" + m.keys.sorted().map { "\($0): \(m[$0]!)" }.joined(separator: ", ") + "}"
        }
    }

    /// The value as YAML flow text (what `config.yml` stores).
    var yaml: String {
        switch self {
        case let .string(s): s.contains(where: { ":#{}[],'\"".contains($0) }) || s.isEmpty ? "'\(s)'" : s
        case let .list(items): "[" + items.map(\.yaml).joined(separator: ", ") + "]"
        case let .map(m): "{" + m.keys.sorted().map { "\($0): \(m[$0]!.yaml)" }.joined(separator: ", ") + "}"
        default: description
        }
    }

    /// The value as a JSON-compatible object (for checkpoint metadata).
    var jsonObject: Any {
        switch self {
        case let .number(x): x
        case let .bool(b): b
        case let .string(s): s
        case let .list(items): items.map(\.jsonObject)
        case let .map(m): m.mapValues(\.jsonObject)
        }
    }

    /// Converts a value decoded from YAML or JSON.
    init(any value: Any, key: String, source: String) throws {
        // JSON numbers arrive as NSNumber, which also casts to Bool for 0 and 1: tell them apart by the objCType.
        if let n = value as? NSNumber, type(of: value) != Bool.self {
            self = String(cString: n.objCType) == "c" ? .bool(n.boolValue) : .number(n.doubleValue)
            return
        }
        switch value {
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .number(Double(i))
        case let d as Double: self = .number(d)
        case let n as NSNumber: self = .number(n.doubleValue)
        case let s as String: self = ConfigValue.scalar(s)
        case let a as [Any]: self = .list(try a.map { try ConfigValue(any: $0, key: key, source: source) })
        case let m as [String: Any]:
            self = .map(try m.mapValues { try ConfigValue(any: $0, key: key, source: source) })
        default:
            throw ConfigError.badValue(key: key, source: source, reason: "unsupported value \(value)")
        }
    }

    /// Reads a scalar written as text (`1e5`, `100_000` and `true` as YAML would, anything else as a string).
    static func scalar(_ text: String) -> ConfigValue {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let d = WholeNumber.value(t) { return .number(d) }
        switch t.lowercased() {
        case "true", "yes": return .bool(true)
        case "false", "no": return .bool(false)
        default: return .string(t)
        }
    }
}

/// A problem with a configuration: each names the key and where it came from.
public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(source: String, reason: String)
    case malformed(source: String, reason: String)
    case unknownKey(key: String, source: String, known: [String])
    case badValue(key: String, source: String, reason: String)
    case badOverride(String)

    public var description: String {
        switch self {
        case let .unreadable(source, reason): "cannot read config \(source): \(reason)"
        case let .malformed(source, reason): "malformed config \(source): \(reason)"
        case let .unknownKey(key, source, known):
            "unknown key '\(key)' in \(source); known keys: \(known.sorted().joined(separator: ", "))"
        case let .badValue(key, source, reason): "bad value for '\(key)' in \(source): \(reason)"
        case let .badOverride(text): "--set expects key=value, got '\(text)'"
        }
    }
}

/// A run's hyperparameters under rl-baselines3-zoo's key names (`n_timesteps`, `learning_rate`, `batch_size`,
/// `gamma`, `n_envs`, `policy_kwargs: {net_arch: [64, 64]}`, `lin_0.001` schedules, ...).
///
/// Values are layered: the agent's built-in defaults, then the tuned file for the environment, then a user's
/// `--config FILE`, then `--set key=value` overrides. Only keys the agent declares are accepted.
public struct HyperParameters: Sendable, Equatable {
    /// Every key with its current value.
    public private(set) var values: [String: ConfigValue]
    /// Where each key's value came from (for error messages): "defaults", a file path, or "--set".
    public private(set) var sources: [String: String]

    /// Starts from an agent's defaults; their keys are the only keys accepted later.
    public init(defaults: [String: ConfigValue]) {
        values = defaults
        sources = defaults.mapValues { _ in "defaults" }
    }

    /// Applies the keys of a YAML mapping (a tuned file or a user's `--config`). A file in the zoo's own layout, keyed
    /// by environment id, contributes its section for `environment` (see `ZooFormats`).
    public mutating func apply(yaml text: String, source: String, environment: String? = nil) throws {
        guard let parsed = try Self.load(yaml: text, source: source) else { return }
        guard let file = parsed as? [String: Any] else {
            throw ConfigError.malformed(source: source, reason: "expected a mapping of key: value lines")
        }
        let mapping = try ZooFormats.section(of: file, for: environment, source: source)
        for key in mapping.keys.sorted() {
            try set(key, try ConfigValue(any: mapping[key]!, key: key, source: source), source: source)
        }
    }

    /// The values of a YAML text, or nil for an empty one. libyaml refuses nesting deeper than 1,000 levels; a text
    /// longer than `Limits.configBytes`, or whose aliases would expand to more than `Limits.configValues` values (a
    /// "billion laughs" of nested anchors, a few lines that expand to gigabytes), is refused before it is expanded.
    public static func load(yaml text: String, source: String) throws -> Any? {
        guard text.utf8.count <= Limits.configBytes else {
            throw ConfigError.malformed(source: source, reason: "\(text.utf8.count) bytes is more than the limit of \(Limits.configBytes)")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)  // an alias shares its anchor's node: nothing is expanded yet
        } catch {
            // Yams' message: the position and the problem, then the offending line and a caret; one line here.
            let lines = "\(error)".split(separator: "\n").prefix(2).map { $0.trimmingCharacters(in: .whitespaces) }
            throw ConfigError.malformed(source: source, reason: lines.joined(separator: " "))
        }
        guard let root else { return nil }
        var budget = Limits.configValues
        guard spend(&budget, on: root) else {
            throw ConfigError.malformed(source: source, reason: "it holds more than \(Limits.configValues) values once its "
                                        + "aliases (*name) are expanded, the limit")
        }
        return root.any
    }

    /// Counts `node`'s values, as expanded, against `budget`; false as soon as it runs out (so a bomb costs no more
    /// than `Limits.configValues` steps).
    private static func spend(_ budget: inout Int, on node: Node) -> Bool {
        budget -= 1
        guard budget >= 0 else { return false }
        switch node {
        case .scalar, .alias: return true
        case let .sequence(items): return items.allSatisfy { spend(&budget, on: $0) }
        case let .mapping(pairs): return pairs.allSatisfy { spend(&budget, on: $0.key) && spend(&budget, on: $0.value) }
        }
    }

    /// Applies the keys of a JSON object (the `hyperparameters` a checkpoint records).
    public mutating func apply(json text: String, source: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw ConfigError.malformed(source: source, reason: "expected a JSON object of settings")
        }
        for key in object.keys.sorted() {
            try set(key, try ConfigValue(any: object[key]!, key: key, source: source), source: source)
        }
    }

    /// Reads and applies a YAML file (its section for `environment`, if it has sections).
    public mutating func apply(file url: URL, environment: String? = nil) throws {
        let text: String
        do { text = try Files.text(url, maxBytes: Limits.configBytes) } catch {
            throw ConfigError.unreadable(source: url.path, reason: error.localizedDescription)
        }
        try apply(yaml: text, source: url.path, environment: environment)
    }

    /// Applies one `key=value` override (the value is read as YAML, so `[64, 64]` and `lin_3e-4` work).
    public mutating func apply(override text: String) throws {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { throw ConfigError.badOverride(text) }
        let key = String(text[..<eq]).trimmingCharacters(in: .whitespaces)
        let raw = String(text[text.index(after: eq)...])
        let value: ConfigValue
        let loaded: Any?? = try? Self.load(yaml: raw, source: "--set")
        if let outer = loaded, let parsed = outer {
            value = try ConfigValue(any: parsed, key: key, source: "--set")
        } else {
            value = ConfigValue.scalar(raw)
        }
        try set(key, value, source: "--set")
    }

    /// Sets a declared key. Nested `policy_kwargs` merge into the default mapping.
    public mutating func set(_ key: String, _ value: ConfigValue, source: String) throws {
        let value = try ZooFormats.normalized(value, key: key, source: source)
        // `policy_kwargs.net_arch=[...]` style overrides address one entry of a mapping.
        if let dot = key.firstIndex(of: "."), case let .map(inner)? = values[String(key[..<dot])] {
            var merged = inner
            merged[String(key[key.index(after: dot)...])] = value
            try set(String(key[..<dot]), .map(merged), source: source)
            return
        }
        if key == "policy" && values[key] == nil {
            try ZooFormats.checkPolicyClass(value, source: source)
            return
        }
        if key == Self.tensorboardLogKey {
            guard case let .string(folder) = value, !folder.isEmpty else {
                throw ConfigError.badValue(key: key, source: source, reason: "expected the folder of TensorBoard logs, got \(value)")
            }
            values[key] = .string(folder)
            sources[key] = source
            return
        }
        guard let current = values[key] else {
            throw ConfigError.unknownKey(key: key, source: source, known: Array(Set(values.keys).union([Self.tensorboardLogKey])))
        }
        switch (current, value) {
        case (.number, .number), (.bool, .bool), (.list, .list), (.map, .map), (.string, .string): break
        case (.number, .string), (.string, .number): break // schedules (`lin_0.001`) and numbers share keys
        default:
            throw ConfigError.badValue(key: key, source: source, reason: "expected a value like \(current), got \(value)")
        }
        // A mapping (policy_kwargs) merges into the current one, so `{net_arch: [256, 256]}` keeps the default
        // activation and initialization.
        if case let (.map(old), .map(new)) = (current, value) {
            values[key] = .map(old.merging(new) { _, n in n })
        } else {
            values[key] = value
        }
        sources[key] = source
    }

    /// The key every trainer accepts beside its own settings: the folder of TensorBoard logs (SB3's and the zoo's
    /// `tensorboard_log`; `run --tensorboard DIR` sets it). Absent unless set, so a run without it keeps its bytes.
    public static let tensorboardLogKey = "tensorboard_log"

    /// The folder of TensorBoard logs, if the run keeps them (see `RunFolder.tensorboardDirectory(under:)`).
    public var tensorboardLog: String? {
        if case let .string(folder)? = values[Self.tensorboardLogKey] { return folder }
        return nil
    }

    // MARK: Typed access (errors name the key and its source)

    /// The error for a bad value of `key`, naming the key and where it was set.
    package func fail(_ key: String, _ reason: String) -> ConfigError {
        .badValue(key: key, source: sources[key] ?? "defaults", reason: reason)
    }

    public func double(_ key: String) throws -> Double {
        guard case let .number(x)? = values[key], x.isFinite else { throw fail(key, "expected a finite number, got \(values[key]?.description ?? "nothing")") }
        return x
    }

    /// A number in `range` (inclusive).
    public func double(_ key: String, in range: ClosedRange<Double>) throws -> Double {
        let x = try double(key)
        guard range.contains(x) else { throw fail(key, "\(x) is outside \(range.lowerBound)...\(range.upperBound)") }
        return x
    }

    /// A number above `lower` (a learning rate, a clip range, an epsilon).
    public func double(_ key: String, above lower: Double) throws -> Double {
        let x = try double(key)
        guard x > lower else { throw fail(key, "must be > \(lower.formatted()), got \(x)") }
        return x
    }

    /// A number at least `lower` (a loss coefficient; 0 turns an option off).
    public func double(_ key: String, atLeast lower: Double) throws -> Double {
        let x = try double(key)
        guard x >= lower else { throw fail(key, "must be ≥ \(lower.formatted()), got \(x)") }
        return x
    }

    /// A whole number from `min` to `max` (`1e5`, `100_000` and `2.0` are whole numbers: `WholeNumber`).
    public func int(_ key: String, min: Int = 0, max: Int = Int.max) throws -> Int {
        let x = try double(key)
        do { return try WholeNumber.whole(x, in: min...max) } catch { throw fail(key, "\(error)") }
    }

    public func bool(_ key: String) throws -> Bool {
        guard case let .bool(b)? = values[key] else { throw fail(key, "expected true or false") }
        return b
    }

    public func string(_ key: String, oneOf allowed: [String]? = nil) throws -> String {
        guard case let .string(s)? = values[key] else { throw fail(key, "expected text") }
        if let allowed, !allowed.contains(s) { throw fail(key, "'\(s)' is not one of \(allowed.joined(separator: ", "))") }
        return s
    }

    /// A positive constant or rl-zoo `lin_<x>` value (x > 0): a learning rate or a clip range, whose value at
    /// `progressRemaining` (1 at the start, 0 at the end) the schedule gives.
    public func schedule(_ key: String) throws -> ZooSchedule {
        switch values[key] {
        case let .number(x)? where x.isFinite:
            guard x > 0 else { throw fail(key, "must be > 0, got \(x)") }
            return .constant(x)
        case let .string(s)? where s.hasPrefix("lin_"):
            guard let x = Double(s.dropFirst(4)), x.isFinite else { throw fail(key, "'\(s)' is not lin_<number>") }
            guard x > 0 else { throw fail(key, "must start above 0, got \(s)") }
            return .linear(x)
        default: throw fail(key, "expected a number or lin_<number>")
        }
    }

    /// The config as YAML (sorted keys): what a run writes to `config.yml`, loadable with `--config`.
    public var yaml: String {
        values.keys.sorted().map { "\($0): \(values[$0]!.yaml)" }.joined(separator: "\n") + "\n"
    }

    /// The config as a JSON object string (for checkpoint metadata).
    public var json: String {
        let object = values.mapValues(\.jsonObject)
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// A hyperparameter that may decay over training, as rl-baselines3-zoo writes it.
public enum ZooSchedule: Sendable, Equatable {
    case constant(Double)
    /// `lin_x`: x · progressRemaining, from x at the start to 0 at the end.
    case linear(Double)

    /// The value when `progressRemaining` (1 → 0) of training is left.
    public func value(progressRemaining: Double) -> Double {
        switch self {
        case let .constant(x): x
        case let .linear(x): x * max(0, min(1, progressRemaining))
        }
    }

    /// The starting value.
    public var initial: Double { value(progressRemaining: 1) }
}
