import Foundation
import SeededRandom
import Support
import Training

/// A sweep's spec (`rlbench sweep SPEC.yml`): what to vary, read from YAML.
///
/// ```yaml
/// agents: [ppo, a2c]              # or models: [vae]; one name or a list
/// environments: [CartPole-v1]     # or datasets: [digits]
/// seeds: 5                        # seeds 0-4, or a list: [0, 3, 7]
/// steps: 50000                    # optional: --steps (epochs: for models), eval_episodes: --eval-episodes
/// hyperparameters:
///   n_epochs: [5, 10]                      # a list: every value (a grid)
///   learning_rate: loguniform(1e-4, 1e-2)  # distributions: drawn `samples` times
///   ent_coef: choice([0.0, 0.01])          # also uniform(a, b) and int(a, b) (both ends included)
///   gamma: 0.98                            # one value: the same for every run
/// samples: 8                      # random search: 8 draws of the distributions (crossed with the grid)
/// search_seed: 0                  # the draws' seed (default 0)
/// target: 475                     # optional: the score a run should reach (the report says whether it does)
/// ```
///
/// A spec whose runs are not one product (a learning table: each agent on its own environments, with its own budget)
/// lists `groups:`, each a mapping of the keys above; the keys outside `groups` are every group's defaults (a group's
/// `hyperparameters` and `env_options` add to the defaults' key by key).
///
/// The runs are every group's, in order; within a group every agent × environment × setting × seed, in that order.
/// Each setting is one point of the grid crossed with one draw; a drawn number is rounded to 4 significant digits, so
/// the run's folder name and its `--set` carry the same text.
public struct SweepSpec: Sendable, Equatable {
    /// A hyperparameter's values: one, a list (grid), or a distribution (random search).
    public enum Domain: Sendable, Equatable {
        case fixed(String)
        case grid([String])
        case uniform(Double, Double)
        case logUniform(Double, Double)
        case choice([String])
        case int(Int, Int)

        var isDrawn: Bool {
            switch self {
            case .fixed, .grid: false
            case .uniform, .logUniform, .choice, .int: true
            }
        }
    }

    /// The spec's groups: one for a spec without `groups:`.
    public var groups: [Group]

    /// One product of runs: agents × environments × settings × seeds.
    public struct Group: Sendable, Equatable {
        /// The agents or models (the positional argument of `rlbench run`).
        public var subjects: [String]
        /// The environments (`--env`) or data sets (`--data`).
        public var targets: [String]
        /// `--env` or `--data`.
        public var targetFlag: String
        public var seeds: [UInt64]
        /// Flags every run gets (`--steps N`, `--epochs N`, `--eval-episodes N`, `--env-option k=v`).
        public var commonArguments: [String]
        /// `--eval-episodes` when the spec sets it (0: runs write no eval.json, so a finished run is told by its final
        /// checkpoint).
        public var evaluationEpisodes: Int?
        /// The hyperparameters by key, in the spec's order.
        public var hyperparameters: [(key: String, domain: Domain)]
        /// Draws of the distributions (random search); nil without distributions.
        public var samples: Int?
        public var searchSeed: UInt64
        /// The score each run should reach (`target:`), shown by the report.
        public var targetScore: Double?
        /// Successive halving over budgets (`halving:`), nil to run every setting to its end.
        public var halving: Halving?

        public static func == (a: Group, b: Group) -> Bool {
            a.subjects == b.subjects && a.targets == b.targets && a.targetFlag == b.targetFlag && a.seeds == b.seeds
                && a.commonArguments == b.commonArguments && a.samples == b.samples && a.searchSeed == b.searchSeed
                && a.targetScore == b.targetScore && a.halving == b.halving
                && a.hyperparameters.map(\.key) == b.hyperparameters.map(\.key)
                && a.hyperparameters.map(\.domain) == b.hyperparameters.map(\.domain)
        }
    }

    /// Successive halving (`halving: {steps: [2e4, 5e4, 1e5], keep: 0.5}`): every setting's runs train to the first
    /// budget; within each agent and environment the best `keep` of the settings by IQM over seeds (at least one)
    /// continue, resumed, to the next budget, and so on.
    public struct Halving: Sendable, Equatable {
        /// `--steps` (agents) or `--epochs` (models).
        public var flag: String
        /// The budgets of the rungs, increasing.
        public var budgets: [Int]
        /// The fraction of settings each rung keeps.
        public var keep: Double
    }

    static let groupKeys = ["agents", "models", "environments", "datasets", "seeds", "steps", "epochs", "eval_episodes",
                            "env_options", "hyperparameters", "samples", "search_seed", "target", "halving"]
    static let knownKeys = groupKeys + ["groups"]
    /// The most runs one spec may make.
    public static let maxRuns = 100_000

    /// Reads the spec file at `url`.
    public init(contentsOf url: URL) throws {
        let text: String
        do { text = try Files.text(url, maxBytes: Limits.configBytes) } catch {
            throw SweepSpecError(source: url.path, key: nil, problem: error.localizedDescription)
        }
        try self.init(yaml: text, source: url.path)
    }

    /// Reads a spec from YAML text; errors name `source` and the key.
    public init(yaml text: String, source: String) throws {
        func problem(_ key: String?, _ message: String) -> SweepSpecError { SweepSpecError(source: source, key: key, problem: message) }
        let parsed: Any?
        do { parsed = try HyperParameters.load(yaml: text, source: source) } catch {
            throw problem(nil, "\(error)")
        }
        guard let spec = parsed as? [String: Any] else { throw problem(nil, "expected a mapping of keys (agents, environments, seeds, …)") }
        for key in spec.keys.sorted() where !Self.knownKeys.contains(key) {
            throw problem(key, "unknown key; known keys: \(Self.knownKeys.joined(separator: ", "))")
        }
        guard let listed = spec["groups"] else {
            groups = [try Group(spec, source: source, keyPrefix: "")]
            try checkSize(source: source)
            return
        }
        guard let list = listed as? [Any], !list.isEmpty else { throw problem("groups", "expected a list of mappings (agents, environments, …)") }
        let defaults = spec.filter { $0.key != "groups" }
        groups = try list.enumerated().map { index, item in
            let prefix = "groups[\(index)]."
            guard let group = item as? [String: Any] else { throw problem("groups[\(index)]", "expected a mapping (agents, environments, …)") }
            for key in group.keys.sorted() where !Self.groupKeys.contains(key) {
                throw problem(prefix + key, "unknown key; a group's keys: \(Self.groupKeys.joined(separator: ", "))")
            }
            var merged = defaults.merging(group) { _, own in own }
            // A group's hyperparameters and environment options add to the defaults' rather than replace them.
            for key in ["hyperparameters", "env_options"] {
                if let base = defaults[key] as? [String: Any], let own = group[key] as? [String: Any] {
                    merged[key] = base.merging(own) { _, own in own }
                }
            }
            // A group names its own agents and environments: the defaults' kind of each gives way to the group's.
            for (one, other) in [("agents", "models"), ("models", "agents"), ("environments", "datasets"), ("datasets", "environments")]
            where group[one] != nil && group[other] == nil {
                merged[other] = nil
            }
            return try Group(merged, source: source, keyPrefix: prefix)
        }
        try checkSize(source: source)
    }

    /// The whole spec's runs within `maxRuns`.
    func checkSize(source: String) throws {
        let total = groups.reduce(0) { $0.addingReportingOverflow($1.runCount).partialValue }
        guard total > 0, total <= Self.maxRuns else {
            throw SweepSpecError(source: source, key: nil, problem: "it makes \(total) runs, more than the limit of \(Self.maxRuns)")
        }
    }
}

extension SweepSpec.Group {
    /// Reads one group from its mapping; errors name `source` and the key (after `keyPrefix`, `groups[2].` in a group).
    init(_ spec: [String: Any], source: String, keyPrefix: String) throws {
        func problem(_ key: String?, _ message: String) -> SweepSpecError {
            SweepSpecError(source: source, key: key.map { keyPrefix + $0 } ?? (keyPrefix.isEmpty ? nil : String(keyPrefix.dropLast())), problem: message)
        }

        func names(_ key: String) throws -> [String]? {
            guard let value = spec[key] else { return nil }
            let list = (value as? [Any]) ?? [value]
            let names = try list.map { item -> String in
                guard let name = SweepSpec.scalarText(item), !name.isEmpty else { throw problem(key, "expected a name or a list of names") }
                return name
            }
            guard !names.isEmpty else { throw problem(key, "the list is empty") }
            guard Set(names).count == names.count else { throw problem(key, "a name is listed twice") }
            return names
        }
        func count(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
            guard let value = spec[key] else { return nil }
            guard let text = SweepSpec.scalarText(value) else { throw problem(key, "expected a whole number") }
            do { return try WholeNumber.parse(text, in: range) } catch { throw problem(key, "\(error)") }
        }

        switch (try names("agents"), try names("models")) {
        case let (agents?, nil): subjects = agents
        case let (nil, models?): subjects = models
        case (nil, nil): throw problem("agents", "missing: name the agents (or models) to run")
        case (.some, .some): throw problem("models", "give agents or models, not both (list them all under one key)")
        }
        switch (try names("environments"), try names("datasets")) {
        case let (environments?, nil): targets = environments; targetFlag = "--env"
        case let (nil, datasets?): targets = datasets; targetFlag = "--data"
        case (nil, nil): throw problem("environments", "missing: name the environments (or datasets) to run on")
        case (.some, .some): throw problem("datasets", "give environments or datasets, not both")
        }

        switch spec["seeds"] {
        case nil: seeds = [0]
        case let list as [Any]:
            seeds = try list.map {
                guard let text = SweepSpec.scalarText($0), let seed = UInt64(text) else {
                    throw problem("seeds", "expected a count (seeds: 5 is 0-4) or a list of whole numbers, got \(SweepSpec.scalarText($0) ?? "a nested value")")
                }
                return seed
            }
            guard !seeds.isEmpty else { throw problem("seeds", "the list is empty") }
            guard Set(seeds).count == seeds.count else { throw problem("seeds", "a seed is listed twice") }
        default:
            seeds = (0..<UInt64(try count("seeds", in: 1...10_000)!)).map { $0 }
        }

        commonArguments = []
        if let steps = try count("steps", in: 1...Limits.timesteps) { commonArguments += ["--steps", String(steps)] }
        if let epochs = try count("epochs", in: 1...Limits.dataEpochs) { commonArguments += ["--epochs", String(epochs)] }
        evaluationEpisodes = try count("eval_episodes", in: 0...Limits.evaluationEpisodes)
        if let evaluationEpisodes { commonArguments += ["--eval-episodes", String(evaluationEpisodes)] }
        if let options = spec["env_options"] {
            guard let options = options as? [String: Any] else { throw problem("env_options", "expected a mapping of option: value") }
            for key in options.keys.sorted() {
                guard let value = SweepSpec.scalarText(options[key]!) else { throw problem("env_options.\(key)", "expected one value") }
                commonArguments += ["--env-option", "\(key)=\(value)"]
            }
        }

        hyperparameters = []
        if let table = spec["hyperparameters"] {
            guard let table = table as? [String: Any] else { throw problem("hyperparameters", "expected a mapping of key: values") }
            // In a flow mapping YAML cuts `{lr: uniform(0.1, 0.2)}` at the comma: name the key whose value was cut.
            let cut = table.keys.sorted().first { SweepSpec.scalarText(table[$0]!).map { $0.contains("(") && !$0.contains(")") } ?? false }
            if let cut {
                throw problem("hyperparameters.\(cut)", "'\(SweepSpec.scalarText(table[cut]!)!)' is cut at a comma: in a flow "
                              + "mapping {…} or list […], quote a distribution: 'uniform(a, b)'")
            }
            // The YAML mapping's order is lost on loading: keys sort, so names and draws do not depend on it.
            for key in table.keys.sorted() {
                hyperparameters.append((key, try SweepSpec.domain(of: table[key]!, key: "hyperparameters.\(key)", source: source)))
            }
        }
        let drawn = hyperparameters.filter { $0.domain.isDrawn }
        samples = try count("samples", in: 1...SweepSpec.maxRuns)
        if samples == nil, let first = drawn.first {
            throw problem("samples", "missing: \(first.key) is a distribution; say how many draws (samples: N)")
        }
        if samples != nil, drawn.isEmpty {
            throw problem("samples", "no hyperparameter is a distribution (uniform, loguniform, choice, int) to draw")
        }
        if let value = spec["search_seed"] {
            guard let text = SweepSpec.scalarText(value), let seed = UInt64(text) else { throw problem("search_seed", "expected a whole number ≥ 0") }
            searchSeed = seed
        } else {
            searchSeed = 0
        }
        if let value = spec["target"] {
            guard let text = SweepSpec.scalarText(value), let score = Double(text), score.isFinite else {
                throw problem("target", "expected a number (the score a run should reach)")
            }
            targetScore = score
        } else {
            targetScore = nil
        }
        halving = try spec["halving"].map { value in
            guard let table = value as? [String: Any] else { throw problem("halving", "expected {steps: [budgets…], keep: fraction} (or epochs: for models)") }
            for key in table.keys.sorted() where !["steps", "epochs", "keep"].contains(key) {
                throw problem("halving.\(key)", "unknown key; halving takes steps (or epochs) and keep")
            }
            let unit = table["steps"] != nil ? "steps" : "epochs"
            guard (table["steps"] == nil) != (table["epochs"] == nil) else { throw problem("halving", "give the budgets as steps or as epochs") }
            guard spec[unit] == nil else { throw problem(unit, "halving.\(unit) sets the budgets; leave out \(unit)") }
            guard let list = table[unit] as? [Any], list.count >= 2 else { throw problem("halving.\(unit)", "expected a list of two or more budgets") }
            let limit = unit == "steps" ? Limits.timesteps : Limits.dataEpochs
            let budgets = try list.map { item -> Int in
                guard let text = SweepSpec.scalarText(item) else { throw problem("halving.\(unit)", "expected whole numbers") }
                do { return try WholeNumber.parse(text, in: 1...limit) } catch { throw problem("halving.\(unit)", "\(error)") }
            }
            guard zip(budgets, budgets.dropFirst()).allSatisfy({ $0 < $1 }) else { throw problem("halving.\(unit)", "the budgets must increase") }
            guard let keepText = table["keep"].flatMap(SweepSpec.scalarText), let keep = Double(keepText), keep > 0, keep < 1 else {
                throw problem("halving.keep", "expected a fraction between 0 and 1 (0.5 keeps the better half)")
            }
            guard evaluationEpisodes != 0 else { throw problem("eval_episodes", "halving ranks the settings by eval.json: it needs an evaluation") }
            return SweepSpec.Halving(flag: "--" + unit, budgets: budgets, keep: keep)
        }
        if halving != nil, settings().count < 2 {
            throw problem("halving", "there is one setting only: halving keeps the better settings, so vary some hyperparameters")
        }
    }

    /// Every setting of the hyperparameters: the grid's points crossed with the draws (each draw's values in key
    /// order from one generator seeded with `search_seed`), as (key, value text) pairs of the varied keys first,
    /// then the fixed ones.
    public func settings() -> [[(key: String, value: String)]] {
        var rng = SeededGenerator(seed: searchSeed)
        let draws: [[String: String]] = (0..<(samples ?? 1)).map { _ in
            var values: [String: String] = [:]
            for (key, domain) in hyperparameters {
                switch domain {
                case let .uniform(a, b): values[key] = SweepSpec.rounded(rng.uniform(a, b))
                case let .logUniform(a, b): values[key] = SweepSpec.rounded(exp(rng.uniform(log(a), log(b))))
                case let .int(a, b): values[key] = String(a + rng.nextInt(below: b - a + 1))
                case let .choice(options): values[key] = options[rng.nextInt(below: options.count)]
                case .fixed, .grid: break
                }
            }
            return values
        }
        var points: [[String: String]] = [[:]]
        for (key, domain) in hyperparameters {
            guard case let .grid(values) = domain else { continue }
            points = points.flatMap { point in values.map { point.merging([key: $0]) { $1 } } }
        }
        return points.flatMap { point in
            draws.map { draw in
                hyperparameters.compactMap { key, domain -> (key: String, value: String)? in
                    if case .fixed = domain { return nil } else { return (key, point[key] ?? draw[key]!) }
                } + hyperparameters.compactMap { key, domain in
                    if case let .fixed(value) = domain { return (key, value) } else { return nil }
                }
            }
        }
    }

    /// How many runs the group makes (saturating).
    var runCount: Int {
        let settingsCount = hyperparameters.reduce(samples ?? 1) { total, entry in
            if case let .grid(values) = entry.domain { return total.multipliedReportingOverflow(by: values.count).partialValue }
            return total
        }
        return [subjects.count, targets.count, seeds.count].reduce(settingsCount) { $0.multipliedReportingOverflow(by: $1).partialValue }
    }
}

extension SweepSpec {

    /// A hyperparameter's values: a list (grid), a distribution's text, or one value.
    static func domain(of value: Any, key: String, source: String) throws -> Domain {
        func problem(_ message: String) -> SweepSpecError { SweepSpecError(source: source, key: key, problem: message) }
        if let list = value as? [Any] {
            guard !list.isEmpty else { throw problem("the list of values is empty") }
            let values = list.map(Self.flowText)
            guard Set(values).count == values.count else { throw problem("a value is listed twice") }
            return .grid(values)
        }
        guard let text = scalarText(value) else { return .fixed(flowText(value)) }
        if text.contains("(") != text.contains(")") {
            throw problem("'\(text)' has an unmatched parenthesis (in a flow mapping {…} or list […], quote a distribution: 'uniform(a, b)')")
        }
        guard let open = text.firstIndex(of: "("), text.hasSuffix(")") else { return .fixed(text) }
        let name = text[..<open].trimmingCharacters(in: .whitespaces)
        let inside = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
        let usage = "\(name)(a, b) with numbers a < b"
        func bounds() throws -> (Double, Double) {
            let parts = inside.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let a = Double(parts[0]), let b = Double(parts[1]), a.isFinite, b.isFinite, a < b else {
                throw problem("expected \(usage), got \(text)")
            }
            return (a, b)
        }
        switch name {
        case "uniform":
            let (a, b) = try bounds()
            return .uniform(a, b)
        case "loguniform":
            let (a, b) = try bounds()
            guard a > 0 else { throw problem("loguniform needs 0 < a < b, got \(text)") }
            return .logUniform(a, b)
        case "int":
            let (a, b) = try bounds()
            guard a == a.rounded(), b == b.rounded(), abs(a) < 1e15, abs(b) < 1e15 else {
                throw problem("int(a, b) takes whole numbers, got \(text)")
            }
            return .int(Int(a), Int(b))
        case "choice":
            let list = try? HyperParameters.load(yaml: inside, source: source)
            guard let values = list as? [Any], !values.isEmpty else { throw problem("expected choice([v1, v2, …]), got \(text)") }
            return .choice(values.map(Self.flowText))
        default:
            throw problem("unknown distribution '\(name)'; use uniform(a, b), loguniform(a, b), int(a, b) or choice([…]), or a list for a grid")
        }
    }

    /// A scalar's text (nil for a list or a mapping).
    static func scalarText(_ value: Any) -> String? {
        switch value {
        case is [Any], is [String: Any]: nil
        case let bool as Bool: bool ? "true" : "false"
        case let text as String: text
        default: "\(value)"
        }
    }

    /// A value as `--set` reads it: scalars as they are, lists and mappings in YAML's flow style.
    static func flowText(_ value: Any) -> String {
        if let list = value as? [Any] { return "[" + list.map(flowText).joined(separator: ", ") + "]" }
        if let map = value as? [String: Any] {
            return "{" + map.keys.sorted().map { "\($0): \(flowText(map[$0]!))" }.joined(separator: ", ") + "}"
        }
        return scalarText(value)!
    }

    /// 4 significant digits, as `--set` and the folder name carry a drawn number.
    static func rounded(_ x: Double) -> String { String(format: "%.4g", x) }

    // MARK: The runs

    /// Every run of the sweep, in order: each group's agent × environment × setting × seed.
    public func runs() throws -> [SweepRun] {
        var runs: [SweepRun] = [], names: [String: Int] = [:]
        for (index, group) in groups.enumerated() {
            let varied = Set(group.hyperparameters.filter { if case .fixed = $0.domain { false } else { true } }.map(\.key))
            for subject in group.subjects {
                for target in group.targets {
                    for setting in group.settings() {
                        for seed in group.seeds {
                            let label = setting.filter { varied.contains($0.key) }.map { "\($0.key)=\($0.value)" }
                            let name = Self.folderName([subject, target] + label + ["seed\(seed)"])
                            if let earlier = names[name] {
                                throw SweepSpecError(source: "the spec", key: groups.count > 1 ? "groups" : "hyperparameters",
                                                     problem: "runs \(earlier) and \(runs.count) get the same folder \(name); "
                                                     + "give values that differ in letters or digits, and each agent and "
                                                     + "environment to one group")
                            }
                            names[name] = runs.count
                            let arguments = [subject, group.targetFlag, target, "--seed", String(seed)] + group.commonArguments
                                + setting.flatMap { ["--set", "\($0.key)=\($0.value)"] }
                            runs.append(SweepRun(name: name, subject: subject, target: target, seed: seed,
                                                 settings: setting, runArguments: arguments,
                                                 evaluates: group.evaluationEpisodes != 0, targetScore: group.targetScore,
                                                 halving: group.halving, pool: "\(index)/\(subject)/\(target)",
                                                 settingLabel: label.joined(separator: ",")))
                        }
                    }
                }
            }
        }
        return runs
    }

    /// A folder name from parts: letters, digits and `.=_+-` kept, anything else `_`; parts joined by `-`. A name
    /// longer than 200 characters keeps its first 180 and a hash of the whole, so it stays stable and unique.
    static func folderName(_ parts: [String]) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.=_+-")
        let name = parts.joined(separator: "-").map { allowed.contains($0) ? $0 : "_" }
        let text = String(name).replacingOccurrences(of: "__", with: "_")
        guard text.utf8.count > 200 else { return text }
        // FNV-1a: a hash that is the same on every machine and every run (Swift's Hasher is seeded per process).
        let hash = parts.joined(separator: "\u{0}").utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        return String(text.prefix(180)) + "-" + String(hash, radix: 16)
    }
}

/// One run of a sweep: its folder name (under the sweep's folder) and the `rlbench run` arguments that start it.
public struct SweepRun: Sendable, Equatable {
    public let name: String
    public let subject: String
    public let target: String
    public let seed: UInt64
    public let settings: [(key: String, value: String)]
    /// `rlbench run` arguments without `--out` and `--plain`.
    public let runArguments: [String]
    /// False when the spec skips the evaluation (`eval_episodes: 0`): the run is done once `final.safetensors` exists.
    public let evaluates: Bool
    /// The score the run should reach (the spec's `target`).
    public var targetScore: Double? = nil
    /// The group's successive halving, if any; the run's arguments then carry no budget (each rung adds its own).
    public var halving: SweepSpec.Halving? = nil
    /// The runs a halving ranks together: one group's runs of one agent on one environment.
    public var pool: String = ""
    /// The varied settings as text: runs with the same label (and pool) differ only in their seed.
    public var settingLabel: String = ""

    public static func == (a: SweepRun, b: SweepRun) -> Bool {
        a.name == b.name && a.runArguments == b.runArguments && a.evaluates == b.evaluates
    }
}

/// A problem with a sweep spec: the file, the key and what is wrong.
public struct SweepSpecError: Error, CustomStringConvertible, Equatable {
    public let source: String
    public let key: String?
    public let problem: String
    public var description: String { "sweep spec \(source)" + (key.map { ": \($0)" } ?? "") + ": " + problem }
}
