import Agents
import ArgumentParser
import CLIKit
import Foundation
import Viewer

/// `rlbench bench view`: training throughput with the live `--view` window beside headless training.
struct BenchView: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Training steps/s with the live --view window beside headless (needs a display, e.g. under Xvfb).",
        discussion: "Headless and windowed runs alternate; the median of each is reported. Evaluation is skipped.")

    @Option(help: "Agent.")
    var agent = "ppo"

    @Option(help: "Environment id.")
    var env = "CartPole-v1"

    @Option(parsing: .unconditional, help: "Training steps per run.")
    var steps = 100_000

    @Option(parsing: .unconditional, help: "Runs of each kind.")
    var repeats = 3

    @Option(parsing: .unconditional, help: "Seed.", transform: parseSeed)
    var seed: UInt64 = 1

    @Flag(help: "One JSON object.")
    var json = false

    func validate() throws {
        guard steps > 0, repeats > 0 else { throw ValidationError("--steps and --repeats must be positive") }
    }

    func run() throws {
        var headless: [Double] = [], windowed: [Double] = []
        for _ in 0..<repeats {
            headless.append(try throughput(view: false))
            windowed.append(try throughput(view: true))
        }
        let a = median(headless), b = median(windowed)
        if json {
            print("{\"name\": \"view_throughput\", \"agent\": \"\(agent)\", \"env\": \"\(env)\", \"steps\": \(steps), "
                  + "\"headless_steps_per_s\": \(a), \"view_steps_per_s\": \(b), \"ratio\": \(b / a)}")
        } else {
            print(String(format: "%@ on %@, %d steps: headless %.0f steps/s, with --view %.0f steps/s: %.0f%% of headless",
                         agent, env, steps, a, b, 100 * b / a))
        }
    }

    private func throughput(view: Bool) throws -> Double {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlbench-bench-view-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var options = RunOptions(agent: agent, environment: env, outputDirectory: dir)
        options.steps = steps
        options.seed = seed
        options.evaluationEpisodes = 0
        options.progress = .quiet
        let training = try fail { try TrainingRun(options) }
        guard view else { return Double(steps) / (try fail { try training.run() }).wallSeconds }
        var problem: String?
        let result = try fail {
            try LiveTraining.run(training, options: .init(screenshotDirectory: dir)) { message in
                if message.hasPrefix("viewer: no display") { problem = message }
            }
        }
        if let problem {
            FileHandle.standardError.write(Data("error: bench view needs a display (\(problem))\n".utf8))
            throw ExitCode.failure
        }
        return Double(steps) / result.wallSeconds
    }

    private func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
