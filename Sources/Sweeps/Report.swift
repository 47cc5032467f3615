import Environments
import Foundation
import Imaging
import SeededRandom
import Support
import Training

/// `rlbench report DIR...`: a Markdown table and PNG figures from run folders.
///
/// - Per agent, environment and setting: the median over seeds, the IQM with its stratified-bootstrap 95% interval,
///   the worst seed and the median wall time; learning curves with the IQM over seeds and a 95% band.
/// - Where a group's runs differ in a hyperparameter (a sweep's): the best setting by IQM and the score against each
///   varied key.
/// - Across environments, per agent (its best setting on each): IQM, mean, median and optimality gap of scores
///   normalized to [random, target], with intervals, and the performance profile (`RobustStatistics`).
public struct Report {
    public struct Options: Sendable {
        /// Bootstrap resamples for every interval.
        public var reps = 2000
        /// The seed of every bootstrap draw.
        public var seed: UInt64 = 0
        /// Normalization references that replace the computed ones, by environment: (random, target).
        public var references: [String: (random: Double, target: Double)] = [:]
        public init() {}
    }

    /// A row of the table: the runs of one agent on one environment with one setting.
    public struct Group {
        public let subject: String
        public let target: String
        /// The varied keys' values ("learning_rate=0.001"), empty when nothing varies.
        public let setting: [(key: String, value: String)]
        public let runs: [RunRecord]
        public var scores: [Double] { runs.compactMap(\.score) }
        public var label: String { setting.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") }
    }

    public let records: [RunRecord]
    public let options: Options

    public init(records: [RunRecord], options: Options = Options()) {
        self.records = records; self.options = options
    }

    /// The runs grouped by agent, environment and the settings that vary among that pair's runs (in first-seen order).
    public func groups() -> [Group] {
        var pairs: [String: [RunRecord]] = [:], order: [String] = []
        for record in records {
            let key = record.subject + "\u{0}" + record.target
            if pairs[key] == nil { order.append(key) }
            pairs[key, default: []].append(record)
        }
        return order.flatMap { key -> [Group] in
            let runs = pairs[key]!
            let keys = Set(runs.flatMap(\.settings.keys)).sorted()
            let varied = keys.filter { k in Set(runs.map { $0.settings[k] ?? "" }).count > 1 }
            var settings: [String: [RunRecord]] = [:], seen: [String] = []
            for run in runs {
                let label = varied.map { run.settings[$0] ?? "" }.joined(separator: "\u{0}")
                if settings[label] == nil { seen.append(label) }
                settings[label, default: []].append(run)
            }
            return seen.map { label in
                let members = settings[label]!
                return Group(subject: runs[0].subject, target: runs[0].target,
                             setting: varied.map { ($0, members[0].settings[$0] ?? "") }, runs: members.sorted { $0.seed < $1.seed })
            }
        }
    }

    /// The IQM over a group's seeds and its interval.
    func iqm(_ scores: [Double]) -> (estimate: Double, low: Double, high: Double) {
        let iqm = RobustStatistics.Aggregate.iqm
        let ci = RobustStatistics.interval([scores], reps: options.reps, seed: options.seed) { iqm($0) }
        return (iqm([scores]), ci.low, ci.high)
    }

    // MARK: Writing

    /// Writes `report.md` and the figures into `folder`; returns the Markdown.
    @discardableResult
    public func write(to folder: URL) throws -> String {
        try Files.makeDirectory(folder)
        let groups = groups()
        var md = "# Report\n\n"
        let unscored = records.filter { $0.score == nil }
        md += "\(records.count) runs"
        if !unscored.isEmpty {
            md += " (\(unscored.count) without a score in eval.json, left out: "
                + unscored.prefix(5).map { $0.folder.lastPathComponent }.joined(separator: ", ")
                + (unscored.count > 5 ? ", …" : "") + ")"
        }
        md += ". Scores are `eval.json`'s \(RunRecord.scoreKeys.map { "`\($0)`" }.joined(separator: " or ")); "
            + "intervals are 95% stratified-bootstrap intervals over seeds (\(options.reps) resamples, seed \(options.seed)).\n\n"

        md += "## Results\n\n"
        md += resultsTable(groups)
        md += try writeCurves(groups, to: folder)
        md += try writeHyperparameters(groups, to: folder)
        md += try writeAggregates(groups, to: folder)
        try AtomicFile.write(Data(md.utf8), to: folder.appendingPathComponent("report.md"))
        return md
    }

    /// The results table: per group its budget, seeds, median, IQM with its interval, worst seed, target (when the
    /// sweep's spec gives one) and median wall time.
    public func resultsTable(_ groups: [Group]) -> String {
        let showSettings = groups.contains { !$0.setting.isEmpty }
        let showBudget = records.contains { $0.budget != nil }
        let showTarget = records.contains { $0.targetScore != nil }
        var columns = ["agent", "environment"]
        if showSettings { columns.append("settings") }
        if showBudget { columns.append("budget") }
        columns += ["seeds", "median", "IQM [95% CI]", "worst seed"]
        if showTarget { columns += ["target", "median reaches it"] }
        columns.append("wall time")
        var md = "| " + columns.joined(separator: " | ") + " |\n|" + String(repeating: " --- |", count: columns.count) + "\n"
        for group in groups where !group.scores.isEmpty {
            let scores = group.scores, median = RobustStatistics.median(scores)
            let estimate = iqm(scores)
            let worst = group.runs.filter { $0.score != nil }.min { $0.score! < $1.score! }!
            let walls = group.runs.compactMap(\.wallSeconds)
            var cells = [group.subject, group.target]
            if showSettings { cells.append(group.label) }
            if showBudget { cells.append(group.runs.first?.budget.map { Self.budget($0.count, $0.unit) } ?? "–") }
            cells += [String(scores.count), Self.number(median),
                      "\(Self.number(estimate.estimate)) [\(Self.number(estimate.low)), \(Self.number(estimate.high))]",
                      "\(Self.number(worst.score!)) (seed \(worst.seed))"]
            if showTarget {
                if let target = group.runs.lazy.compactMap(\.targetScore).first {
                    cells += ["≥ " + Self.number(target), median >= target ? "yes" : "no"]
                } else {
                    cells += ["–", "–"]
                }
            }
            cells.append(walls.isEmpty ? "–" : formatDuration(RobustStatistics.median(walls)))
            md += "| " + cells.joined(separator: " | ") + " |\n"
        }
        return md
    }

    /// A budget as people write it: `1e5 steps`, `1.2e5 steps`, `2,500 steps`, `10 epochs`.
    static func budget(_ count: Double, _ unit: String) -> String {
        if count >= 10_000, count == count.rounded() {
            let exponent = Int(log10(count)), mantissa = count / pow(10, Double(exponent))
            if (mantissa * 10).rounded() == mantissa * 10 {
                let digits = mantissa == mantissa.rounded() ? String(Int(mantissa)) : String(format: "%.1f", mantissa)
                return "\(digits)e\(exponent) \(unit)"
            }
        }
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.locale = Locale(identifier: "en_US")
        formatter.maximumFractionDigits = 2
        return "\(formatter.string(from: NSNumber(value: count)) ?? String(count)) \(unit)"
    }

    static let palette = [RGB(31, 119, 180), RGB(255, 127, 14), RGB(44, 160, 44), RGB(214, 39, 40), RGB(148, 103, 189),
                          RGB(140, 86, 75), RGB(227, 119, 194), RGB(127, 127, 127)]

    /// A file name from parts (letters, digits, `.-_` kept).
    static func fileName(_ parts: [String], _ ext: String) -> String {
        SweepSpec.folderName(parts) + "." + ext
    }

    static func number(_ x: Double) -> String {
        guard x.isFinite else { return "–" }
        if x != 0 && abs(x) < 0.01 { return String(format: "%.3g", x) }
        return abs(x) >= 100 ? String(format: "%.1f", x) : String(format: "%.3f", x)
    }

    /// Per agent and environment: each setting's IQM learning curve over seeds with its 95% band (at most the best
    /// eight settings). A run's curve is the mean return of its last 100 episodes, read at 100 evenly spaced steps up
    /// to the shortest run's last.
    func writeCurves(_ groups: [Group], to folder: URL) throws -> String {
        var md = "", pairs: [(String, String)] = []
        for g in groups where !pairs.contains(where: { $0 == (g.subject, g.target) }) { pairs.append((g.subject, g.target)) }
        for (subject, target) in pairs {
            let members = groups.filter { $0.subject == subject && $0.target == target && $0.runs.allSatisfy { $0.curve != nil } }
            let ranked = members.sorted { iqmOrMinus($0) > iqmOrMinus($1) }.prefix(Self.palette.count)
            var series: [LinePlot.Series] = []
            for (i, group) in ranked.enumerated() {
                let curves = group.runs.map { Self.movingAverage($0.curve!) }
                guard let end = curves.compactMap({ $0.steps.last }).min(), end > 0 else { continue }
                let grid = (1...100).map { end * Double($0) / 100 }
                let values = grid.map { step in curves.map { Self.value(of: $0, at: step) } }
                let iqm = RobustStatistics.Aggregate.iqm
                let points = values.map { column -> (Double, Double, Double) in
                    let finite = column.filter(\.isFinite)
                    guard !finite.isEmpty else { return (.nan, .nan, .nan) }
                    let ci = RobustStatistics.interval([finite], reps: min(options.reps, 500), seed: options.seed) { iqm($0) }
                    return (iqm([finite]), ci.low, ci.high)
                }
                series.append(.init(label: group.setting.isEmpty ? "IQM of \(group.runs.count) seeds" : group.label,
                                    x: grid, y: points.map(\.0), color: Self.palette[i], lineWidth: 2,
                                    band: (points.map(\.1), points.map(\.2))))
            }
            guard !series.isEmpty else { continue }
            let name = Self.fileName(["curves", subject, target], "png")
            try LinePlot(title: "\(subject) on \(target)".uppercased(), xLabel: "environment steps",
                         yLabel: "return: IQM of seeds, 95% band", series: series)
                .render().writePNG(to: folder.appendingPathComponent(name))
            if md.isEmpty { md = "\n## Learning curves\n\n" }
            md += "![\(subject) on \(target)](\(name))\n\n"
        }
        return md
    }

    private func iqmOrMinus(_ group: Group) -> Double {
        group.scores.isEmpty ? -.infinity : RobustStatistics.interquartileMean(group.scores)
    }

    /// The mean return of the last 100 episodes after each episode.
    static func movingAverage(_ curve: (steps: [Double], returns: [Double])) -> (steps: [Double], values: [Double]) {
        var window: [Double] = [], sum = 0.0, values: [Double] = []
        for r in curve.returns {
            window.append(r); sum += r
            if window.count > 100 { sum -= window.removeFirst() }
            values.append(sum / Double(window.count))
        }
        return (curve.steps, values)
    }

    /// The curve's value at `step`: that of the last episode ended by then (nan before the first).
    static func value(of curve: (steps: [Double], values: [Double]), at step: Double) -> Double {
        var lo = 0, hi = curve.steps.count
        while lo < hi { let mid = (lo + hi) / 2; if curve.steps[mid] <= step { lo = mid + 1 } else { hi = mid } }
        return lo == 0 ? .nan : curve.values[lo - 1]
    }

    /// For agent-environment pairs run with several settings: the best by IQM, and each run's score against each
    /// varied key (values that are not numbers are placed in their sorted order, listed below the figure).
    func writeHyperparameters(_ groups: [Group], to folder: URL) throws -> String {
        var md = "", pairs: [(String, String)] = []
        for g in groups where !g.setting.isEmpty && !pairs.contains(where: { $0 == (g.subject, g.target) }) { pairs.append((g.subject, g.target)) }
        for (subject, target) in pairs {
            let members = groups.filter { $0.subject == subject && $0.target == target && !$0.scores.isEmpty }
            guard let best = members.max(by: { iqmOrMinus($0) < iqmOrMinus($1) }) else { continue }
            if md.isEmpty { md = "\n## Hyperparameters\n\n" }
            md += "### \(subject) on \(target)\n\nBest of \(members.count) settings by IQM: **\(best.label)** "
                + "(IQM \(Self.number(iqmOrMinus(best))) over \(best.scores.count) seeds).\n\n"
            for (key, _) in best.setting {
                let values = members.map { group in group.setting.first { $0.key == key }!.value }
                let numeric = values.allSatisfy { Double($0) != nil }
                let order = Array(Set(values)).sorted { numeric ? Double($0)! < Double($1)! : $0 < $1 }
                func x(_ value: String) -> Double { numeric ? Double(value)! : Double(order.firstIndex(of: value)!) }
                let runs = zip(members, values).flatMap { group, value in group.runs.compactMap { run in run.score.map { (x(value), $0) } } }
                let iqms = order.map { value -> (Double, Double) in
                    let scores = zip(members, values).filter { $0.1 == value }.flatMap(\.0.scores)
                    return (x(value), RobustStatistics.interquartileMean(scores))
                }
                let name = Self.fileName(["hyperparameter", subject, target, key], "png")
                try LinePlot(title: "\(subject) on \(target): \(key)".uppercased(), xLabel: key + (numeric ? "" : " (see the report)"),
                             yLabel: "score", series: [
                                .init(label: "each run", x: runs.map(\.0), y: runs.map(\.1), color: Self.palette[0], lineWidth: 0, markers: true),
                                .init(label: "IQM over all runs with that value", x: iqms.map(\.0), y: iqms.map(\.1), color: Self.palette[3], lineWidth: 2),
                             ]).render().writePNG(to: folder.appendingPathComponent(name))
                md += "![\(key)](\(name))\n\n"
                if !numeric { md += "\(key): " + order.enumerated().map { "\($0.offset) = \($0.element)" }.joined(separator: ", ") + "\n\n" }
            }
        }
        return md
    }

    /// Where each environment's scores are normalized from and to: `options.references`, else the mean return of a
    /// uniformly random policy over 100 episodes (episode i reset with seed i, actions from seed 0, at most 1,000
    /// steps without a time limit) and the environment's reward threshold. Nil when neither says.
    public func reference(for environment: String) -> (random: Double, target: Double, source: String)? {
        if let given = options.references[environment] { return (given.random, given.target, "given") }
        guard let entry = try? Registry.entry(environment), let target = entry.spec.rewardThreshold,
              let random = try? Self.randomPolicyReturn(environment, limit: entry.spec.maxEpisodeSteps ?? 1000) else { return nil }
        return (random, target, "random policy, reward threshold")
    }

    static func randomPolicyReturn(_ id: String, limit: Int) throws -> Double {
        let env = try Registry.make(id)
        var rng = SeededGenerator(seed: 0)
        var total = 0.0
        for episode in 0..<100 {
            _ = env.reset(seed: UInt64(episode))
            for _ in 0..<limit {
                let step = try env.step(env.actionSpace.sample(using: &rng))
                total += step.reward
                if step.terminated || step.truncated { break }
            }
        }
        return total / 100
    }

    /// Across environments, per agent: the rliable aggregates with intervals and the performance profile, on each
    /// environment's runs of the agent's best setting there, normalized to [random, target].
    func writeAggregates(_ groups: [Group], to folder: URL) throws -> String {
        let scored = groups.filter { !$0.scores.isEmpty }
        let environments = scored.map(\.target).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var references: [String: (random: Double, target: Double, source: String)] = [:]
        for environment in environments { references[environment] = reference(for: environment) }
        let usable = environments.filter { references[$0] != nil }
        let agents = scored.map(\.subject).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        guard !usable.isEmpty, !agents.isEmpty else { return "" }

        var md = "\n## Across environments\n\nEach environment's scores are normalized to (score − random) / (target − random): "
            + "random is the mean return of a uniformly random policy over 100 episodes, target the environment's reward "
            + "threshold (`rlbench env list`), unless given with `--scores`. Each agent counts its best setting (by IQM) on "
            + "each environment. Aggregates as in rliable: IQM of all runs, mean and median of the environments' mean "
            + "scores, optimality gap 1 − mean(min(score, 1)).\n\n"
        md += "| environment | random | target |\n| --- | --- | --- |\n"
        for environment in usable {
            let r = references[environment]!
            md += "| \(environment) | \(Self.number(r.random)) | \(Self.number(r.target)) |\n"
        }
        let skipped = environments.filter { references[$0] == nil }
        if !skipped.isEmpty { md += "\nLeft out (no reward threshold; give one with `--scores`): \(skipped.joined(separator: ", ")).\n" }

        var normalized: [(agent: String, scores: [[Double]])] = []
        for agent in agents {
            let tasks = usable.compactMap { environment -> [Double]? in
                let candidates = scored.filter { $0.subject == agent && $0.target == environment }
                guard let best = candidates.max(by: { iqmOrMinus($0) < iqmOrMinus($1) }) else { return nil }
                let r = references[environment]!
                return best.scores.map { ($0 - r.random) / (r.target - r.random) }
            }
            if !tasks.isEmpty { normalized.append((agent, tasks)) }
        }
        let aggregates = RobustStatistics.Aggregate.allCases
        md += "\n| agent | environments | " + aggregates.map(\.rawValue).joined(separator: " | ") + " |\n|"
            + String(repeating: " --- |", count: aggregates.count + 2) + "\n"
        var panels = RobustStatistics.Aggregate.allCases.map { IntervalPlot.Panel(title: $0.rawValue, values: []) }
        for (agent, scores) in normalized {
            md += "| \(agent) | \(scores.count) |"
            for (i, aggregate) in RobustStatistics.Aggregate.allCases.enumerated() {
                let ci = RobustStatistics.interval(scores, reps: options.reps, seed: options.seed) { aggregate($0) }
                let estimate = aggregate(scores)
                panels[i].values.append((estimate, ci.low, ci.high))
                md += " \(Self.number(estimate)) [\(Self.number(ci.low)), \(Self.number(ci.high))] |"
            }
            md += "\n"
        }
        let rows = normalized.enumerated().map { ($0.element.agent, Self.palette[$0.offset % Self.palette.count]) }
        try IntervalPlot(title: "AGGREGATES OF NORMALIZED SCORES (95% CI)", rows: rows, panels: panels)
            .render().writePNG(to: folder.appendingPathComponent("aggregates.png"))

        let highest = max(1, normalized.flatMap { $0.scores.flatMap { $0 } }.max() ?? 1)
        let taus = (0...50).map { highest * Double($0) / 50 }
        let profile = normalized.enumerated().map { i, entry -> LinePlot.Series in
            let points = taus.map { tau -> (Double, Double, Double) in
                let ci = RobustStatistics.interval(entry.scores, reps: min(options.reps, 500), seed: options.seed) {
                    RobustStatistics.fractionAbove(tau, in: $0)
                }
                return (RobustStatistics.fractionAbove(tau, in: entry.scores), ci.low, ci.high)
            }
            return .init(label: entry.agent, x: taus, y: points.map(\.0), color: Self.palette[i % Self.palette.count],
                         lineWidth: 2, band: (points.map(\.1), points.map(\.2)))
        }
        try LinePlot(title: "PERFORMANCE PROFILE", xLabel: "normalized score tau",
                     yLabel: "fraction of runs above tau, 95% band", series: profile)
            .render().writePNG(to: folder.appendingPathComponent("performance-profile.png"))
        md += "\n![aggregates](aggregates.png)\n\n![performance profile](performance-profile.png)\n"
        return md
    }
}
