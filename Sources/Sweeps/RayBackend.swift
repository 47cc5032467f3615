import Foundation
import Synchronization

/// Runs a sweep's children as tasks on an existing Ray cluster, through Ray's Python driver
/// (`Ray/ray_sweep.py`, started with `python3`, or `$RLBENCH_PYTHON`). Each task needs one CPU and runs the same
/// `rlbench` binary path on its node, writing its run folder where the sweep's folder is: the folders belong on a
/// filesystem every node shares. Nothing here needs Ray unless this backend is chosen.
public struct RayBackend: SweepBackend {
    /// Ray queues every task at once and runs as many as the cluster has CPUs.
    public var startedJobs: String { "queued or running on the cluster" }

    /// `HOST:PORT` of the cluster's head (nil: the cluster `ray start` started on this machine, or `$RAY_ADDRESS`).
    public let address: String?

    public init(address: String?) { self.address = address }

    public func run(_ jobs: [SweepJob], shouldStop: @escaping () -> Bool, started: (Int) -> Void,
                    finished: (Int, Int32) -> Void, tick: () -> Void) throws {
        guard !jobs.isEmpty else { return }
        guard let script = Bundle.module.url(forResource: "ray_sweep", withExtension: "py", subdirectory: "Ray") else {
            throw SweepError("the Ray driver ray_sweep.py is missing from rlbench's resources")
        }
        let driver = Process()
        driver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        driver.arguments = [ProcessInfo.processInfo.environment["RLBENCH_PYTHON"] ?? "python3", script.path, address ?? ""]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        driver.standardInput = input
        driver.standardOutput = output
        driver.standardError = errors
        // Each attempt's command heads its log, as on the local backend.
        for job in jobs { try job.openLog().close() }
        do { try driver.run() } catch {
            throw SweepError("cannot start python3 for the ray backend: \(error.localizedDescription)")
        }
        let payload = jobs.map { job -> [String: Any] in
            ["index": job.index, "arguments": job.arguments, "log": job.log.path, "environment": ["RLBENCH_CORES": "1"]]
        }
        try input.fileHandleForWriting.write(contentsOf: try JSONSerialization.data(withJSONObject: payload))
        try input.fileHandleForWriting.close()

        // The driver's events arrive on a reader thread; this thread handles them between ticks.
        let events = Mutex<[DriverEvent]>([]), stderrText = Mutex(Data())
        let reader = Thread {
            var buffer = Data()
            while case let chunk = output.fileHandleForReading.availableData, !chunk.isEmpty {
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: 10) {
                    let line = buffer[buffer.startIndex..<newline]
                    buffer = Data(buffer[(newline + 1)...])
                    if let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] {
                        let event = DriverEvent(connected: object["connected"] != nil, started: object["started"] as? Int,
                                                ended: object["index"] as? Int, status: object["status"] as? Int)
                        events.withLock { $0.append(event) }
                    }
                }
            }
        }
        reader.start()
        let errorReader = Thread {
            while case let chunk = errors.fileHandleForReading.availableData, !chunk.isEmpty {
                stderrText.withLock { $0.append(chunk) }
            }
        }
        errorReader.start()

        var connected = false, ended = Set<Int>(), askedToStop = false
        func handle(_ batch: [DriverEvent]) {
            for event in batch {
                if event.connected { connected = true }
                if let index = event.started { started(index) }
                if let index = event.ended, let status = event.status, !ended.contains(index) {
                    ended.insert(index)
                    finished(index, Int32(status))
                }
            }
        }
        while driver.isRunning {
            if !askedToStop && shouldStop() {
                askedToStop = true
                kill(driver.processIdentifier, SIGINT)
            }
            handle(events.withLock { batch in defer { batch.removeAll() }; return batch })
            tick()
            usleep(50_000)
        }
        // The last events may still be in the pipe when the driver exits.
        while reader.isExecuting || errorReader.isExecuting { usleep(10_000) }
        handle(events.withLock { batch in defer { batch.removeAll() }; return batch })
        // The driver's own message is its last line (Ray's log lines come before it).
        let message = String(decoding: stderrText.withLock { $0 }, as: UTF8.self)
            .split(separator: "\n").last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map(String.init) ?? ""
        guard connected else {
            throw SweepError(message.isEmpty ? "the Ray driver exited with status \(driver.terminationStatus)" : message)
        }
        for job in jobs where !ended.contains(job.index) { finished(job.index, askedToStop ? 130 : 1) }
    }
}

/// One line of the driver's output: connected to the cluster, a task started, or a task ended with its status.
private struct DriverEvent: Sendable {
    var connected: Bool
    var started: Int?
    var ended: Int?
    var status: Int?
}

/// A sweep that cannot go on, with the reason.
public struct SweepError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
