import Foundation
import Testing
import TestSupport

/// Checkpoint metadata through the command line: `inspect`, `eval` and `run --resume` name every bad key, and
/// `--resume` touches nothing in the folder before it has found a usable checkpoint.
@Suite struct CheckpointMetadataCLITests {
    /// Rewrites the metadata in a safetensors file's header (the tensors' bytes stay), as a damaged or foreign
    /// checkpoint would have it.
    static func rewriteMetadata(_ file: URL, _ change: (inout [String: String]) -> Void) throws {
        let bytes = try Data(contentsOf: file)
        let length = Int(bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var header = try #require(try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + length))) as? [String: Any])
        var meta = header["__metadata__"] as? [String: String] ?? [:]
        change(&meta)
        header["__metadata__"] = meta
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(bytes.subdata(in: (8 + length)..<bytes.count))
        try out.write(to: file)
    }

    /// A finished tabular run in `r` (quick: FrozenLake).
    static func tabularRun() throws -> URL {
        let dir = CLI.temporaryDirectory()
        let r = try CLI.run(["run", "qlearning", "--env", "FrozenLake-v1", "--steps", "2000", "--eval-episodes", "0",
                             "--plain", "--out", "r"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        return dir
    }

    @Test func inspectAndEvalNameEveryBadKey() throws {
        let dir = try Self.tabularRun()
        let file = dir.appendingPathComponent("r/final.safetensors")
        try Self.rewriteMetadata(file) { $0["format"] = "rlbench-agent-99"; $0["seed"] = "-1" }
        let inspect = try CLI.run(["inspect", file.path])
        #expect(inspect.status != 0)
        #expect(inspect.out.contains("q_table"), "the listing comes first: \(inspect.out)")
        #expect(inspect.err.contains("format \"rlbench-agent-99\" is not one this rlbench reads")
                && inspect.err.contains("seed \"-1\""), "\(inspect.err)")

        try Self.rewriteMetadata(file) { $0["format"] = "rlbench-agent-1"; $0["seed"] = "3"; $0["step"] = "abc"; $0["env_options"] = "{{{" }
        let eval = try CLI.run(["eval", file.path, "--episodes", "1"])
        #expect(eval.status != 0)
        #expect(eval.err.contains("step \"abc\"") && eval.err.contains("env_options \"{{{\""), "\(eval.err)")
        // The same file, the same message.
        let first = try CLI.run(["inspect", file.path]), second = try CLI.run(["inspect", file.path])
        #expect(first.status != 0 && first.err == second.err && first.err.contains("env_options"), "\(first.err)")
    }

    /// `run --resume` with a negative step fails before the folder's files are touched, and says which keys.
    @Test func resumeWithBadMetadataTouchesNothing() throws {
        let dir = try Self.tabularRun()
        let run = dir.appendingPathComponent("r")
        try FileManager.default.removeItem(at: run.appendingPathComponent("checkpoints"))
        try Self.rewriteMetadata(run.appendingPathComponent("last.safetensors")) { $0["step"] = "-5"; $0["rng_state"] = "zz" }
        let files = ["metrics.csv", "config.yml", "last.safetensors"].map { run.appendingPathComponent($0) }
        let before = try files.map { try Data(contentsOf: $0) }
        let resumed = try CLI.run(["run", "--resume", "r", "--steps", "4000", "--plain"], in: dir)
        #expect(resumed.status != 0)
        #expect(resumed.err.contains("step \"-5\"") && resumed.err.contains("rng_state \"zz\""), "\(resumed.err)")
        #expect(try files.map { try Data(contentsOf: $0) } == before)
    }

    /// With last.safetensors gone, `--resume` continues from the newest periodic checkpoint and says so.
    @Test func resumeFallsBackToAPeriodicCheckpoint() throws {
        let dir = try Self.tabularRun()
        let run = dir.appendingPathComponent("r")
        try FileManager.default.removeItem(at: run.appendingPathComponent("last.safetensors"))
        let resumed = try CLI.run(["run", "--resume", "r", "--steps", "3000", "--plain", "--eval-episodes", "0"], in: dir)
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.contains("resuming from") && resumed.err.contains("/r/checkpoints/step_")
                && resumed.err.contains("it has no last.safetensors"), "\(resumed.err)")
        #expect(resumed.out.contains("done: 3000 steps"), "\(resumed.out)")
    }
}
