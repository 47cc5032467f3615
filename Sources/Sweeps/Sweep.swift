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

    public func state(of run: SweepRun) -> RunState {
        let dir = RunFolder(folder(of: run))
        let finished = run.evaluates ? dir.url.appendingPathComponent("eval.json") : dir.final
        if FileManager.default.fileExists(atPath: finished.path) { return .done }
        return (try? dir.resumePoint()) != nil ? .resume : .start
    }

    /// The `rlbench` arguments that take `run` from `state` to done (nil when it is done).
    public func arguments(for run: SweepRun, in state: RunState) -> [String]? {
        let out = folder(of: run).path
        switch state {
        case .done: return nil
        case .resume:
            // The run's own config.yml holds its settings and steps; only the evaluation is a flag of the command.
            let evaluation = run.runArguments.firstIndex(of: "--eval-episodes").map { Array(run.runArguments[$0...($0 + 1)]) } ?? []
            return ["run", "--resume", out, "--plain"] + evaluation
        case .start: return ["run"] + run.runArguments + ["--plain", "--out", out]
        }
    }

    /// Each run with its state and the arguments that finish it, for `--dry-run` and for `execute`.
    public func plan() -> [(run: SweepRun, state: RunState, arguments: [String]?)] {
        runs.map { run in
            let state = state(of: run)
            return (run, state, arguments(for: run, in: state))
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
    }

    /// Runs every unfinished run through `backend`, one progress line for the whole sweep, until all have ended or
    /// `shouldStop` says so (then the running children are asked to stop, save their checkpoints and exit).
    public func execute(on backend: SweepBackend, progress style: ProgressStyle,
                        shouldStop: @escaping () -> Bool) throws -> Outcome {
        try Files.makeDirectory(folder)
        var outcome = Outcome()
        var jobs: [SweepJob] = []
        for (run, state, arguments) in plan() {
            guard let arguments else { outcome.alreadyDone += 1; continue }
            let dir = folder(of: run)
            try Files.makeDirectory(dir)
            jobs.append(SweepJob(index: jobs.count, name: run.name, arguments: [binary.path] + arguments,
                                 log: dir.appendingPathComponent("sweep.log"), resumes: state == .resume))
        }
        var reporter = ProgressReporter(style)
        let start = Date()
        var running = 0, ended = 0
        func draw(force: Bool = false) {
            let total = runs.count, done = outcome.alreadyDone + outcome.finished
            let elapsed = Date().timeIntervalSince(start)
            let perRun = outcome.finished > 0 ? elapsed / Double(outcome.finished) : .nan
            let left = Double(jobs.count - ended) * perRun / Double(max(running, 1))
            var stats = "sweep: \(done)/\(total) runs done"
            if outcome.alreadyDone > 0 { stats += " (\(outcome.alreadyDone) before)" }
            stats += ", \(running) running"
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
}
