import Foundation

/// A trainer's settings as a struct with documented fields and defaults. `fields` declares how each key of the
/// config file maps onto a property, so one declaration gives the defaults that `HyperParameters` layers files and
/// `--set` over (with its errors naming the key and the file), the typed values the trainer reads, and the listings
/// `rlbench list agents` and `rlbench list models` print. Settings shared by a family of trainers (a learning rate,
/// γ, the actor-critic options) are declared once: in a protocol the family's configs adopt (`ModelConfig`), or in a
/// settings struct each of them holds with its own defaults (the agents' `ActorCriticSettings`).
public protocol TypedConfig: Sendable {
    /// The built-in defaults.
    init()
    /// Every key, in listing order.
    static var fields: [ConfigField<Self>] { get }
    /// Checks across fields, after each has been read and checked on its own (a rollout's size is `n_envs` ×
    /// `n_steps`); throws `settings.fail(key, …)` naming the key to change.
    func validate(_ settings: HyperParameters) throws
}

extension TypedConfig {
    /// The keys with their default values: the starting layer of a `HyperParameters`.
    public static var defaults: [String: ConfigValue] {
        let base = Self()
        return Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0.value(base)) })
    }

    /// The typed config of layered settings; a value out of its field's range is an error naming the key and where
    /// it was set.
    public init(_ settings: HyperParameters) throws {
        self.init()
        for field in Self.fields { try field.read(&self, settings) }
        try validate(settings)
    }

    /// No checks across fields unless a config declares them.
    public func validate(_ settings: HyperParameters) throws {}

    /// Every key with its help line, in listing order.
    public static var help: [(key: String, help: String)] { fields.map { ($0.key, $0.help) } }

    /// The key of the field declared at `path`, for an error found after decoding (a check against the environment);
    /// `path` must be one a concrete config's own `fields` declare.
    public static func key(_ path: PartialKeyPath<Self>) -> String {
        guard let field = fields.first(where: { $0.path == path }) else {
            preconditionFailure("\(Self.self) declares no field at \(path)")
        }
        return field.key
    }

    /// The settings as `HyperParameters` (whose `yaml` is what a run writes to `config.yml`).
    public var settings: HyperParameters {
        var hp = HyperParameters(defaults: Self.defaults)
        for field in Self.fields { try? hp.set(field.key, field.value(self), source: "defaults") }
        return hp
    }
}

/// One key of a `TypedConfig`: its name, what it means, and how it reads and writes the property behind it.
public struct ConfigField<Config> {
    public let key: String
    public let help: String
    let path: PartialKeyPath<Config>
    let value: (Config) -> ConfigValue
    let read: (inout Config, HyperParameters) throws -> Void

    /// A field of a kind of its own: `value` gives the property as a config value (a default, a listing), `read`
    /// decodes the layered settings into it, throwing `settings.fail(key, …)` for a bad value.
    public init<Value>(_ key: String, _ path: WritableKeyPath<Config, Value>, help: String,
                       value: @escaping (Value) -> ConfigValue, read: @escaping (HyperParameters) throws -> Value) {
        self.key = key; self.help = help; self.path = path
        self.value = { value($0[keyPath: path]) }
        self.read = { $0[keyPath: path] = try read($1) }
    }

    /// This field as a field of an `Outer` config that holds this one at `outer` (a config that extends another's
    /// keys, as recurrent PPO extends PPO's).
    public func lifted<Outer>(into outer: WritableKeyPath<Outer, Config>) -> ConfigField<Outer> {
        let (value, read) = (self.value, self.read)
        guard let path = (outer as AnyKeyPath).appending(path: self.path) as? PartialKeyPath<Outer> else {
            preconditionFailure("\(key): key path \(self.path) does not extend \(outer)")
        }
        return ConfigField<Outer>(key: key, help: help, path: path, value: { value($0[keyPath: outer]) },
                                  read: { try read(&$0[keyPath: outer], $1) })
    }

    private init(key: String, help: String, path: PartialKeyPath<Config>, value: @escaping (Config) -> ConfigValue,
                 read: @escaping (inout Config, HyperParameters) throws -> Void) {
        self.key = key; self.help = help; self.path = path; self.value = value; self.read = read
    }

    /// A whole number from `min` to `max`. A count that scales a run's memory or time takes its `max` from `Limits`,
    /// so that a typo cannot ask for all the memory or a run that never ends.
    public static func int(_ key: String, _ path: WritableKeyPath<Config, Int>, min: Int = 0, max: Int = .max,
                           _ help: String) -> Self {
        Self(key, path, help: help, value: { .number(Double($0)) }, read: { try $0.int(key, min: min, max: max) })
    }

    /// A finite number in `range`.
    public static func double(_ key: String, _ path: WritableKeyPath<Config, Double>, in range: ClosedRange<Double>,
                              _ help: String) -> Self {
        Self(key, path, help: help, value: { .number($0) }, read: { try $0.double(key, in: range) })
    }

    /// A finite number above `lower` (a learning rate).
    public static func double(_ key: String, _ path: WritableKeyPath<Config, Double>, above lower: Double,
                              _ help: String) -> Self {
        Self(key, path, help: help, value: { .number($0) }, read: { try $0.double(key, above: lower) })
    }

    /// A finite number at least `lower` (a loss weight; 0 turns an option off).
    public static func double(_ key: String, _ path: WritableKeyPath<Config, Double>, atLeast lower: Double,
                              _ help: String) -> Self {
        Self(key, path, help: help, value: { .number($0) }, read: { try $0.double(key, atLeast: lower) })
    }

    /// Any finite number.
    public static func double(_ key: String, _ path: WritableKeyPath<Config, Double>, _ help: String) -> Self {
        Self(key, path, help: help, value: { .number($0) }, read: { try $0.double(key) })
    }

    /// A positive constant or rl-zoo's `lin_<x>` (decaying linearly from x to 0 over the run).
    public static func schedule(_ key: String, _ path: WritableKeyPath<Config, ZooSchedule>, _ help: String) -> Self {
        Self(key, path, help: help + " (lin_<x>: from x down to 0 over the run)", value: {
            switch $0 {
            case let .constant(x): .number(x)
            case let .linear(x): .string("lin_\(x)")
            }
        }, read: { try $0.schedule(key) })
    }

    public static func bool(_ key: String, _ path: WritableKeyPath<Config, Bool>, _ help: String) -> Self {
        Self(key, path, help: help, value: { .bool($0) }, read: { try $0.bool(key) })
    }

    /// One of `allowed`.
    public static func choice(_ key: String, _ path: WritableKeyPath<Config, String>, _ allowed: [String],
                              _ help: String) -> Self {
        Self(key, path, help: help + " (" + allowed.joined(separator: " | ") + ")", value: { .string($0) },
             read: { try $0.string(key, oneOf: allowed) })
    }

    /// A list of layer sizes, each from 1 to `max` (an empty list is allowed: no hidden layer).
    public static func sizes(_ key: String, _ path: WritableKeyPath<Config, [Int]>, max: Int = 1 << 16,
                             _ help: String) -> Self {
        Self(key, path, help: help, value: { .list($0.map { .number(Double($0)) }) }, read: { hp in
            guard case let .list(items)? = hp.values[key] else { throw hp.fail(key, "expected a list of sizes like [400]") }
            return try items.map {
                guard case let .number(x) = $0, x == x.rounded(), x >= 1, x <= Double(max) else {
                    throw hp.fail(key, "\($0) is not a size from 1 to \(max)")
                }
                return Int(x)
            }
        })
    }
}

extension HyperParameters {
    /// The error for a bad value of the field of `Config` at `path` found after decoding, naming its key and where
    /// it was set.
    public func fail<Config: TypedConfig>(_ path: PartialKeyPath<Config>, _ reason: String) -> ConfigError {
        fail(Config.key(path), reason)
    }
}
