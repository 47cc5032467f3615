import Foundation
import Testing
import TestSupport

/// What a run folder guarantees when runs collide or die: one owner at a time, and after kill -9 at any moment
/// every file in it is whole and `--resume` finishes the run.
@Suite struct CrashSafetyTests {
    /// Two runs started on one folder at once: one owns it and finishes; the other fails without writing there,
    /// naming the folder (and the owner's pid when the owner is still running). Every file is the owner's.
    @Test func twoRunsCannotShareAFolder() throws {
        let dir = CLI.temporaryDirectory()
        let common = ["--steps", "20000", "--eval-episodes", "0", "--plain", "--out", "r"]
        let ppo = try CLI.start(["run", "ppo", "--seed", "0"] + common, in: dir)
        let a2c = try CLI.start(["run", "a2c", "--seed", "1"] + common, in: dir)
        let results = [("ppo", ppo.finish()), ("a2c", a2c.finish())]
        let winners = results.filter { $0.1.status == 0 }
        try #require(winners.count == 1, "exactly one run owns the folder: \(results.map { ($0.0, $0.1.status, $0.1.err) })")
        let winner = winners[0].0, loser = results.first { $0.0 != winner }!.1
        let folder = dir.appendingPathComponent("r").path
        #expect(loser.err.contains(folder), "the error names the folder: \(loser.err)")
        #expect(loser.err.contains("in use by another rlbench run (pid ") || loser.err.contains("already holds a run"),
                "\(loser.err)")

        // Everything in the folder comes from the winner: its config, its final checkpoint and every periodic one.
        let config = try String(contentsOf: dir.appendingPathComponent("r/config.yml"), encoding: .utf8)
        #expect(config.contains(winner == "ppo" ? "clip_range" : "use_rms_prop"), "config.yml is \(winner)'s: \(config)")
        // (The training states beside the periodic checkpoints belong to them: not agent checkpoints themselves.)
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("r/checkpoints").path)
            .filter { !$0.hasSuffix(".state.safetensors") }
        for file in ["final.safetensors", "last.safetensors"] + checkpoints.map({ "checkpoints/" + $0 }) {
            let inspected = try CLI.run(["inspect", dir.appendingPathComponent("r/\(file)").path])
            #expect(inspected.status == 0, "\(file): \(inspected.err)")
            #expect(inspected.out.contains("  agent: \(winner)\n") && inspected.out.contains("  seed: \(winner == "ppo" ? 0 : 1)\n"),
                    "\(file) is \(winner)'s")
        }
    }

    /// kill -9 at moments spread over a run (before, between and while it writes its checkpoints): afterwards every
    /// checkpoint in the folder loads, every `metrics.csv` row has the header's columns, `config.yml` is whole, and
    /// `--resume` finishes the run. The moments are counted from the start, or from the first checkpoint, so that
    /// they fall in the same parts of the run on a fast machine and a loaded one.
    @Test func killNineLeavesEveryFileWhole() throws {
        let moments: [(afterFirstCheckpoint: Bool, delay: UInt32)] = [
            (false, 100_000), (false, 250_000), (true, 0), (true, 50_000), (true, 150_000), (true, 300_000), (true, 600_000)]
        var resumedRuns = 0
        for (i, (afterFirstCheckpoint, delay)) in moments.enumerated() {
            let dir = CLI.temporaryDirectory()
            let running = try CLI.start(["run", "ppo", "--steps", "60000", "--checkpoint-every", "4000",
                                         "--eval-episodes", "0", "--plain", "--out", "r"], in: dir)
            if afterFirstCheckpoint {
                let last = dir.appendingPathComponent("r/last.safetensors").path, deadline = Date().addingTimeInterval(120)
                while !FileManager.default.fileExists(atPath: last) && running.isRunning && Date() < deadline { usleep(5_000) }
            }
            usleep(delay)
            kill(running.process.processIdentifier, SIGKILL)
            let killed = running.finish()
            let run = dir.appendingPathComponent("r")
            guard killed.status != 0 else { continue }  // finished before the kill: nothing to check
            let files = (try? FileManager.default.subpathsOfDirectory(atPath: run.path)) ?? []
            for file in files where file.hasSuffix(".safetensors") {
                let inspected = try CLI.run(["inspect", run.appendingPathComponent(file).path])
                #expect(inspected.status == 0, "kill \(i) after \(delay) µs: \(file) does not load: \(inspected.err)")
            }
            if let header = try? String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8) {
                let lines = header.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                let columns = lines.first.map { $0.split(separator: ",", omittingEmptySubsequences: false).count } ?? 0
                for line in lines {
                    #expect(line.split(separator: ",", omittingEmptySubsequences: false).count == columns,
                            "kill \(i): a partial metrics row: \(line)")
                }
            }
            guard files.contains("last.safetensors") else { continue }
            let config = try String(contentsOf: run.appendingPathComponent("config.yml"), encoding: .utf8)
            #expect(config.contains("n_timesteps: 60000"), "kill \(i): config.yml is whole: \(config)")
            let resumed = try CLI.run(["run", "--resume", "r", "--eval-episodes", "0", "--plain"], in: dir)
            #expect(resumed.status == 0, "kill \(i) after \(delay) µs: --resume failed: \(resumed.err)")
            resumedRuns += 1
            // PPO stops at the first whole rollout (2048 steps) past --steps.
            let done = try #require(resumed.out.firstMatch(of: /done: (\d+) steps/).flatMap { Int($0.1) }, "\(resumed.out)")
            #expect(done >= 60000 && done < 60000 + 2048, "\(resumed.out)")
            let final = try CLI.run(["inspect", run.appendingPathComponent("final.safetensors").path])
            #expect(final.status == 0 && final.out.contains("  step: \(done)\n"), "\(final.err)")
        }
        // The moments cover the run: most kills land after a checkpoint, and those runs were resumed.
        #expect(resumedRuns >= 3, "only \(resumedRuns) of \(moments.count) kills left a run to resume")
    }

    /// A run killed after its last step, while it wrote its final files, has only those left: `--resume` writes them
    /// (the final checkpoint the same bytes as before, the pictures, the evaluation) and trains nothing more; asking it
    /// for no more steps or epochs than it has done is an error naming both.
    @Test(arguments: [["ppo", "--steps", "3000", "--eval-episodes", "3"], ["vae", "--data", "digits", "--epochs", "1"],
                      ["mlp", "--data", "digits", "--epochs", "1"]])
    func resumeFinishesARunStoppedAfterItsLastStep(run: [String]) throws {
        let dir = CLI.temporaryDirectory()
        let started = try CLI.run(["run"] + run + ["--plain", "--out", "r"], in: dir)
        try #require(started.status == 0, "\(started.err)")
        let folder = dir.appendingPathComponent("r")
        let final = try Data(contentsOf: folder.appendingPathComponent("final.safetensors"))
        let evaluation = try Data(contentsOf: folder.appendingPathComponent("eval.json"))
        let outputs = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".png") || $0.hasSuffix(".gif") || $0 == "eval.json" || $0 == "final.safetensors" }
        #expect(outputs.contains { $0.hasSuffix(".png") }, "\(outputs)")
        for file in outputs { try FileManager.default.removeItem(at: folder.appendingPathComponent(file)) }

        // (--eval-episodes is the command's, not the run's config: given again.)
        let evaluationFlags = run.firstIndex(of: "--eval-episodes").map { Array(run[$0...($0 + 1)]) } ?? []
        let resumed = try CLI.run(["run", "--resume", "r", "--plain"] + evaluationFlags, in: dir)
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.contains("writing its final checkpoint") || resumed.out.contains("writing its final checkpoint"),
                "\(resumed.out)\(resumed.err)")
        let after = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(Set(outputs).isSubset(of: after), "every output is back: \(outputs) in \(after)")
        #expect(try Data(contentsOf: folder.appendingPathComponent("final.safetensors")) == final)
        #expect(try Data(contentsOf: folder.appendingPathComponent("eval.json")) == evaluation, "the same evaluation")

        let more = run[0] == "ppo" ? ["--steps", "3000"] : ["--epochs", "1"]
        let refused = try CLI.run(["run", "--resume", "r", "--plain"] + more, in: dir)
        #expect(refused.status != 0)
        #expect(refused.err.contains("train it further"), "\(refused.err)")
    }
}
