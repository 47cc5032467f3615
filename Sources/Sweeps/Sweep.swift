import Foundation
import Support
import Training

/// Runs a sweep's runs, each an ordinary `rlbench run` child process with its own folder under the sweep's folder,
/// through a backend (this machine's cores, or a Ray cluster). Resumable: a finished run is skipped, a run that
/// died continues from its checkpoint, a folder with nothing usable starts over.
public struct Sweep {
    /// What a run folder holds, which decides what the sweep does with it.
    public enum RunState: String, Sendable {
        /// `eval.json` exists (or, for a spec without evaluation, `final.safetensors`): skipped.
        case done
        /// It holds a usable checkpoint: `rlbench run --resume`.
        case resume
        /// Absent, or nothing in it can be continued: a new run (into the same folder).
        case start
    }

    public let folder: URL
    public let runs: [SweepRun]
    /// The `rlbench` binary the children run (this process's own, normally).
    public let binary: URL

    public init(folder: URL, runs: [SweepRun], binary: URL) {
        self.folder = folder; self.runs = runs; self.binary = binary
    }

    public func folder(of run: SweepRun) -> URL { folder.appendingPathComponent(run.name) }

    /// Where `run` stands: with a `budget` (a halving's rung), a run is done once its evaluation is of a run trained to
    /// at least that budget.
    public func state(of run: SweepRun, budget: Int? = nil) -> RunState {
        let dir = RunFolder(folder(of: run))
        let finished = run.evaluates ? dir.url.appendingPathComponent("eval.json") : dir.final
        if FileManager.default.fileExists(atPath: finished.path) {
            guard let budget else { return .done }
            if let trained = (try? RunRecord(folder: dir.url))??.budget?.count, trained >= Double(budget) { return .done }
        }
        return (try? dir.resumePoint()) != nil ? .resume : .start
    }

    /// The `rlbench` arguments that take `run` from `state` to done (nil when it is done), to `budget` when given.
    public func arguments(for run: SweepRun, in state: RunState, budget: Int? = nil) -> [String]? {
        let out = folder(of: run).path
        let budgetArguments = (run.halving?.flag).flatMap { flag in budget.map { [flag, String($0)] } } ?? []
        switch state {
        case .done: return nil
        case .resume:
            // The run's own config.yml holds its settings and steps; only the evaluation is a flag of the command.
            let evaluation = run.runArguments.firstIndex(of: "--eval-episodes").map { Array(run.runArguments[$0...($0 + 1)]) } ?? []
            return ["run", "--resume", out, "--plain"] + evaluation + budgetArguments
        case .start: return ["run"] + run.runArguments + budgetArguments + ["--plain", "--out", out]
        }
    }

    /// Each run with its state and the arguments that finish it (for a halving, its first rung), for `--dry-run`.
    public func plan() -> [(run: SweepRun, state: RunState, arguments: [String]?)] {
        runs.map { run in
            let budget = run.halving?.budgets.first
            let state = state(of: run, budget: budget)
            return (run, state, arguments(for: run, in: state, budget: budget))
        }
    }

    /// How a sweep ended.
    public struct Outcome: Sendable {
        public var alreadyDone = 0
        public var finished = 0
        /// Runs stopped by a stop request (they saved a checkpoint; a rerun continues them) or never started.
        public var unfinished = 0
        /// Each failed run's folder name and the last error line of its log.
        public var failures: [(name: String, message: String)] = []
        public var stopped = false
        /// A halving's rungs so far: each one's budget, its runs and the runs it kept for the next (nil for the last
        /// rung, or one that did not finish).
        public var rungs: [(budget: Int, runs: Int, kept: Int?)] = []
    }

    /// Runs every unfinished run through `backend`, one progress line for the whole sweep, until all have ended or
    /// `shouldStop` says so (then the running children are asked to stop, save their checkpoints and exit). A spec
    /// with `halving` runs rung by rung (`executeHalving`).
    public func execute(on backend: SweepBackend, progress style: ProgressStyle,
                        shouldStop: @escaping () -> Bool) throws -> Outcome {
        try Files.makeDirectory(folder)
        if runs.contains(where: { $0.halving != nil }) { return try executeHalving(on: backend, progress: style, shouldStop: shouldStop) }
        return try execute(runs.map { ($0, nil) }, label: "sweep", on: backend, progress: style, shouldStop: shouldStop)
    }

    /// Runs `batch` (each run to its budget, or to its end without one) through `backend`.
    func execute(_ batch: [(run: SweepRun, budget: Int?)], label: String, on backend: SweepBackend, progress style: ProgressStyle,
                 shouldStop: @escaping () -> Bool) throws -> Outcome {
        var outcome = Outcome()
        var jobs: [SweepJob] = []
        for (run, budget) in batch {
            let state = state(of: run, budget: budget)
            guard let arguments = arguments(for: run, in: state, budget: budget) else { outcome.alreadyDone += 1; continue }
            let dir = folder(of: run)
            try Files.makeDirectory(dir)
            jobs.append(SweepJob(index: jobs.count, name: run.name, arguments: [binary.path] + arguments,
                                 log: dir.appendingPathComponent("sweep.log"), resumes: state == .resume))
        }
        var reporter = ProgressReporter(style)
        let start = Date()
        var running = 0, ended = 0
        func draw(force: Bool = false) {
            let total = batch.count, done = outcome.alreadyDone + outcome.finished
            let elapsed = Date().timeIntervalSince(start)
            // Wall time per finished run already counts the runs going on side by side.
            let perRun = outcome.finished > 0 ? elapsed / Double(outcome.finished) : .nan
            let left = Double(jobs.count - ended) * perRun
            var stats = "\(label): \(done)/\(total) runs done"
            if outcome.alreadyDone > 0 { stats += " (\(outcome.alreadyDone) before)" }
            stats += ", \(running) \(backend.startedJobs)"
            if !outcome.failures.isEmpty { stats += ", \(outcome.failures.count) failed" }
            stats += " · \(formatDuration(elapsed))"
            if left.isFinite, ended < jobs.count { stats += ", ~\(formatDuration(left)) left" }
            reporter.draw(fraction: Double(done) / Double(max(total, 1)), stats: stats, force: force)
        }
        draw(force: true)
        let stopping = { shouldStop() }
        try backend.run(jobs, shouldStop: stopping, started: { _ in running += 1; draw() }) { index, status in
            running -= 1; ended += 1
            let job = jobs[index]
            if status == 0 {
                outcome.finished += 1
            } else if shouldStop() && StopRequest.signals.map({ 128 + $0 }).contains(status) {
                // Stopped on request, its checkpoint saved: counted as unfinished below.
            } else {
                outcome.failures.append((job.name, Self.lastError(in: job.log) ?? "exit status \(status); see \(job.log.path)"))
                reporter.finishLine()
                reporter.log("run \(job.name) failed: \(outcome.failures.last!.message) (log: \(job.log.path))")
            }
            draw(force: true)
        } tick: {
            draw()
        }
        outcome.stopped = shouldStop()
        outcome.unfinished = jobs.count - outcome.finished - outcome.failures.count
        reporter.finishLine()
        return outcome
    }

    /// Successive halving: every run to the first rung's budget; then, within each pool (a group's agent and
    /// environment), the settings ranked by the IQM of their seeds' scores, the best `keep` of them (at least one)
    /// resumed to the next budget, and so on. Each rung's choice is written to `halving.json` when made, so a rerun
    /// keeps it even after the kept runs have trained on (their eval.json then tells a later rung's score).
    func executeHalving(on backend: SweepBackend, progress style: ProgressStyle, shouldStop: @escaping () -> Bool) throws -> Outcome {
        let record = folder.appendingPathComponent("halving.json")
        var decided: [[String]] = []
        if FileManager.default.fileExists(atPath: record.path) {
            let object = try JSONSerialization.jsonObject(with: try Files.data(record, maxBytes: 1 << 26)) as? [String: Any]
            guard let rungs = object?["kept"] as? [[String]] else { throw SweepError("\(record.path): expected {\"kept\": [[run names], …]}") }
            decided = rungs
        }
        var total = Outcome()
        var alive = runs
        let rungCount = runs.map { $0.halving?.budgets.count ?? 1 }.max()!
        for rung in 0..<rungCount {
            let batch = alive.filter { rung < ($0.halving?.budgets.count ?? 1) }.map { ($0, $0.halving?.budgets[rung]) }
            let outcome = try execute(batch, label: "rung \(rung + 1)/\(rungCount)", on: backend, progress: style, shouldStop: shouldStop)
            total.alreadyDone += outcome.alreadyDone
            total.finished += outcome.finished
            total.failures += outcome.failures
            total.unfinished += outcome.unfinished
            total.stopped = outcome.stopped
            if outcome.stopped || !outcome.failures.isEmpty || rung == rungCount - 1 {
                total.rungs.append((batch.first?.1 ?? 0, batch.count, nil))
                return total
            }
            let kept: Set<String>
            if rung < decided.count {
                kept = Set(decided[rung])
            } else {
                kept = try keptRuns(of: batch.map(\.0).filter { $0.halving != nil && rung + 1 < $0.halving!.budgets.count })
                decided.append(batch.map(\.0.name).filter(kept.contains))
                let json = try JSONSerialization.data(withJSONObject: ["kept": decided], options: [.prettyPrinted, .sortedKeys])
                try AtomicFile.write(json, to: record)
            }
            total.rungs.append((batch.first?.1 ?? 0, batch.count, kept.count))
            alive = alive.filter { kept.contains($0.name) }
        }
        return total
    }

    /// The runs of the settings a rung keeps: per pool, the best `keep` of its settings by IQM over seeds.
    func keptRuns(of runs: [SweepRun]) throws -> Set<String> {
        var kept: Set<String> = []
        let pools = Dictionary(grouping: runs, by: \.pool)
        for (_, members) in pools {
            let keep = members[0].halving!.keep
            let labels = members.map(\.settingLabel).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            let scored = try labels.map { label -> (label: String, score: Double) in
                let scores = try members.filter { $0.settingLabel == label }.map { run -> Double in
                    guard let score = try RunRecord(folder: folder(of: run))?.score else {
                        throw SweepError("run \(run.name) has no score in its eval.json to rank it by")
                    }
                    return score
                }
                return (label, RobustStatistics.Aggregate.iqm([scores]))
            }
            let best = scored.enumerated().sorted { ($0.element.score, -$0.offset) > ($1.element.score, -$1.offset) }
                .prefix(max(1, Int((Double(labels.count) * keep).rounded(.up))))
            let bestLabels = Set(best.map(\.element.label))
            kept.formUnion(members.filter { bestLabels.contains($0.settingLabel) }.map(\.name))
        }
        return kept
    }

    /// The last `error:` line of a child's log, if any.
    static func lastError(in log: URL) -> String? {
        guard let text = try? Files.text(log, maxBytes: 1 << 26) else { return nil }
        return text.split(separator: "\n").last { $0.hasPrefix("error: ") }.map { String($0.dropFirst(7)) }
    }
}

/// One child process of a sweep: the full command line (the binary first) and the log its output goes to.
public struct SweepJob: Sendable, Codable {
    /// The job's position in the list a backend gets.
    public let index: Int
    /// The run's folder name.
    public let name: String
    public let arguments: [String]
    /// The run folder's `sweep.log`; each attempt appends to it.
    public let log: URL
    public let resumes: Bool
}

/// Where a sweep's children run.
public protocol SweepBackend {
    /// Runs `jobs` until all have ended, or until `shouldStop` turns true: then it asks the running ones to stop
    /// (SIGINT: they save a checkpoint and exit), starts no others, and returns once they have ended. Calls
    /// `started` when a job starts, `finished` with its exit status (128 + N for signal N) when it ends, and `tick`
    /// several times a second; all on the calling thread.
    func run(_ jobs: [SweepJob], shouldStop: @escaping () -> Bool, started: (Int) -> Void,
             finished: (Int, Int32) -> Void, tick: () -> Void) throws

    /// What the progress line calls the jobs between `started` and `finished` ("running"; a cluster that queues
    /// the jobs it is given says when they are handed over, not when they run).
    var startedJobs: String { get }
}

extension SweepBackend {
    public var startedJobs: String { "running" }
}
