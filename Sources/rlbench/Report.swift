import ArgumentParser
import CLIKit
import Foundation
import Support
import Sweeps
import Training

/// `rlbench report DIR...`: a Markdown table and figures from run folders (a sweep's, or any).
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize run folders (a sweep's or any): a Markdown table with robust statistics and PNG figures.",
        discussion: """
        Per agent, environment and setting: median, IQM with a 95% stratified-bootstrap interval over seeds, worst \
        seed, wall time, and learning curves (IQM over seeds with a 95% band). For hyperparameter sweeps: the best \
        setting and the score against each varied key. Across environments: IQM, mean, median and optimality gap of \
        scores normalized to [random policy, reward threshold], and the performance profile (rliable's statistics).
        """)

    @Argument(help: "Run folders, or folders holding run folders (a sweep's).")
    var folders: [String]

    @Option(name: .long, help: "Where report.md and the figures go.")
    var out = "report"

    @Option(name: .long, help: "A YAML file of normalization references by environment: `Pendulum-v1: {random: -1200, target: -200}`.")
    var scores: String?

    @Option(name: .long, help: "Bootstrap resamples for each interval.", transform: parseCount("--reps", in: 100...1_000_000))
    var reps = 2000

    @Option(name: .long, parsing: .unconditional, help: "Seed of the bootstrap draws.", transform: parseSeed)
    var seed: UInt64 = 0

    func run() throws {
        var options = Sweeps.Report.Options()
        options.reps = reps
        options.seed = seed
        if let scores { options.references = try fail { try Self.references(URL(fileURLWithPath: scores)) } }
        let records = try fail { try RunRecord.collect(folders.map { URL(fileURLWithPath: $0) }) }
        guard !records.isEmpty else { throw fail(SweepError("no run folders in \(folders.joined(separator: ", "))")) }
        let folder = URL(fileURLWithPath: out)
        _ = try fail { try Sweeps.Report(records: records, options: options).write(to: folder) }
        print("report: \(folder.appendingPathComponent("report.md").path) (\(records.count) runs)")
    }

    /// `ENV: {random: x, target: y}` lines; errors name the environment and key.
    static func references(_ url: URL) throws -> [String: (random: Double, target: Double)] {
        let text = try Files.text(url, maxBytes: Limits.configBytes)
        guard let map = try HyperParameters.load(yaml: text, source: url.path) as? [String: Any] else {
            throw SweepError("\(url.path): expected environment: {random: number, target: number} lines")
        }
        var references: [String: (random: Double, target: Double)] = [:]
        for (environment, value) in map {
            func number(_ key: String) throws -> Double {
                guard let entry = value as? [String: Any], let raw = entry[key], let x = Double("\(raw)"), x.isFinite else {
                    throw SweepError("\(url.path): \(environment).\(key) must be a number")
                }
                return x
            }
            let pair = (random: try number("random"), target: try number("target"))
            guard pair.random != pair.target else { throw SweepError("\(url.path): \(environment): random and target are equal") }
            references[environment] = pair
        }
        return references
    }
}
