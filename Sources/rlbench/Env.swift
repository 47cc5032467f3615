import ArgumentParser
import CLIKit
import Environments
import Foundation
import Support
import Imaging
import SeededRandom

/// `rlbench env ...`: list, replay and record environments.
struct Env: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Environments: list them, replay Gymnasium recordings, record episodes.",
        subcommands: [EnvList.self, EnvReplay.self, EnvRecord.self])
}

struct EnvList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show the environments with spaces, time limits and reward thresholds.")

    func run() throws {
        var rows = [["id", "observation space", "action space", "time limit", "threshold"]]
        for entry in Registry.entries {
            let env = try Registry.make(entry.spec.id)
            rows.append([entry.spec.id, "\(env.observationSpace)", "\(env.actionSpace)",
                         entry.spec.maxEpisodeSteps.map(String.init) ?? "none",
                         entry.spec.rewardThreshold.map { String(format: "%g", $0) } ?? "none"])
        }
        printTable(rows)
        print("\nOptions (--env-option key=value):")
        for (key, help) in Registry.commonOptions.sorted(by: { $0.key < $1.key }) { print("  every environment \(key): \(help)") }
        for entry in Registry.entries where !entry.options.isEmpty {
            for (key, help) in entry.options.sorted(by: { $0.key < $1.key }) { print("  \(entry.spec.id) \(key): \(help)") }
        }
    }
}

struct EnvReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay Gymnasium recordings (JSON Lines) step by step; non-zero exit on any mismatch.",
        discussion: "The format is that of the parity fixtures: a header line (env, make_kwargs, reset_seed, initial_state, ...) then one line per step.")

    @Argument(help: "Recording files (.jsonl).")
    var files: [String]

    @Option(parsing: .unconditional, help: "Largest accepted observation deviation (absolute, or relative where smaller).")
    var tolerance = 1e-6

    func validate() throws {
        guard tolerance >= 0, tolerance.isFinite else { throw ValidationError("--tolerance must be 0 or more, got \(tolerance)") }
    }

    func run() throws {
        var failed = 0
        for path in files {
            do {
                let report = try Recording(contentsOf: URL(fileURLWithPath: path)).replay(tolerance: tolerance)
                let status = report.passed ? "ok" : "MISMATCH (\(report.firstMismatch!))"
                print(String(format: "%@: %d steps, largest observation deviation %.3g, reward deviation %.3g — %@",
                             report.file, report.steps, report.largestObservationDeviation, report.largestRewardDeviation, status))
                if !report.passed { failed += 1 }
            } catch {
                print("\(path): error: \(error)")
                failed += 1
            }
        }
        if failed > 0 {
            FileHandle.standardError.write(Data("\(failed) of \(files.count) recordings did not replay exactly\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct EnvRecord: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record", abstract: "Record an episode as an animated GIF (or a single frame as PNG).")

    @Argument(help: "Environment id.")
    var env: String

    @Option(help: "The policy: random.")
    var policy = "random"

    @Option(help: "Output file: .gif for the episode, .png for the first frame.")
    var out = "episode.gif"

    @Option(parsing: .unconditional, help: "Seed of the reset and of the random policy.", transform: parseSeed)
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "Stop after this many steps.", transform: parseCount("--max-steps", in: 1...Limits.timesteps))
    var maxSteps = 500

    @Option(parsing: .unconditional, help: "Frames per second of the GIF.", transform: parseCount("--fps", in: 1...1000))
    var fps = 30

    func validate() throws {
        guard policy == "random" else { throw ValidationError("unknown policy '\(policy)'; known: random") }
        guard [".gif", ".png"].contains(where: { out.lowercased().hasSuffix($0) }) else {
            throw ValidationError("--out must end in .gif or .png")
        }
    }

    func run() throws {
        let environment = try fail { try Registry.make(env) }
        var rng = SeededGenerator(seed: seed)
        environment.reset(seed: seed)
        var frames = [environment.render()]
        if out.lowercased().hasSuffix(".gif") {
            for _ in 0..<maxSteps {
                let result = try environment.step(environment.actionSpace.sample(using: &rng))
                frames.append(environment.render())
                if result.terminated || result.truncated { break }
            }
        }
        let url = URL(fileURLWithPath: out)
        try fail {
            if out.lowercased().hasSuffix(".png") { try frames[0].writePNG(to: url) } else { try GIF.write(frames, delayCentiseconds: max(1, 100 / fps), to: url) }
        }
        print("wrote \(out) (\(frames.count) frame\(frames.count == 1 ? "" : "s"))")
    }
}

/// Prints rows as a left-aligned table.
func printTable(_ rows: [[String]]) {
    let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max()! }
    for (i, row) in rows.enumerated() {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        if i == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
    }
}
