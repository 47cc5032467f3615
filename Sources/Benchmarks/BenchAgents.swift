import Agents
import ArgumentParser
import CLIKit
import Environments
import Foundation
import Support

/// `rlbench bench agents`: full training runs with the tuned hyperparameters (by default the zoo's CartPole ones, the
/// issue's benchmark), timed; with `--sb3`, the same runs in Stable-Baselines3, alternating with rlbench's, so that
/// both see the same machine at the same time.
struct BenchAgents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agents",
        abstract: "Time full training runs with the tuned defaults (on CartPole-v1: PPO 1e5, DQN 5e4, A2C 5e5 steps).",
        discussion: """
        rlbench's wall time includes the 100-episode evaluation. With --sb3, python3 must import stable_baselines3 \
        (pip install stable-baselines3==2.9.2; recurrent-ppo: sb3-contrib==2.9.2); it trains with the same tuned \
        hyperparameters (normalize: its VecNormalize) and 2 torch threads, and its wall time is model.learn() alone.
        """)

    @Flag(help: "One JSON object per line.")
    var json = false

    @Option(help: "Agents to time (repeatable).")
    var agent: [String] = ["ppo", "dqn", "a2c"]

    @Option(parsing: .unconditional, help: "Seed.", transform: parseSeed)
    var seed: UInt64 = 1

    @Option(parsing: .unconditional, help: "Runs per agent, alternating between agents (and with Stable-Baselines3); then a median per agent.")
    var runs = 1

    @Flag(help: "Also time Stable-Baselines3 on the same runs (python3 with stable_baselines3) and print the speed-up.")
    var sb3 = false

    @Option(help: "Environment id; the agents train with their tuned defaults for it.")
    var env = "CartPole-v1"

    @Option(parsing: .unconditional, help: "Total environment steps instead of the tuned n_timesteps (both sides with --sb3).",
            transform: parseCount("--steps", in: 1...Limits.timesteps))
    var steps: Int?

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1, got \(runs)") }
        do { _ = try Registry.entry(env) } catch { throw ValidationError("\(error)") }
        if sb3, let other = agent.first(where: { !StableBaselines3.agents.contains($0) }) {
            throw ValidationError("--sb3 times \(StableBaselines3.agents.joined(separator: ", ")), not '\(other)'")
        }
    }

    func run() throws {
        if agent.count == 1 && runs == 1 && !sb3 {
            emit(try timeHere(agent[0]))
            return
        }
        if sb3 {
            try fail {
                for name in agent { try StableBaselines3.checkComparable(agent: name, environment: env) }
                try StableBaselines3.checkInstalled()
            }
        }
        MachineLine.emit(json: json)
        // Each run in a process of its own, so that its wall time and peak memory are its alone.
        var ours: [String: [Double]] = [:], theirs: [String: [Double]] = [:]
        for _ in 0..<runs {
            for name in agent {
                let timing = try timeInChild(name)
                emit(timing)
                ours[name, default: []].append(timing.wallSeconds)
                if sb3 {
                    let baseline = try fail { try StableBaselines3.time(agent: name, environment: env, seed: seed, steps: steps) }
                    emit(baseline)
                    theirs[name, default: []].append(baseline.wallSeconds)
                }
            }
        }
        guard runs > 1 || sb3 else { return }
        for name in agent { emitSummary(name, ours[name]!, theirs[name]) }
    }

    /// Trains `name` in this process and times it.
    private func timeHere(_ name: String) throws -> TrainTiming {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlbench-bench-\(name)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var options = RunOptions(agent: name, environment: env, outputDirectory: dir)
        options.seed = seed
        options.steps = steps
        options.progress = .quiet
        Memory.resetPeak()
        let result = try fail { try TrainingRun(options).run() }
        let e = result.evaluation!
        return TrainTiming(name: "train", agent: name, env: env, seed: seed, steps: result.steps, wallSeconds: result.wallSeconds,
                           evalMean: e.mean, evalStd: e.std, peakMB: Memory.peakMB)
    }

    /// Runs `rlbench bench agents --agent name --json` as a child process and reads its one line.
    private func timeInChild(_ name: String) throws -> TrainTiming {
        let child = Process()
        child.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["bench", "agents", "--agent", name, "--env", env, "--seed", String(seed), "--json"]
            + (steps.map { ["--steps", String($0)] } ?? [])
        let out = Pipe()
        child.standardOutput = out
        try child.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        guard child.terminationStatus == 0 else { throw ExitCode(child.terminationStatus) }
        guard let timing = TrainTiming(jsonLine: data) else {
            throw ValidationError("bench agents: could not read the timing of '\(name)' from its run")
        }
        return timing
    }

    private func emit(_ t: TrainTiming) {
        if json {
            print(t.jsonLine)
        } else {
            let who = t.name == "train" ? t.agent : "\(t.agent) (Stable-Baselines3 \(t.versions ?? ""))"
            let what = t.name == "train" ? "includes the 100-episode evaluation" : "model.learn() alone"
            print(String(format: "%@ on %@: %d steps in %.2f s (%.0f steps/s, %@), eval %.1f ± %.1f, peak RSS %.0f MB",
                         who, t.env, t.steps, t.wallSeconds, Double(t.steps) / t.wallSeconds, what,
                         t.evalMean, t.evalStd, t.peakMB))
        }
        fflush(nil)
    }

    private func emitSummary(_ name: String, _ ours: [Double], _ theirs: [Double]?) {
        let mine = median(ours)
        if json {
            var line = "{\"name\": \"summary\", \"agent\": \"\(name)\", \"env\": \"\(env)\", \"runs\": \(ours.count), "
                + "\"wall_s_median\": \(mine), \"wall_s_min\": \(ours.min()!), \"wall_s_max\": \(ours.max()!)"
            if let theirs {
                line += ", \"sb3_wall_s_median\": \(median(theirs)), \"sb3_wall_s_min\": \(theirs.min()!), "
                    + "\"sb3_wall_s_max\": \(theirs.max()!), \"speedup\": \(median(theirs) / mine)"
            }
            print(line + "}")
        } else {
            var line = String(format: "%@: median %.2f s over %d runs (%.2f–%.2f)", name, mine, ours.count, ours.min()!, ours.max()!)
            if let theirs {
                line += String(format: "; Stable-Baselines3 median %.1f s (%.1f–%.1f); %.1f× faster", median(theirs),
                               theirs.min()!, theirs.max()!, median(theirs) / mine)
            }
            print(line)
        }
        fflush(nil)
    }

}

/// The middle value of `values` (the mean of the two middle ones for an even count).
func median(_ values: [Double]) -> Double {
    let s = values.sorted(), n = s.count
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}

/// One timed training run: rlbench's (`"name": "train"`) or Stable-Baselines3's (`"sb3_train"`).
struct TrainTiming {
    let name, agent, env: String
    let seed: UInt64
    let steps: Int
    let wallSeconds, evalMean, evalStd, peakMB: Double
    /// Stable-Baselines3's and torch's versions, for a baseline run.
    var versions: String? = nil

    var jsonLine: String {
        "{\"name\": \"\(name)\", \"agent\": \"\(agent)\", \"env\": \"\(env)\", \"seed\": \(seed), "
            + "\"steps\": \(steps), \"wall_s\": \(wallSeconds), \"steps_per_s\": \(Double(steps) / wallSeconds), "
            + "\"eval_mean\": \(evalMean), \"eval_std\": \(evalStd), \"peak_rss_mb\": \(peakMB)"
            + (versions.map { ", \"versions\": \"\($0)\"" } ?? "") + "}"
    }

    init(name: String, agent: String, env: String, seed: UInt64, steps: Int, wallSeconds: Double, evalMean: Double,
         evalStd: Double, peakMB: Double, versions: String? = nil) {
        self.name = name; self.agent = agent; self.env = env; self.seed = seed; self.steps = steps; self.wallSeconds = wallSeconds
        self.evalMean = evalMean; self.evalStd = evalStd; self.peakMB = peakMB; self.versions = versions
    }

    /// Reads the first JSON line of `data` (what `jsonLine` writes).
    init?(jsonLine data: Data) {
        guard let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let name = object["name"] as? String, let agent = object["agent"] as? String, let env = object["env"] as? String,
              let seed = (object["seed"] as? NSNumber)?.uint64Value, let steps = (object["steps"] as? NSNumber)?.intValue,
              let wall = (object["wall_s"] as? NSNumber)?.doubleValue, let mean = (object["eval_mean"] as? NSNumber)?.doubleValue,
              let std = (object["eval_std"] as? NSNumber)?.doubleValue, let peak = (object["peak_rss_mb"] as? NSNumber)?.doubleValue
        else { return nil }
        self.init(name: name, agent: agent, env: env, seed: seed, steps: steps, wallSeconds: wall, evalMean: mean, evalStd: std,
                  peakMB: peak, versions: object["versions"] as? String)
    }
}

/// The same training run in Stable-Baselines3, through `python3`: the tuned file's keys are SB3's keyword arguments
/// (the zoo's format), `lin_<x>` becomes a linear schedule, and the policy is evaluated as rlbench evaluates its own
/// (deterministic, 100 episodes).
enum StableBaselines3 {
    static let agents = ["ppo", "dqn", "a2c", "recurrent-ppo"]

    enum Failure: Error, CustomStringConvertible {
        case notInstalled
        case notComparable(String)
        case failed(String)
        var description: String {
            switch self {
            case .notInstalled: "--sb3: python3 cannot import stable_baselines3 (pip install stable-baselines3==2.9.2)"
            case let .notComparable(reason): "--sb3: \(reason)"
            case let .failed(reason): "--sb3: the Stable-Baselines3 run failed: \(reason)"
            }
        }
    }

    /// Fails with `notInstalled` unless python3 imports Stable-Baselines3, torch and Gymnasium.
    static func checkInstalled() throws {
        _ = try python(["--probe"])
    }

    /// Fails, before anything trains, when `agent` on `environment` has no tuned config.
    static func checkComparable(agent: String, environment: String) throws {
        guard try TunedDefaults.json(agent: agent, environment: environment) != nil else {
            throw Failure.notComparable("rlbench has no tuned config for \(agent) on \(environment)")
        }
    }

    /// Trains `agent` on `environment` in Stable-Baselines3 with rlbench's tuned hyperparameters (for `steps` steps
    /// instead of `n_timesteps` when given).
    static func time(agent: String, environment: String, seed: UInt64, steps: Int? = nil) throws -> TrainTiming {
        guard var config = try TunedDefaults.json(agent: agent, environment: environment) else {
            throw Failure.failed("rlbench has no tuned config for \(agent) on \(environment)")
        }
        if let steps, var object = try JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: Any] {
            object["n_timesteps"] = steps
            config = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
        guard let timing = TrainTiming(jsonLine: try python([agent, environment, String(seed), config])) else {
            throw Failure.failed("python3 printed no timing")
        }
        return timing
    }

    /// Runs the peer script `sb3_train.py` with `arguments` and returns its standard output.
    private static func python(_ arguments: [String]) throws -> Data {
        // stderr goes to a file, so that a chatty run cannot fill a pipe and stall; its tail explains a failure.
        let errorLog = FileManager.default.temporaryDirectory.appendingPathComponent("rlbench-sb3-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errorLog) }
        let status: Int32, data: Data
        do { (status, data) = try Peer.run("sb3_train", arguments, errors: try FileHandle(forWritingTo: errorLog)) } catch {
            throw Failure.failed("cannot start python3: \(error)")
        }
        let errors = (try? Data(contentsOf: errorLog)) ?? Data()
        if status == 3 { throw Failure.notInstalled }
        guard status == 0 else {
            let tail = String(decoding: errors, as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: " / ")
            throw Failure.failed(tail.isEmpty ? "exit status \(status)" : tail)
        }
        return data
    }

}

