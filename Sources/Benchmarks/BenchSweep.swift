import ArgumentParser
import CLIKit
import Foundation
import Sweeps
import Training

/// `rlbench bench sweep`: a sweep's throughput on this machine's cores against the same runs one after another.
struct BenchSweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Sweep throughput: N seeds of PPO on CartPole-v1, --jobs (default: one per core) against one run at a time.",
        discussion: """
            Both sweeps run the same `rlbench run` children into fresh temporary folders (removed afterwards), \
            without the final evaluation: first one at a time (each run free to use every core, as a run started by \
            hand), then `--jobs` at a time (each with RLBENCH_CORES=1). With --json, one object per line: \
            {"name": "sweep_runs_per_min", "jobs": ..., "runs": ..., "seconds": ..., "cpu_seconds_per_run": ..., "value": ..., \
            "unit": "runs/min"} \
            for each, then {"name": "sweep_speedup", "jobs": ..., "value": ...}.
            """
    )

    @Flag(name: .long, help: "Print one JSON object per line instead of a table.")
    var json = false

    @Option(name: .long, help: "Seeds (runs) in each sweep.", transform: parseCount("--seeds", in: 1...1000))
    var seeds = 10

    @Option(name: .long, help: "Environment steps per run (default: the tuned 1e5).", transform: parseCount("--steps", in: 1...100_000_000))
    var steps: Int?

    @Option(name: .long, help: "Runs at a time in the parallel sweep (default: one per core).", transform: parseCount("--jobs", in: 2...4096))
    var jobs: Int?

    func run() throws {
        MachineLine.emit(json: json)
        let binary = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                         ?? CommandLine.arguments[0])
        let yaml = "agents: ppo\nenvironments: CartPole-v1\nseeds: \(seeds)\neval_episodes: 0\n" + (steps.map { "steps: \($0)\n" } ?? "")
        let runs = try fail { try SweepSpec(yaml: yaml, source: "bench sweep").runs() }
        let parallel = max(2, jobs ?? LocalBackend.defaultJobs)
        var seconds: [Int: Double] = [:]
        for jobs in [1, parallel] {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rlbench-bench-sweep-\(getpid())-\(jobs)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let start = Date(), cpuBefore = Self.childCPUSeconds()
            let outcome = try fail {
                try Sweep(folder: folder, runs: runs, binary: binary).execute(on: LocalBackend(jobs: jobs), progress: .quiet) { false }
            }
            guard outcome.failures.isEmpty else {
                throw fail(SweepError("a run failed: \(outcome.failures[0].name): \(outcome.failures[0].message)"))
            }
            seconds[jobs] = Date().timeIntervalSince(start)
            let perMinute = Double(runs.count) / seconds[jobs]! * 60
            let cpuPerRun = (Self.childCPUSeconds() - cpuBefore) / Double(runs.count)
            if json {
                print(String(format: "{\"name\": \"sweep_runs_per_min\", \"jobs\": %d, \"runs\": %d, \"seconds\": %.2f, \"cpu_seconds_per_run\": %.2f, \"value\": %.2f, \"unit\": \"runs/min\"}",
                             jobs, runs.count, seconds[jobs]!, cpuPerRun, perMinute))
            } else {
                print(String(format: "%2d at a time: %d runs in %.1f s, %.2f runs/min, %.2f CPU s a run", jobs, runs.count,
                             seconds[jobs]!, perMinute, cpuPerRun))
            }
            fflush(nil)
        }
        let speedup = seconds[1]! / seconds[parallel]!
        // (On a machine busy with other work both sweeps get a share of the cores, and the ratio says little; the CPU
        // time a run takes in each mode does not depend on the load.)
        if json {
            print(String(format: "{\"name\": \"sweep_speedup\", \"jobs\": %d, \"value\": %.3f}", parallel, speedup))
        } else {
            print(String(format: "speed-up of %d at a time over one at a time: %.2f×", parallel, speedup))
        }
    }
}

extension BenchSweep {
    /// User and system CPU seconds of every child that has ended and been waited for so far.
    static func childCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
