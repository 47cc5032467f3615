import Foundation

/// A trainer's settings as a struct with documented fields and defaults. `fields` declares how each key of the
/// config file maps onto a property, so one declaration gives the defaults that `HyperParameters` layers files and
/// `--set` over (with its errors naming the key and the file), the typed values the trainer reads, and the listing
/// `rlbench list models` prints.
public protocol TypedConfig: Sendable {
    /// The built-in defaults.
    init()
    /// Every key, in listing order.
    static var fields: [ConfigField<Self>] { get }
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
    let value: (Config) -> ConfigValue
    let read: (inout Config, HyperParameters) throws -> Void

    /// A whole number from `min` to `max` (sizes are bounded, so that a typo cannot ask for all the memory).
    public static func int(_ key: String, _ path: WritableKeyPath<Config, Int>, min: Int = 0, max: Int, _ help: String) -> Self {
        Self(key: key, help: help, value: { .number(Double($0[keyPath: path])) },
             read: { config, hp in
                 let n = try hp.int(key, min: min)
                 guard n <= max else { throw hp.fail(key, "\(n) is above the limit of \(max)") }
                 config[keyPath: path] = n
             })
    }

    /// A finite number in `range`.
    public static func double(_ key: String, _ path: WritableKeyPath<Config, Double>, in range: ClosedRange<Double>,
                              _ help: String) -> Self {
        Self(key: key, help: help, value: { .number($0[keyPath: path]) },
             read: { $0[keyPath: path] = try $1.double(key, in: range) })
    }

    /// A finite number above `lower` (a learning rate).
    public static func double(_ key: String, _ path: WritableKeyPath<Config, Double>, above lower: Double,
                              _ help: String) -> Self {
        Self(key: key, help: help, value: { .number($0[keyPath: path]) },
             read: { $0[keyPath: path] = try $1.double(key, above: lower) })
    }

    public static func bool(_ key: String, _ path: WritableKeyPath<Config, Bool>, _ help: String) -> Self {
        Self(key: key, help: help, value: { .bool($0[keyPath: path]) }, read: { $0[keyPath: path] = try $1.bool(key) })
    }

    /// One of `allowed`.
    public static func choice(_ key: String, _ path: WritableKeyPath<Config, String>, _ allowed: [String],
                              _ help: String) -> Self {
        Self(key: key, help: help + " (" + allowed.joined(separator: " | ") + ")", value: { .string($0[keyPath: path]) },
             read: { $0[keyPath: path] = try $1.string(key, oneOf: allowed) })
    }

    /// A list of layer sizes, each from 1 to `max` (an empty list is allowed: no hidden layer).
    public static func sizes(_ key: String, _ path: WritableKeyPath<Config, [Int]>, max: Int = 1 << 16,
                             _ help: String) -> Self {
        Self(key: key, help: help, value: { .list($0[keyPath: path].map { .number(Double($0)) }) },
             read: { config, hp in
                 guard case let .list(items)? = hp.values[key] else { throw hp.fail(key, "expected a list of sizes like [400]") }
                 config[keyPath: path] = try items.map {
                     guard case let .number(x) = $0, x == x.rounded(), x >= 1, x <= Double(max) else {
                         throw hp.fail(key, "\($0) is not a size from 1 to \(max)")
                     }
                     return Int(x)
                 }
             })
    }
}
