import Environments
import Foundation
import Testing

/// Replays every Gymnasium recording (../shared/fixtures/gymnasium and $RLBENCH_GYM_FIXTURES) step by step.
@Suite struct ParityTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func recordings() throws -> [URL] {
        var dirs = [packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/gymnasium")]
        if let extra = ProcessInfo.processInfo.environment["RLBENCH_GYM_FIXTURES"], !extra.isEmpty { dirs.append(URL(fileURLWithPath: extra)) }
        var files: [URL] = []
        for dir in dirs {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else {
                throw ReplayError.unreadable(dir.path, "fixture folder missing (the checkout needs ../shared beside it)")
            }
            files += names.filter { $0.hasSuffix(".jsonl") }.sorted().map { dir.appendingPathComponent($0) }
        }
        return files
    }

    @Test func everyRecordingReplaysExactly() throws {
        let files = try Self.recordings()
        #expect(files.count >= 14)
        var covered = Set<String>()
        for file in files {
            let recording = try Recording(contentsOf: file)
            covered.insert(recording.env)
            let report = try recording.replay()
            #expect(report.passed, "\(report.file): \(report.firstMismatch ?? "")")
            // The header's own account of the file: its step count, and how the recording ends (a file cut short
            // fails here).
            let firstLine = try String(contentsOf: file, encoding: .utf8).prefix { $0 != "\n" }
            let header = try #require(try JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as? [String: Any])
            #expect(header["steps"] as? Int == recording.steps.count && recording.steps.count > 0, "\(file.lastPathComponent)")
            let last = try #require(recording.steps.last)
            let ends = ["terminated": (true, false), "truncated": (false, true), "terminated+truncated": (true, true),
                        "sequence_end": (false, false)][header["ends"] as? String ?? ""]
            #expect(ends.map { $0 == (last.terminated, last.truncated) } == true, "\(file.lastPathComponent): ends \(header["ends"] ?? "missing")")
        }
        #expect(covered.isSuperset(of: ["CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1", "Acrobot-v1",
                                        "FrozenLake-v1", "CliffWalking-v1"]))
    }

    /// Recordings of make options and ids that the shared fixtures do not cover (Recordings/README.md).
    @Test func optionRecordingsReplayExactly() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Recordings")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".jsonl") }.sorted()
        #expect(files.count == 4)
        for name in files {
            let recording = try Recording(contentsOf: dir.appendingPathComponent(name))
            #expect(!recording.makeOptions.isEmpty || recording.env == "CartPole-v0", "\(name)")
            let report = try recording.replay()
            #expect(report.passed, "\(name): \(report.firstMismatch ?? "")")
        }
        // The goal velocity decides the ending: without it the car finishes the first time it reaches the flag.
        var withoutOption = try Recording(contentsOf: dir.appendingPathComponent("MountainCar-v0.goal_velocity.jsonl"))
        withoutOption.makeOptions = [:]
        #expect(try withoutOption.replay().firstMismatch?.contains("terminated is true, recorded false") == true)
    }
}
