import ArgumentParser
import CLIKit
import Foundation
import Support
import Sweeps
import Training

/// `rlbench sweep SPEC.yml`: many runs (agents × environments × hyperparameters × seeds), each an ordinary
/// `rlbench run` child with its own folder, on this machine's cores or a Ray cluster.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every combination a spec names (agents, environments, seeds, hyperparameters), one run per core.",
        discussion: """
        The spec is YAML: agents (or models), environments (or datasets), seeds (a count or a list), optional steps, \
        epochs, eval_episodes, env_options, and hyperparameters as one value, a list (a grid) or a distribution \
        (uniform(a, b), loguniform(a, b), int(a, b), choice([...])) drawn `samples: N` times from `search_seed`. Each \
        run writes an ordinary run folder under the sweep's folder, named from its settings, with its output in \
        sweep.log. Run it again to continue: finished runs (eval.json) are skipped, stopped ones resumed. \
        Then: rlbench report <folder>.
        """)

    enum Backend: String, ExpressibleByArgument, CaseIterable {
        case local, ray, slurm
    }

    @Argument(help: "The sweep's spec (YAML).")
    var spec: String

    @Option(name: .long, help: "The sweep's folder (default: sweeps/<spec file name without .yml>).")
    var out: String?

    @Option(name: .long, help: "Runs at a time on this machine (default: one per core; each run then uses one core).",
            transform: parseCount("--jobs", in: 1...4096))
    var jobs: Int?

    @Option(name: .long, help: "Where the runs go: local (this machine), ray (an existing Ray cluster), or slurm (--emit a job array script).")
    var backend: Backend = .local

    @Option(name: .long, help: "With --backend slurm: write the sbatch script of a job array, one task per run, to this file (nothing runs).")
    var emit: String?

    @Option(name: .long, help: "Run only the run at this index (0-based, in --dry-run's order): what each task of a Slurm job array does.",
            transform: parseCount("--task", in: 0...SweepSpec.maxRuns))
    var task: Int?

    @Option(name: .long, help: "The Ray cluster's HOST:PORT (default: the cluster `ray start` started on this machine, or $RAY_ADDRESS).")
    var address: String?

    @Flag(name: .long, help: "Print the runs the sweep would make (and which are done or would resume), run nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Plain log lines instead of a live progress bar.")
    var plain = false

    func validate() throws {
        if address != nil && backend != .ray { throw ValidationError("--address names a Ray cluster; add --backend ray") }
        if jobs != nil && backend == .ray { throw ValidationError("--jobs is for --backend local; Ray runs as many tasks as the cluster has cores") }
        if (backend == .slurm) != (emit != nil) {
            throw ValidationError(emit == nil ? "--backend slurm writes a job array script: add --emit FILE" : "--emit is for --backend slurm")
        }
        if task != nil && backend != .local { throw ValidationError("--task runs one run on this machine; it is for --backend local") }
    }

    func run() throws {
        let specURL = URL(fileURLWithPath: spec)
        let parsed = try fail { try SweepSpec(contentsOf: specURL) }
        var runs = try fail { try parsed.runs() }
        let folder = URL(fileURLWithPath: out ?? "sweeps/" + specURL.deletingPathExtension().lastPathComponent)
        let binary = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                         ?? CommandLine.arguments[0])
        if let emit {
            let script = SlurmArray(spec: specURL, folder: folder, binary: binary, runCount: runs.count).script
            // The tasks' output files go into the sweep's folder, which must exist when the array starts.
            try fail { try Files.makeDirectory(folder) }
            try fail { try AtomicFile.write(Data(script.utf8), to: URL(fileURLWithPath: emit), permissions: 0o755) }
            print("\(emit): a job array of \(runs.count) tasks, one per run; submit it with: sbatch \(emit)")
            return
        }
        if let task {
            guard task < runs.count else { throw fail(SweepError("--task \(task): the spec makes \(runs.count) runs (0 to \(runs.count - 1))")) }
            runs = [runs[task]]
        }
        let sweep = Sweeps.Sweep(folder: folder, runs: runs, binary: binary)

        if dryRun {
            let plan = sweep.plan()
            for (run, state, arguments) in plan {
                let command = arguments.map { "rlbench " + $0.joined(separator: " ") } ?? "(eval.json exists)"
                print("\(state.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) \(run.name): \(command)")
            }
            if let halving = runs.lazy.compactMap(\.halving).first {
                print("successive halving: the runs above train to \(halving.budgets[0]) (\(halving.flag)), then the best "
                      + "\(halving.keep) of the settings continue to " + halving.budgets.dropFirst().map(String.init).joined(separator: ", then "))
            }
            let counts = Dictionary(grouping: plan, by: \.state).mapValues(\.count)
            print("\(plan.count) runs in \(folder.path): \(counts[.start] ?? 0) to start, \(counts[.resume] ?? 0) to resume, "
                  + "\(counts[.done] ?? 0) done")
            return
        }

        let executor: SweepBackend
        switch backend {
        case .local: executor = LocalBackend(jobs: jobs ?? LocalBackend.defaultJobs)
        case .ray: executor = RayBackend(address: address)
        case .slurm: return  // --emit wrote the script above
        }
        try fail { try Files.makeDirectory(folder) }
        // The spec beside the runs, so the folder says what made it.
        try fail { try AtomicFile.write(try Files.data(specURL, maxBytes: Limits.configBytes), to: folder.appendingPathComponent("sweep.yml")) }
        StopRequest.reset()
        StopRequest.installInterruptHandler()
        let outcome = try fail {
            try sweep.execute(on: executor, progress: plain ? .lines : .automatic) { StopRequest.isRequested }
        }
        for (index, rung) in outcome.rungs.enumerated() {
            print("rung \(index + 1): \(rung.runs) runs to \(rung.budget)" + (rung.kept.map { "; \($0) kept" } ?? ""))
        }
        var summary = "sweep \(folder.path): "
        if outcome.rungs.isEmpty {
            summary += "\(outcome.alreadyDone + outcome.finished) of \(runs.count) runs done"
            if outcome.alreadyDone > 0 { summary += " (\(outcome.alreadyDone) before this one)" }
        } else {
            summary += "successive halving of \(runs.count) runs, \(outcome.rungs.count) rungs run"
            if outcome.alreadyDone > 0 { summary += " (\(outcome.alreadyDone) runs' rungs done before this one)" }
        }
        if !outcome.failures.isEmpty { summary += ", \(outcome.failures.count) failed" }
        print(summary)
        for (name, message) in outcome.failures { print("  failed: \(name): \(message)") }
        if outcome.stopped {
            print("stopped: \(outcome.unfinished) runs left; run the same command again to continue")
            throw ExitCode(StopRequest.exitCode)
        }
        if !outcome.failures.isEmpty { throw ExitCode.failure }
        print("report: rlbench report \(folder.path)")
    }
}
