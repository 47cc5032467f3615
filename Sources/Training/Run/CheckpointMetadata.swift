import Foundation
import RLCore
import SeededRandom

/// The metadata of an rlbench checkpoint: the string map in its safetensors header, with the one definition of every
/// key (its name, how its value is written and read, what a valid value is) and the one validation of the whole map.
///
/// Every writer sets typed values (`meta[.step] = 1000`) and every reader gets them back (`meta[.step]`); the strings
/// are exactly those rlbench has always written, so old checkpoints load and new ones are byte-identical. A checkpoint
/// read from a file goes through `validated(as:source:)` before anything acts on it: one error names every bad key.
///
/// Adding a key: declare it in an extension of `Key` below (name, what a valid value is, encode, decode) and list it
/// in its kind's `requiredKeys` or `optionalKeys`.
public struct CheckpointMetadata: Sendable, Equatable {
    /// The header's strings, exactly as written or read.
    public private(set) var values: [String: String]

    public init(_ values: [String: String] = [:]) { self.values = values }

    /// What a data run's checkpoint (a classifier's or a generative model's) starts with: its kind, what trained it,
    /// and where in its epochs it stands.
    public init(dataRun kind: Kind, model: String, data: String, seed: UInt64, epoch: Int, batch: Int, step: Int) {
        self.init()
        self[.format] = kind.format
        self[.model] = model
        self[.data] = data
        self[.seed] = seed
        self[.epoch] = epoch
        self[.batch] = batch
        self[.step] = step
    }

    /// The metadata of the safetensors file at `url` (the whole file is validated, not yet the metadata).
    public init(contentsOf url: URL) throws { self.init(try SafeTensors.header(of: url).metadata) }

    /// The typed value of `key`; nil when it is absent or does not read as one.
    public subscript<Value>(key: Key<Value>) -> Value? {
        get { values[key.name].flatMap(key.decode) }
        set { values[key.name] = newValue.map(key.encode) }
    }

    /// The value of `key`, or an error naming the key and what is wrong with it (for restoring from metadata that was
    /// not validated as a whole, such as a live policy snapshot).
    public func value<Value>(_ key: Key<Value>) throws -> Value {
        if let value = self[key] { return value }
        throw CheckpointMetadataError(source: nil, problems: [key.erased.problem(in: values) ?? "\(key.name) is unreadable"])
    }

    /// The kind of checkpoint its `format` names, if it is one this rlbench reads.
    public var kind: Kind? { Kind.allCases.first { $0.format == values[Key.format.name] } }

    /// Every problem of the metadata as a checkpoint of `expected` (nil: the kind its format names), in key order:
    /// a missing or unknown format, a checkpoint of another kind, and each key that is missing or unreadable.
    public func problems(as expected: Kind? = nil) -> [String] {
        let format = values[Key.format.name]
        var problems: [String] = []
        if format == nil {
            problems.append("format is missing (not an rlbench checkpoint)")
        } else if kind == nil {
            problems.append("format \(Self.quoted(format!)) is not one this rlbench reads ("
                            + Kind.allCases.map(\.format).joined(separator: ", ") + ")")
        }
        if let kind, let expected, kind != expected {
            return ["format \(Self.quoted(format!)) marks \(kind.article) checkpoint, not \(expected.article) checkpoint"]
        }
        // A checkpoint of unknown kind still has each present key checked that every kind shares.
        let keys = (expected ?? kind).map { ($0.requiredKeys, $0.optionalKeys) } ?? ([], Kind.sharedKeys)
        for key in keys.0 { if let p = key.problem(in: values, required: true) { problems.append(p) } }
        for key in keys.1 { if let p = key.problem(in: values, required: false) { problems.append(p) } }
        return problems
    }

    /// The metadata itself when `problems(as:)` finds none; otherwise an error naming `source` and every problem.
    @discardableResult
    public func validated(as expected: Kind? = nil, source: String) throws -> CheckpointMetadata {
        let problems = problems(as: expected)
        guard problems.isEmpty else { throw CheckpointMetadataError(source: source, problems: problems) }
        return self
    }

    /// A value as error messages quote it: in quotes, cut after 60 characters.
    static func quoted(_ value: String) -> String {
        "\"" + (value.count > 60 ? String(value.prefix(60)) + "…" : value) + "\""
    }
}

/// Bad checkpoint metadata: where it came from and every problem found.
public struct CheckpointMetadataError: Error, CustomStringConvertible, Equatable {
    public var source: String?
    public var problems: [String]

    public var description: String {
        (source.map { "\($0): " } ?? "") + "bad checkpoint metadata: " + problems.joined(separator: "; ")
    }
}

// MARK: Kinds

extension CheckpointMetadata {
    /// What a checkpoint holds, told by its `format`.
    public enum Kind: String, CaseIterable, Sendable {
        case agent, classifier, generative

        /// The `format` value of this kind's checkpoints.
        public var format: String {
            switch self {
            case .agent: "rlbench-agent-1"
            case .classifier: "rlbench-classifier"
            case .generative: "rlbench-generative"
            }
        }

        /// "an agent", "a classifier", "a generative-model", for messages.
        public var article: String {
            switch self {
            case .agent: "an agent"
            case .classifier: "a classifier"
            case .generative: "a generative-model"
            }
        }

        /// The keys every checkpoint of the kind has (besides `format`).
        var requiredKeys: [AnyKey] {
            switch self {
            case .agent:
                // policy, action (and observation) are what the README's Python loader acts with.
                [.init(.agent), .init(.env), .init(.seed), .init(.step), .init(.rngState), .init(.policy), .init(.action)]
            case .classifier:
                [.init(.model), .init(.data), .init(.seed), .init(.epoch), .init(.batch), .init(.step), .init(.rngState),
                 .init(.dropoutStates), .init(.epochSums), .init(.earlyStopping), .init(.hyperparameters), .init(.layers),
                 .init(.sampleShape), .init(.classes)]
            case .generative:
                [.init(.model), .init(.data), .init(.seed), .init(.epoch), .init(.batch), .init(.step), .init(.rngState),
                 .init(.hyperparameters), .init(.generator), .init(.latentSize), .init(.sampleShape), .init(.classes),
                 .init(.conditional)]
            }
        }

        /// The keys a checkpoint of the kind may have, checked when present.
        var optionalKeys: [AnyKey] {
            switch self {
            case .agent: [.init(.envOptions), .init(.hyperparameters), .init(.observation), .init(.qTable)]
            case .classifier: []
            case .generative: [.init(.lossSums)]
            }
        }

        /// The keys every kind reads the same way: checked, when present, in a checkpoint whose format is unknown.
        static let sharedKeys: [AnyKey] = [.init(.seed), .init(.step), .init(.rngState), .init(.hyperparameters)]
    }
}

// MARK: Keys

extension CheckpointMetadata {
    /// One metadata key: its name, what a valid value is, and how a value is written and read. `decode` returns nil
    /// for anything `encode` could not have written.
    public struct Key<Value>: Sendable {
        public let name: String
        /// What a valid value is, for error messages ("a whole number ≥ 0").
        public let expected: String
        let encode: @Sendable (Value) -> String
        let decode: @Sendable (String) -> Value?

        public init(_ name: String, expected: String, encode: @escaping @Sendable (Value) -> String,
                    decode: @escaping @Sendable (String) -> Value?) {
            self.name = name; self.expected = expected; self.encode = encode; self.decode = decode
        }

        var erased: AnyKey { AnyKey(self) }
    }

    /// A key without its value type, for validation.
    struct AnyKey: Sendable {
        let name: String
        let expected: String
        let isValid: @Sendable (String) -> Bool

        init<Value>(_ key: Key<Value>) {
            name = key.name; expected = key.expected
            let decode = key.decode
            isValid = { decode($0) != nil }
        }

        /// What is wrong with this key in `values`, if anything.
        func problem(in values: [String: String], required: Bool = true) -> String? {
            guard let value = values[name] else { return required ? "\(name) is missing" : nil }
            return isValid(value) ? nil : "\(name) \(CheckpointMetadata.quoted(value)) is not \(expected)"
        }
    }
}

extension CheckpointMetadata.Key where Value == String {
    /// A key whose value is kept as text, valid when `isValid` says so.
    static func text(_ name: String, _ expected: String, _ isValid: @escaping @Sendable (String) -> Bool) -> Self {
        .init(name, expected: expected, encode: { $0 }, decode: { isValid($0) ? $0 : nil })
    }

    static func name(_ name: String) -> Self { text(name, "a name", { !$0.isEmpty }) }

    /// The kind of checkpoint (`CheckpointMetadata.Kind.format`).
    public static var format: Self { name("format") }
    /// An agent's name (`ppo`).
    public static var agent: Self { name("agent") }
    /// An environment id (`CartPole-v1`).
    public static var env: Self { name("env") }
    /// A classifier's or generative model's name.
    public static var model: Self { name("model") }
    /// A data set's name.
    public static var data: Self { name("data") }
    /// The run's settings as a JSON object.
    public static var hyperparameters: Self { text("hyperparameters", "a JSON object", { JSONCheck.object($0) != nil }) }
    /// The acting network for Python: a JSON list of layers (`{"type": "linear", "weight": …}`), or DQN's dueling
    /// head `{"trunk": [layers], "value": prefix, "advantage": prefix}`.
    public static var policy: Self {
        text("policy", "a JSON list of layers with a \"type\" (or a dueling head)") { text in
            if JSONCheck.layers(text) != nil { return true }
            guard let head = JSONCheck.object(text), let trunk = head["trunk"] else { return false }
            return JSONCheck.isLayerList(trunk) && head["value"] is String && head["advantage"] is String
        }
    }
    /// How Python picks the action from the policy's output.
    public static var action: Self { text("action", "argmax or gaussian_mean", { ["argmax", "gaussian_mean"].contains($0) }) }
    /// How Python prepares an observation: `{"type": "index"}`, or `{"type": "normalize", "mean": tensor, "var":
    /// tensor, "clip": number, "epsilon": number}`.
    public static var observation: Self {
        text("observation", "a JSON object of type index or normalize (with mean, var, clip and epsilon)") { text in
            guard let object = JSONCheck.object(text) else { return false }
            switch object["type"] as? String {
            case "index": return true
            case "normalize":
                return object["mean"] is String && object["var"] is String && object["clip"] is NSNumber
                    && object["epsilon"] is NSNumber
            default: return false
            }
        }
    }
    /// A classifier's layers (a JSON list).
    public static var layers: Self { text("layers", "a JSON list of layers", { JSONCheck.array($0) != nil }) }
    /// A generative model's generator layers (a JSON list of layers with a "type").
    public static var generator: Self {
        text("generator", "a JSON list of layers with a \"type\"", { JSONCheck.layers($0) != nil })
    }
}

extension CheckpointMetadata.Key where Value == Int {
    static func count(_ name: String, atLeast minimum: Int) -> Self {
        .init(name, expected: "a whole number ≥ \(minimum)", encode: { String($0) },
              decode: { Int($0).flatMap { $0 >= minimum ? $0 : nil } })
    }

    /// Steps done: environment steps for agents, optimization steps for data runs.
    public static var step: Self { count("step", atLeast: 0) }
    /// Epochs done.
    public static var epoch: Self { count("epoch", atLeast: 0) }
    /// Batches of the current epoch done.
    public static var batch: Self { count("batch", atLeast: 0) }
    /// The number of labels of the data.
    public static var classes: Self { count("classes", atLeast: 1) }
    /// The size of a generative model's noise vector.
    public static var latentSize: Self { count("latent_size", atLeast: 1) }
}

extension CheckpointMetadata.Key where Value == UInt64 {
    /// The run's seed.
    public static var seed: Self {
        .init("seed", expected: "a whole number from 0 to \(UInt64.max)", encode: { String($0) }, decode: { UInt64($0) })
    }
}

extension CheckpointMetadata.Key where Value == Bool {
    /// Whether a generative model is conditioned on labels.
    public static var conditional: Self {
        .init("conditional", expected: "true or false", encode: { $0 ? "true" : "false" }, decode: { Bool($0) })
    }
}

extension CheckpointMetadata.Key where Value == SeededGenerator {
    /// The run's generator: its four state words.
    public static var rngState: Self {
        .init("rng_state", expected: "four whole numbers, not all 0, separated by commas", encode: GeneratorText.encode,
              decode: GeneratorText.decode)
    }
}

extension CheckpointMetadata.Key where Value == [SeededGenerator] {
    /// A classifier's dropout generators, separated by semicolons (empty: no dropout).
    public static var dropoutStates: Self {
        .init("dropout_states", expected: "generator states (four numbers each) separated by semicolons",
              encode: { $0.map(GeneratorText.encode).joined(separator: ";") },
              decode: { text in
                  let states = text.split(separator: ";", omittingEmptySubsequences: false).map { GeneratorText.decode(String($0)) }
                  return text.isEmpty ? [] : states.contains { $0 == nil } ? nil : states.map { $0! }
              })
    }
}

extension CheckpointMetadata.Key where Value == [String: String] {
    /// The environment's options, as a JSON object of strings.
    public static var envOptions: Self {
        .init("env_options", expected: "a JSON object of strings", encode: { jsonString($0) },
              decode: { JSONCheck.object($0).flatMap { $0 as? [String: String] } })
    }
}

extension CheckpointMetadata.Key where Value == [String: Double] {
    /// The sums of the current epoch's losses, each as the bits of its Double (so a resumed mean is exact).
    public static var lossSums: Self {
        .init("loss_sums", expected: "a JSON object of Double bit patterns",
              encode: { jsonString($0.mapValues { String($0.bitPattern) }) },
              decode: { text in
                  guard let object = JSONCheck.object(text) as? [String: String] else { return nil }
                  let sums = object.compactMapValues { UInt64($0).map(Double.init(bitPattern:)) }
                  return sums.count == object.count ? sums : nil
              })
    }
}

extension CheckpointMetadata.Key where Value == [Int] {
    /// The shape of one data sample, as a JSON list of sizes ≥ 1.
    public static var sampleShape: Self {
        .init("sample_shape", expected: "a JSON list of whole numbers ≥ 1", encode: { jsonString($0) },
              decode: { text in
                  guard let list = JSONCheck.array(text) else { return nil }
                  let sizes = list.compactMap { ($0 as? NSNumber).flatMap { Int(exactly: $0.doubleValue) } }
                  return sizes.count == list.count && !sizes.isEmpty && sizes.allSatisfy({ $0 >= 1 }) ? sizes : nil
              })
    }
}

extension CheckpointMetadata.Key where Value == [Double] {
    /// A tabular agent's exact Q-table (the tensor holds it rounded to Float), separated by commas.
    public static var qTable: Self {
        .init("q_table_f64", expected: "numbers separated by commas", encode: { $0.map { "\($0)" }.joined(separator: ",") },
              decode: { text in
                  let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
                  return values.contains { $0 == nil } ? nil : values.map { $0! }
              })
    }
}

/// A classifier's running sums of the current epoch.
public struct EpochSums: Sendable, Equatable {
    public var lossSum: Double, correct: Int, seen: Int
    public init(lossSum: Double, correct: Int, seen: Int) { self.lossSum = lossSum; self.correct = correct; self.seen = seen }
}

extension CheckpointMetadata.Key where Value == EpochSums {
    /// `lossBits,correct,seen`.
    public static var epochSums: Self {
        .init("epoch_sums", expected: "a Double bit pattern and two whole numbers ≥ 0, separated by commas",
              encode: { "\($0.lossSum.bitPattern),\($0.correct),\($0.seen)" },
              decode: { text in
                  let f = text.split(separator: ",", omittingEmptySubsequences: false)
                  guard f.count == 3, let bits = UInt64(f[0]), let correct = Int(f[1]), let seen = Int(f[2]),
                        correct >= 0, seen >= 0 else { return nil }
                  return EpochSums(lossSum: Double(bitPattern: bits), correct: correct, seen: seen)
              })
    }
}

/// A classifier's early-stopping state.
public struct EarlyStopping: Sendable, Equatable {
    public var bestValidationLoss: Double, staleEpochs: Int, stopped: Bool
    public init(bestValidationLoss: Double, staleEpochs: Int, stopped: Bool) {
        self.bestValidationLoss = bestValidationLoss; self.staleEpochs = staleEpochs; self.stopped = stopped
    }
}

extension CheckpointMetadata.Key where Value == EarlyStopping {
    /// `bestLossBits,staleEpochs,stopped`.
    public static var earlyStopping: Self {
        .init("early_stopping", expected: "a Double bit pattern, a whole number ≥ 0 and true or false, separated by commas",
              encode: { "\($0.bestValidationLoss.bitPattern),\($0.staleEpochs),\($0.stopped)" },
              decode: { text in
                  let f = text.split(separator: ",", omittingEmptySubsequences: false)
                  guard f.count == 3, let bits = UInt64(f[0]), let stale = Int(f[1]), stale >= 0,
                        let stopped = Bool(String(f[2])) else { return nil }
                  return EarlyStopping(bestValidationLoss: Double(bitPattern: bits), staleEpochs: stale, stopped: stopped)
              })
    }
}

/// A generator's state as text: its four words, separated by commas.
enum GeneratorText {
    static func encode(_ rng: SeededGenerator) -> String { rng.stateWords.map(String.init).joined(separator: ",") }

    /// The generator, unless the text is not four words or they are all 0 (a state xoshiro never leaves).
    static func decode(_ text: String) -> SeededGenerator? {
        let words = text.split(separator: ",", omittingEmptySubsequences: false).map { UInt64($0) }
        guard !words.contains(where: { $0 == nil }), words.contains(where: { $0 != 0 }) else { return nil }
        return SeededGenerator(stateWords: words.map { $0! })
    }
}

/// The JSON shapes metadata values take.
enum JSONCheck {
    static func parse(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) }
    static func object(_ text: String) -> [String: Any]? { parse(text) as? [String: Any] }
    static func array(_ text: String) -> [Any]? { parse(text) as? [Any] }
    /// A list of objects, each with a "type" string.
    static func layers(_ text: String) -> [Any]? { parse(text).flatMap { isLayerList($0) ? $0 as? [Any] : nil } }
    static func isLayerList(_ value: Any) -> Bool {
        guard let list = value as? [Any] else { return false }
        return list.allSatisfy { (($0 as? [String: Any])?["type"]) is String }
    }
}
