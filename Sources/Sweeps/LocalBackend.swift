import Foundation

/// Runs a sweep's children on this machine, `jobs` at a time. With more than one at a time each child gets
/// `RLBENCH_CORES=1`: one run per core, no run's threads competing with another's (the results are the same bits
/// either way). A lone job keeps every core, as a run started by hand does.
public struct LocalBackend: SweepBackend {
    public let jobs: Int

    public init(jobs: Int) { self.jobs = max(1, jobs) }

    /// The default `--jobs`: one run per core.
    public static var defaultJobs: Int { ProcessInfo.processInfo.activeProcessorCount }

    public func run(_ list: [SweepJob], shouldStop: @escaping () -> Bool, started: (Int) -> Void,
                    finished: (Int, Int32) -> Void, tick: () -> Void) throws {
        var pending = list[...]
        var running: [(index: Int, process: Process)] = []
        var stopping = false
        while !running.isEmpty || (!stopping && !pending.isEmpty) {
            if !stopping && shouldStop() {
                stopping = true
                // A terminal's Ctrl-C reaches the children too; a SIGTERM to the sweep alone does not. A second
                // SIGINT to a child already stopping changes nothing.
                for (_, process) in running { kill(process.processIdentifier, SIGINT) }
            }
            while !stopping, running.count < jobs, let job = pending.popFirst() {
                running.append((job.index, try start(job)))
                started(job.index)
            }
            running.removeAll { index, process in
                guard !process.isRunning else { return false }
                finished(index, Self.status(of: process))
                return true
            }
            tick()
            usleep(50_000)
        }
    }

    private func start(_ job: SweepJob) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: job.arguments[0])
        process.arguments = Array(job.arguments.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        if jobs > 1 { environment["RLBENCH_CORES"] = "1" }
        process.environment = environment
        let log = try job.openLog()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        return process
    }

    /// The shell's exit status: the code, or 128 + the signal that ended the process.
    static func status(of process: Process) -> Int32 {
        process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}

extension SweepJob {
    /// The job's log, opened for appending, with a line naming the command.
    func openLog() throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: log.path) {
            FileManager.default.createFile(atPath: log.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: log)
        try handle.seekToEnd()
        let stamp = ISO8601DateFormatter().string(from: Date())
        try handle.write(contentsOf: Data("== \(stamp) \(arguments.joined(separator: " "))\n".utf8))
        return handle
    }
}
