import Foundation
import Imaging
import Testing
import TestSupport

/// `rlbench sweep` and `rlbench report` through the built binary: run folders, resuming, Ctrl-C, the report's
/// table and figures.
@Suite struct SweepCLITests {
    /// 2 learning rates × 2 seeds of Q-learning on FrozenLake: cheap runs, so the sweep's machinery is what is tested.
    static let spec = """
    agents: qlearning
    environments: FrozenLake-v1
    seeds: 2
    steps: 3000
    eval_episodes: 20
    target: 0.3
    hyperparameters:
      learning_rate: [0.1, 0.5]
      gamma: 0.95
    """
    static let names = ["qlearning-FrozenLake-v1-learning_rate=0.1-seed0", "qlearning-FrozenLake-v1-learning_rate=0.1-seed1",
                        "qlearning-FrozenLake-v1-learning_rate=0.5-seed0", "qlearning-FrozenLake-v1-learning_rate=0.5-seed1"]

    func modified(_ url: URL) throws -> Date {
        try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as? Date)
    }

    @Test func sweepRunsResumesAndReports() throws {
        let dir = CLI.temporaryDirectory()
        try Self.spec.write(to: dir.appendingPathComponent("lr.yml"), atomically: true, encoding: .utf8)
        let dry = try CLI.run(["sweep", "lr.yml", "--dry-run"], in: dir)
        #expect(dry.status == 0, "\(dry.err)")
        for name in Self.names { #expect(dry.out.contains("start  \(name): rlbench run qlearning --env FrozenLake-v1"), "\(dry.out)") }
        #expect(dry.out.contains("4 runs in") && dry.out.contains("4 to start, 0 to resume, 0 done"), "\(dry.out)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("sweeps").path), "a dry run writes nothing")

        let first = try CLI.run(["sweep", "lr.yml", "--jobs", "2", "--plain"], in: dir)
        #expect(first.status == 0, "\(first.out)\n\(first.err)")
        #expect(first.out.contains("4 of 4 runs done"), "\(first.out)")
        let sweep = dir.appendingPathComponent("sweeps/lr")
        for name in Self.names {
            let run = sweep.appendingPathComponent(name)
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("eval.json").path), "\(name) has eval.json")
            let config = try String(contentsOf: run.appendingPathComponent("config.yml"), encoding: .utf8)
            #expect(config.contains("learning_rate: \(name.contains("0.1") ? "0.1" : "0.5")") && config.contains("gamma: 0.95"), "\(config)")
            let log = try String(contentsOf: run.appendingPathComponent("sweep.log"), encoding: .utf8)
            #expect(log.contains("run qlearning --env FrozenLake-v1") && log.contains("eval.json: mean"), "the run's command and output: \(log)")
        }
        #expect(FileManager.default.fileExists(atPath: sweep.appendingPathComponent("sweep.yml").path))

        // A run that died before its evaluation (its final files gone, its last checkpoint kept) resumes; a folder with
        // nothing usable starts over; finished runs are left alone.
        let died = sweep.appendingPathComponent(Self.names[1]), empty = sweep.appendingPathComponent(Self.names[2])
        for file in ["eval.json", "final.safetensors"] { try FileManager.default.removeItem(at: died.appendingPathComponent(file)) }
        try FileManager.default.removeItem(at: empty)
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try "n_timesteps: 3000\n".write(to: empty.appendingPathComponent("config.yml"), atomically: true, encoding: .utf8)
        let untouched = try modified(sweep.appendingPathComponent(Self.names[0] + "/eval.json"))
        let plan = try CLI.run(["sweep", "lr.yml", "--dry-run"], in: dir)
        #expect(plan.out.contains("done   \(Self.names[0])") && plan.out.contains("resume \(Self.names[1]): rlbench run --resume")
                && plan.out.contains("start  \(Self.names[2])"), "\(plan.out)")
        let second = try CLI.run(["sweep", "lr.yml", "--plain"], in: dir)
        #expect(second.status == 0, "\(second.out)\n\(second.err)")
        #expect(second.out.contains("4 of 4 runs done (2 before this one)"), "\(second.out)")
        #expect(try modified(sweep.appendingPathComponent(Self.names[0] + "/eval.json")) == untouched)
        for name in Self.names[1...2] {
            #expect(FileManager.default.fileExists(atPath: sweep.appendingPathComponent(name + "/eval.json").path), "\(name) finished")
        }
        let resumedLog = try String(contentsOf: died.appendingPathComponent("sweep.log"), encoding: .utf8)
        #expect(resumedLog.contains("run --resume"), "\(resumedLog)")

        // The report: one row per learning rate, its median and worst seed from the runs' eval.json.
        let report = try CLI.run(["report", "sweeps/lr", "--out", "report", "--reps", "200"], in: dir)
        #expect(report.status == 0, "\(report.err)")
        let markdown = try String(contentsOf: dir.appendingPathComponent("report/report.md"), encoding: .utf8)
        for rate in ["0.1", "0.5"] {
            let means = try [0, 1].map { seed -> Double in
                let data = try Data(contentsOf: sweep.appendingPathComponent("qlearning-FrozenLake-v1-learning_rate=\(rate)-seed\(seed)/eval.json"))
                return try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["mean"] as? Double)
            }
            let median = String(format: "%.3f", (means[0] + means[1]) / 2), worst = String(format: "%.3f", means.min()!)
            let row = "| qlearning | FrozenLake-v1 | learning_rate=\(rate) | 3,000 steps | 2 | \(median) |"
            #expect(markdown.contains(row), "no row \(row) in\n\(markdown)")
            // The spec's target, and whether the median reaches it.
            let reached = (means[0] + means[1]) / 2 >= 0.3 ? "yes" : "no"
            #expect(markdown.contains("| \(worst) (seed \(means[0] <= means[1] ? 0 : 1)) | ≥ 0.300 | \(reached) |"), "worst seed and target of \(rate)")
        }
        #expect(markdown.contains("Best of 2 settings by IQM"), "\(markdown)")
        #expect(markdown.contains("| FrozenLake-v1 |") && markdown.contains("| qlearning | 1 |"), "the aggregates: \(markdown)")
        for figure in ["curves-qlearning-FrozenLake-v1.png", "hyperparameter-qlearning-FrozenLake-v1-learning_rate.png",
                       "aggregates.png", "performance-profile.png"] {
            #expect(markdown.contains("(\(figure))"), "\(figure) is linked")
            let image = try PNG.decode(try Data(contentsOf: dir.appendingPathComponent("report/\(figure)")))
            #expect(image.width >= 400 && image.height >= 100, "\(figure)")
        }
    }

    /// Ctrl-C stops the sweep and its children, which save their checkpoints (exit 130); the same command continues
    /// them with --resume and finishes every run.
    @Test func interruptStopsChildrenAndARerunContinues() throws {
        let dir = CLI.temporaryDirectory()
        try "agents: ppo\nenvironments: CartPole-v1\nseeds: 2\nsteps: 60000\neval_episodes: 5\n"
            .write(to: dir.appendingPathComponent("s.yml"), atomically: true, encoding: .utf8)
        let running = try CLI.start(["sweep", "s.yml", "--jobs", "2", "--plain"], in: dir)
        let lasts = ["ppo-CartPole-v1-seed0", "ppo-CartPole-v1-seed1"].map { dir.appendingPathComponent("sweeps/s/\($0)/last.safetensors") }
        var waited = 0
        while !lasts.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) }) && running.isRunning && waited < 120_000 {
            usleep(20_000); waited += 20
        }
        kill(running.process.processIdentifier, SIGINT)
        let stopped = running.finish()
        let evals = lasts.map { $0.deletingLastPathComponent().appendingPathComponent("eval.json") }
        let unfinished = evals.filter { !FileManager.default.fileExists(atPath: $0.path) }.count
        try #require(unfinished > 0, "both runs finished before the interrupt: \(stopped.out)")
        #expect(stopped.status == 130, "\(stopped.out)\n\(stopped.err)")
        #expect(stopped.out.contains("stopped: \(unfinished) runs left"), "\(stopped.out)")
        let plan = try CLI.run(["sweep", "s.yml", "--dry-run"], in: dir)
        #expect(plan.out.contains("\(unfinished) to resume"), "the stopped runs saved checkpoints: \(plan.out)")
        let rerun = try CLI.run(["sweep", "s.yml", "--plain"], in: dir)
        #expect(rerun.status == 0, "\(rerun.out)\n\(rerun.err)")
        #expect(evals.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
        for last in lasts {
            let inspected = try CLI.run(["inspect", last.deletingLastPathComponent().appendingPathComponent("final.safetensors").path])
            let step = try #require(inspected.out.firstMatch(of: /\n  step: (\d+)/).flatMap { Int($0.1) }, "\(inspected.out)")
            #expect(step >= 60000 && step < 60000 + 256, "resumed to the end: \(step)")
        }
    }

    @Test func specErrorsNameTheKeyAndFile() throws {
        let dir = CLI.temporaryDirectory()
        try "agents: ppo\nenvironments: CartPole-v1\nhyperparameters:\n  learning_rate: uniform(1, 0)\nsamples: 2\n"
            .write(to: dir.appendingPathComponent("bad.yml"), atomically: true, encoding: .utf8)
        let result = try CLI.run(["sweep", "bad.yml"], in: dir)
        #expect(result.status != 0)
        #expect(result.err.contains("bad.yml: hyperparameters.learning_rate: expected uniform(a, b) with numbers a < b"), "\(result.err)")
        let missing = try CLI.run(["sweep", "nowhere.yml"], in: dir)
        #expect(missing.status != 0 && missing.err.contains("nowhere.yml"), "\(missing.err)")
        let unreachable = try CLI.run(["sweep", "bad.yml", "--address", "127.0.0.1:1"], in: dir)
        #expect(unreachable.status != 0 && unreachable.err.contains("--backend ray"), "\(unreachable.err)")
        try "agents: qlearning\nenvironments: FrozenLake-v1\nsteps: 100\n".write(to: dir.appendingPathComponent("ok.yml"), atomically: true, encoding: .utf8)
        let port = try SweepCLITests.freePort()
        let noCluster = try CLI.run(["sweep", "ok.yml", "--backend", "ray", "--address", "127.0.0.1:\(port)"], in: dir)
        #expect(noCluster.status != 0 && noCluster.err.contains("no Ray cluster reachable at 127.0.0.1:\(port)"), "\(noCluster.err)")
    }

    /// The aggregates row under its header: with the references given as random 0 and target 1, the normalized
    /// scores are the returns, so each column's value is checked against the runs' eval.json.
    @Test func aggregatesSitUnderTheirNames() throws {
        let dir = CLI.temporaryDirectory()
        try "agents: ppo\nenvironments: CartPole-v1\nseeds: 4\nsteps: 2048\neval_episodes: 5\n"
            .write(to: dir.appendingPathComponent("a.yml"), atomically: true, encoding: .utf8)
        try "CartPole-v1: {random: 0, target: 1}\n".write(to: dir.appendingPathComponent("scores.yml"), atomically: true, encoding: .utf8)
        let sweep = try CLI.run(["sweep", "a.yml", "--plain"], in: dir)
        #expect(sweep.status == 0, "\(sweep.out)\n\(sweep.err)")
        let report = try CLI.run(["report", "sweeps/a", "--out", "report", "--reps", "200", "--scores", "scores.yml"], in: dir)
        #expect(report.status == 0, "\(report.err)")
        let returns = try (0..<4).map { seed -> Double in
            let data = try Data(contentsOf: dir.appendingPathComponent("sweeps/a/ppo-CartPole-v1-seed\(seed)/eval.json"))
            return try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["mean"] as? Double)
        }.sorted()
        try #require(Set(returns).count > 2, "the seeds' returns differ enough to tell the statistics apart: \(returns)")
        let mean = returns.reduce(0, +) / 4, iqm = (returns[1] + returns[2]) / 2
        let markdown = try String(contentsOf: dir.appendingPathComponent("report/report.md"), encoding: .utf8)
        let lines = markdown.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.hasPrefix("| agent | environments |") }, "\(markdown)")
        let row = try #require(lines.first { $0.hasPrefix("| ppo | 1 |") }, "\(markdown)")
        let names = header.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        func value(_ name: String) throws -> Double {
            let column = try #require(names.firstIndex(of: name), "no column \(name) in \(header)")
            return try #require(Double(cells[column].split(separator: " ")[0]), "\(row)")
        }
        // One environment: the median of its mean is the mean; the IQM trims a run at each end.
        let (meanColumn, medianColumn, iqmColumn) = (try value("mean"), try value("median"), try value("IQM"))
        #expect(abs(meanColumn - mean) < 0.06 && abs(medianColumn - mean) < 0.06, "\(header)\n\(row)\n\(returns)")
        #expect(abs(iqmColumn - iqm) < 0.06, "\(header)\n\(row)\n\(returns)")
    }

    /// Successive halving: every setting to the first budget, then the better half (by IQM over seeds) on to the
    /// next, resumed; the choice is the one the same runs stopped at the first budget give, and a rerun changes nothing.
    @Test func halvingKeepsTheBetterSettings() throws {
        let dir = CLI.temporaryDirectory()
        let base = "agents: qlearning\nenvironments: FrozenLake-v1\nseeds: 2\neval_episodes: 50\n"
            + "hyperparameters:\n  learning_rate: [0.02, 0.1, 0.5, 0.9]\n"
        try (base + "halving: {steps: [2000, 6000, 12000], keep: 0.5}\n").write(to: dir.appendingPathComponent("h.yml"), atomically: true, encoding: .utf8)
        try (base + "steps: 2000\n").write(to: dir.appendingPathComponent("first.yml"), atomically: true, encoding: .utf8)
        let halving = try CLI.run(["sweep", "h.yml", "--plain"], in: dir)
        #expect(halving.status == 0, "\(halving.out)\n\(halving.err)")
        #expect(halving.out.contains("rung 1: 8 runs to 2000; 4 kept") && halving.out.contains("rung 2: 4 runs to 6000; 2 kept")
                && halving.out.contains("rung 3: 2 runs to 12000\n"), "\(halving.out)")
        let first = try CLI.run(["sweep", "first.yml", "--plain"], in: dir)
        #expect(first.status == 0, "\(first.err)")

        func mean(_ folder: String) throws -> Double {
            let data = try Data(contentsOf: dir.appendingPathComponent(folder + "/eval.json"))
            return try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["mean"] as? Double)
        }
        func steps(_ folder: String) throws -> String {
            let config = try String(contentsOf: dir.appendingPathComponent(folder + "/config.yml"), encoding: .utf8)
            return try #require(config.firstMatch(of: /n_timesteps: (\d+)/).map { String($0.1) })
        }
        let rates = ["0.02", "0.1", "0.5", "0.9"]
        // With two seeds the IQM is their mean; ties keep the earlier setting.
        let scores = try rates.map { rate in try [0, 1].map { try mean("sweeps/first/qlearning-FrozenLake-v1-learning_rate=\(rate)-seed\($0)") }.reduce(0, +) / 2 }
        let best = Set(rates.indices.sorted { (scores[$0], -$0) > (scores[$1], -$1) }.prefix(2).map { rates[$0] })
        for rate in rates {
            let trained = try steps("sweeps/h/qlearning-FrozenLake-v1-learning_rate=\(rate)-seed0")
            #expect(best.contains(rate) ? trained != "2000" : trained == "2000", "learning_rate \(rate): \(trained) steps; scores \(scores)")
        }
        let record = try String(contentsOf: dir.appendingPathComponent("sweeps/h/halving.json"), encoding: .utf8)
        let again = try CLI.run(["sweep", "h.yml", "--plain"], in: dir)
        #expect(again.status == 0 && again.out.contains("runs' rungs done before this one"), "\(again.out)")
        #expect(try String(contentsOf: dir.appendingPathComponent("sweeps/h/halving.json"), encoding: .utf8) == record)

        let dry = try CLI.run(["sweep", "h.yml", "--dry-run"], in: dir)
        #expect(dry.status == 0 && dry.out.contains("successive halving: the runs above train to 2000"), "\(dry.out)")
        try (base + "steps: 100\nhalving: {steps: [2000, 6000], keep: 0.5}\n").write(to: dir.appendingPathComponent("both.yml"), atomically: true, encoding: .utf8)
        let both = try CLI.run(["sweep", "both.yml"], in: dir)
        #expect(both.status != 0 && both.err.contains("both.yml: steps: halving.steps sets the budgets"), "\(both.err)")
    }

    /// `--backend slurm --emit` writes a job array script, one task per run; a task (run here by bash with the
    /// variable Slurm sets) runs its one run with `--task N`, so the array's tasks together make the sweep.
    @Test func slurmArrayTasksEachRunTheirRun() throws {
        let dir = CLI.temporaryDirectory()
        try "agents: qlearning\nenvironments: FrozenLake-v1\nseeds: 3\nsteps: 2000\neval_episodes: 5\n"
            .write(to: dir.appendingPathComponent("s.yml"), atomically: true, encoding: .utf8)
        let emitted = try CLI.run(["sweep", "s.yml", "--backend", "slurm", "--emit", "job.sh"], in: dir)
        #expect(emitted.status == 0 && emitted.out.contains("a job array of 3 tasks"), "\(emitted.out)\n\(emitted.err)")
        let script = try String(contentsOf: dir.appendingPathComponent("job.sh"), encoding: .utf8)
        #expect(script.contains("#SBATCH --array=0-2\n") && script.contains("--task \"$SLURM_ARRAY_TASK_ID\""), "\(script)")
        #expect(FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("job.sh").path))

        let task = try CLI.runTool("/bin/bash", ["job.sh"], in: dir, environment: ["SLURM_ARRAY_TASK_ID": "1"])
        #expect(task.status == 0, "\(task.out)\n\(task.err)")
        let evals = (0..<3).map { FileManager.default.fileExists(atPath: dir.appendingPathComponent("sweeps/s/qlearning-FrozenLake-v1-seed\($0)/eval.json").path) }
        #expect(evals == [false, true, false], "task 1 runs seed 1 only")

        let outOfRange = try CLI.run(["sweep", "s.yml", "--task", "3"], in: dir)
        #expect(outOfRange.status != 0 && outOfRange.err.contains("--task 3: the spec makes 3 runs (0 to 2)"), "\(outOfRange.err)")
        let noFile = try CLI.run(["sweep", "s.yml", "--backend", "slurm"], in: dir)
        #expect(noFile.status != 0 && noFile.err.contains("add --emit FILE"), "\(noFile.err)")
    }

    /// A TCP port nobody listens on now (the kernel's choice for a socket bound to port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound, "cannot bind a socket on 127.0.0.1")
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    static func listening(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A real Ray head on 127.0.0.1 (PyPI's ray, `ray start --head --block`, stopped by SIGTERM afterwards, which
    /// ends every process it started) runs a two-run sweep: each run is a Ray task that runs rlbench on the node.
    @Test func rayBackendRunsASweepOnALocalHead() throws {
        let ray = try #require(CLI.executable(named: "ray"), "the ray command is missing (scripts/setup --for-tests installs PyPI's ray)")
        let dir = CLI.temporaryDirectory()
        // Ray's socket paths must fit in 107 bytes: a short temporary folder of its own.
        let temp = URL(fileURLWithPath: "/tmp/rlbench-ray-\(getpid())")
        defer { try? FileManager.default.removeItem(at: temp) }
        let port = try Self.freePort()
        // Loopback only (Ray otherwise advertises the machine's outward address), no token, no usage report.
        let environment = ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"]
        // The test process may hold SIGTERM blocked, and a child inherits that: python unblocks it before it becomes
        // `ray start`, so the SIGTERM below reaches it.
        let python = try #require(CLI.executable(named: "python3"))
        let unblocked = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT}); "
            + "os.execv(sys.argv[1], sys.argv[1:])"
        let head = try CLI.startTool(python, ["-c", unblocked, ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                                              "--port", String(port), "--num-cpus", "2", "--include-dashboard", "false",
                                              "--disable-usage-stats", "--temp-dir", temp.path], environment: environment)
        defer {
            kill(head.process.processIdentifier, SIGTERM)
            _ = head.finish()
        }
        var waited = 0
        while !Self.listening(port) && head.isRunning && waited < 60 { sleep(1); waited += 1 }
        try #require(Self.listening(port), "the Ray head did not start: \(head.isRunning ? "" : head.finish().err)")

        try "agents: qlearning\nenvironments: FrozenLake-v1\nseeds: 2\nsteps: 2000\neval_episodes: 10\n"
            .write(to: dir.appendingPathComponent("r.yml"), atomically: true, encoding: .utf8)
        let sweep = try CLI.run(["sweep", "r.yml", "--backend", "ray", "--address", "127.0.0.1:\(port)", "--plain"],
                                in: dir, environment: environment)
        #expect(sweep.status == 0, "\(sweep.out)\n\(sweep.err)")
        #expect(sweep.out.contains("2 of 2 runs done"), "\(sweep.out)")
        for seed in 0..<2 {
            let run = dir.appendingPathComponent("sweeps/r/qlearning-FrozenLake-v1-seed\(seed)")
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("eval.json").path), "seed \(seed)")
            let log = (try? String(contentsOf: run.appendingPathComponent("sweep.log"), encoding: .utf8)) ?? ""
            #expect(log.contains("eval.json: mean"), "the task's rlbench wrote its output to the run's log: \(log)")
        }
    }
}
