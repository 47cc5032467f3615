import Agents
import ArgumentParser
import Foundation

/// `rlbench bench agents`: full training runs with the zoo's CartPole hyperparameters, timed.
struct BenchAgents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agents",
        abstract: "Time full training runs (PPO 1e5, DQN 5e4, A2C 5e5 steps on CartPole-v1, zoo hyperparameters).")

    @Flag(help: "One JSON object per line.")
    var json = false

    @Option(help: "Agents to time (repeatable).")
    var agent: [String] = ["ppo", "dqn", "a2c"]

    @Option(help: "Seed.")
    var seed: UInt64 = 1

    func run() throws {
        // Several agents: each in a process of its own, so that its wall time and peak memory are its alone.
        if agent.count > 1 {
            for name in agent {
                let child = Process()
                child.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
                child.arguments = ["bench", "agents", "--agent", name, "--seed", String(seed)] + (json ? ["--json"] : [])
                try child.run()
                child.waitUntilExit()
                guard child.terminationStatus == 0 else { throw ExitCode(child.terminationStatus) }
            }
            return
        }
        for name in agent {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlbench-bench-\(name)-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            var options = RunOptions(agent: name, environment: "CartPole-v1", outputDirectory: dir)
            options.seed = seed
            options.progress = .quiet
            Memory.resetPeak()
            let result = try fail { try TrainingRun(options).run() }
            let wall = result.wallSeconds
            let e = result.evaluation!
            if json {
                print("{\"name\": \"train\", \"agent\": \"\(name)\", \"env\": \"CartPole-v1\", \"seed\": \(seed), \"steps\": \(result.steps), "
                      + "\"wall_s\": \(wall), \"steps_per_s\": \(Double(result.steps) / wall), \"eval_mean\": \(e.mean), "
                      + "\"eval_std\": \(e.std), \"peak_rss_mb\": \(Memory.peakMB)}")
            } else {
                print(String(format: "%@ on CartPole-v1: %d steps in %.1f s (%.0f steps/s, includes the 100-episode evaluation), eval %.1f ± %.1f, peak RSS %.0f MB",
                             name, result.steps, wall, Double(result.steps) / wall, e.mean, e.std, Memory.peakMB))
            }
            fflush(nil)
        }
    }
}

/// `rlbench bench learn`: the learning table — median and worst evaluation over several seeds.
struct BenchLearn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learn",
        abstract: "Train every (agent, environment) of the README table over several seeds; print median and worst eval.")

    static let table: [(agent: String, env: String, target: Double)] = [
        ("ppo", "CartPole-v1", 475), ("dqn", "CartPole-v1", 475), ("a2c", "CartPole-v1", 475), ("reinforce", "CartPole-v1", 475),
        ("dqn", "Acrobot-v1", -100), ("ppo", "Acrobot-v1", -100), ("dqn", "MountainCar-v0", -110),
        ("ppo", "Pendulum-v1", -250), ("ppo", "MountainCarContinuous-v0", 90),
        ("qlearning", "FrozenLake-v1", 0.70), ("qlearning", "CliffWalking-v1", -13), ("sarsa", "CliffWalking-v1", -17),
    ]

    @Option(help: "Seeds per row.")
    var seeds = 5

    @Option(help: "Only rows of this agent (repeatable).")
    var agent: [String] = []

    @Option(help: "Only rows of this environment id (repeatable).")
    var env: [String] = []

    @Flag(help: "One JSON object per line.")
    var json = false

    func run() throws {
        if !json { print("agent      env                        target   median    worst   wall s/seed") }
        for row in Self.table where (agent.isEmpty || agent.contains(row.agent)) && (env.isEmpty || env.contains(row.env)) {
            var means: [Double] = [], walls: [Double] = []
            for seed in 0..<UInt64(seeds) {
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlbench-learn-\(UUID().uuidString)")
                defer { try? FileManager.default.removeItem(at: dir) }
                var options = RunOptions(agent: row.agent, environment: row.env, outputDirectory: dir)
                options.seed = seed
                options.progress = .quiet
                let result = try fail { try TrainingRun(options).run() }
                means.append(result.evaluation!.mean)
                walls.append(result.wallSeconds)
            }
            let sorted = means.sorted()
            let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            let wall = walls.reduce(0, +) / Double(walls.count)
            if json {
                print("{\"name\": \"learn\", \"agent\": \"\(row.agent)\", \"env\": \"\(row.env)\", \"seeds\": \(seeds), \"median\": \(median), "
                      + "\"worst\": \(sorted.first!), \"target\": \(row.target), \"wall_s\": \(wall), "
                      + "\"returns\": [\(means.map { "\($0)" }.joined(separator: ", "))]}")
            } else {
                print(row.agent.padding(toLength: 11, withPad: " ", startingAt: 0) + row.env.padding(toLength: 26, withPad: " ", startingAt: 0)
                      + String(format: "%7.2f  %7.2f  %7.2f  %8.1f %@", row.target, median, sorted.first!, wall, median >= row.target ? "" : "  (below target)")
                      + "  seeds: " + means.map { String(format: "%.2f", $0) }.joined(separator: " "))
            }
            fflush(nil)
        }
    }
}
