import Foundation
import Testing
import TestSupport

/// `--resume` continues a run bit for bit: a run stopped after a checkpoint (Ctrl-C, SIGTERM, or kill -9) and
/// resumed, or resumed from an older periodic checkpoint, ends with the same `final.safetensors` bytes and the same
/// `metrics.csv` rows (wall time aside) as the run never interrupted. Without its training state a resume still
/// works, and says that it is not bit for bit.
@Suite struct BitExactResumeTests {
    /// A short run with ten periodic checkpoints.
    struct Case: CustomTestStringConvertible, Sendable {
        let agent: String, env: String, steps: Int
        var testDescription: String { "\(agent) on \(env)" }
        var arguments: [String] {
            ["run", agent, "--env", env, "--steps", "\(steps)", "--checkpoint-every", "\(steps / 10)",
             "--eval-episodes", "0", "--plain", "--out", "r"]
        }
    }

    static let cases = [
        Case(agent: "ppo", env: "CartPole-v1", steps: 30_000),
        Case(agent: "a2c", env: "CartPole-v1", steps: 60_000),
        Case(agent: "dqn", env: "CartPole-v1", steps: 5_000),
        Case(agent: "qlearning", env: "FrozenLake-v1", steps: 1_000_000),
        // The LSTM states of the training environments are part of the training state.
        Case(agent: "recurrent-ppo", env: "CartPoleNoVel-v1", steps: 5_120),
    ]

    /// The signals that stop a run: Ctrl-C and SIGTERM save a checkpoint at the next consistent point (exit codes 130
    /// and 143), kill -9 leaves the last periodic one.
    static let signals: [(name: String, number: Int32)] = [("SIGINT", SIGINT), ("SIGTERM", SIGTERM), ("SIGKILL", SIGKILL)]

    /// What a finished run leaves that must not depend on how often it was stopped.
    struct Outcome: Equatable {
        let final: Data
        /// metrics.csv's lines without the wall_time_s column.
        let metrics: [String]
    }

    static func outcome(of run: URL) throws -> Outcome {
        let text = try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
        let lines = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let wall = try #require(lines.first?.firstIndex(of: "wall_time_s"), "metrics.csv has no wall_time_s column")
        return Outcome(final: try Data(contentsOf: run.appendingPathComponent("final.safetensors")),
                       metrics: lines.map { fields in fields.enumerated().filter { $0.offset != wall }.map(\.element).joined(separator: ",") })
    }

    /// Runs `--resume r` in `dir` to the end; returns its stderr.
    static func resume(in dir: URL) throws -> String {
        let resumed = try CLI.run(["run", "--resume", "r", "--eval-episodes", "0", "--plain"], in: dir)
        #expect(resumed.status == 0, "\(resumed.err)")
        return resumed.err
    }

    @Test(arguments: cases)
    func stoppedRunsResumeBitForBit(_ run: Case) throws {
        let reference = CLI.temporaryDirectory()
        let plain = try CLI.run(run.arguments, in: reference)
        try #require(plain.status == 0, "\(plain.err)")
        let expected = try Self.outcome(of: reference.appendingPathComponent("r"))
        #expect(expected.metrics.count > 5, "the run finishes episodes: \(expected.metrics.count - 1) rows")

        for signal in Self.signals {
            let dir = CLI.temporaryDirectory()
            let running = try CLI.start(run.arguments, in: dir)
            // Stop it just after its first periodic checkpoint is written (last.safetensors is written last, after the
            // periodic copy and the training states).
            let last = dir.appendingPathComponent("r/last.safetensors")
            let deadline = Date().addingTimeInterval(120)
            while running.isRunning && Date() < deadline && !FileManager.default.fileExists(atPath: last.path) {
                usleep(2_000)
            }
            kill(running.process.processIdentifier, signal.number)
            let stopped = running.finish()
            try #require(stopped.status != 0, "\(signal.name): the run finished before it was stopped; make it longer")
            if signal.number != SIGKILL {
                #expect(stopped.status == 128 + signal.number && stopped.err.contains("continue with --resume"),
                        "\(signal.name): \(stopped.status) \(stopped.err)")
            }
            let note = try Self.resume(in: dir)
            #expect(note.contains("continuing the training state of step"), "\(signal.name): \(note)")
            #expect(try Self.outcome(of: dir.appendingPathComponent("r")) == expected, "\(signal.name): not the uninterrupted run's bits")
        }

        // The finished run, resumed from its first periodic checkpoint (with the state beside it) copied to last.
        let dir = CLI.temporaryDirectory()
        let folder = dir.appendingPathComponent("r")
        try FileManager.default.copyItem(at: reference.appendingPathComponent("r"), to: folder)
        let first = try #require(try Self.periodicCheckpoints(folder).first, "the run wrote no periodic checkpoint")
        try Self.rewind(folder, to: first)
        let note = try Self.resume(in: dir)
        #expect(note.contains("continuing the training state of step"), "\(note)")
        #expect(try Self.outcome(of: folder) == expected, "resumed from \(first): not the uninterrupted run's bits")
    }

    /// A run resumed from a checkpoint whose training state is missing, or is another checkpoint's, still finishes,
    /// and says why it is not bit for bit.
    @Test func resumeWithoutItsTrainingStateSaysSo() throws {
        let run = Case(agent: "qlearning", env: "FrozenLake-v1", steps: 20_000)
        let dir = CLI.temporaryDirectory()
        let finished = try CLI.run(run.arguments, in: dir)
        try #require(finished.status == 0, "\(finished.err)")
        let folder = dir.appendingPathComponent("r")

        let checkpoints = try Self.periodicCheckpoints(folder)
        try #require(checkpoints.count >= 2, "\(checkpoints)")
        let steps = checkpoints.map { $0.split(separator: "_").last.flatMap { Int($0) } ?? -1 }

        try Self.rewind(folder, to: checkpoints[0])
        try FileManager.default.removeItem(at: folder.appendingPathComponent("last.state.safetensors"))
        let missing = try Self.resume(in: dir)
        #expect(missing.contains("without its training state (last.state.safetensors is missing)")
                && missing.contains("will not be the same bits"), "\(missing)")

        try Self.rewind(folder, to: checkpoints[0])
        try FileManager.default.removeItem(at: folder.appendingPathComponent("last.state.safetensors"))
        try FileManager.default.copyItem(at: folder.appendingPathComponent(checkpoints[1] + ".state.safetensors"),
                                         to: folder.appendingPathComponent("last.state.safetensors"))
        let other = try Self.resume(in: dir)
        #expect(other.contains("last.state.safetensors was saved at step \(steps[1]), its checkpoint at step \(steps[0])"), "\(other)")
    }

    /// The periodic checkpoints in the folder, oldest first, as `checkpoints/step_<N>` (without the extension).
    static func periodicCheckpoints(_ folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("checkpoints").path)
            .filter { $0.hasSuffix(".safetensors") && !$0.hasSuffix(".state.safetensors") }.sorted()
            .map { "checkpoints/" + $0.dropLast(".safetensors".count) }
    }

    /// Makes `stem`.safetensors (and the state beside it) the folder's last checkpoint, and removes the final one.
    static func rewind(_ folder: URL, to stem: String) throws {
        let files = FileManager.default
        for suffix in [".safetensors", ".state.safetensors"] {
            let last = folder.appendingPathComponent("last" + suffix)
            if files.fileExists(atPath: last.path) { try files.removeItem(at: last) }
            try files.copyItem(at: folder.appendingPathComponent(stem + suffix), to: last)
        }
        try? files.removeItem(at: folder.appendingPathComponent("final.safetensors"))
    }
}
