import Agents
import Classifiers
import Foundation
import Generative
import Testing
import TestSupport
import Training

/// `run --tensorboard DIR` and `tensorboard_log`: TensorBoard's own event reader (the `tensorboard` package's
/// EventAccumulator) reads the files back with the metrics.csv rows as scalars under SB3's tags, the same steps and
/// values, and a generative model's sample grids as the PNG files of the run.
@Suite struct TensorBoardTests {
    /// What TensorBoard reads in `directory`: each scalar tag's (step, value) pairs in order, and each image tag's
    /// (step, width, height, PNG bytes as hex, whether Pillow decodes it to that size).
    struct Read {
        var scalars: [String: [(step: Int, value: Double)]] = [:]
        var images: [String: [(step: Int, png: Data, decodes: Bool)]] = [:]
    }

    static func read(_ directory: URL) throws -> Read {
        let python = try #require(CLI.executable(named: "python3"))
        let ran = try CLI.runTool(python, ["-c", """
            import io, json, sys
            from PIL import Image
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0})
            acc.Reload()
            tags = acc.Tags()
            out = {"scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]}, "images": {}}
            for t in tags["images"]:
                out["images"][t] = [[e.step, e.encoded_image_string.hex(),
                                     Image.open(io.BytesIO(e.encoded_image_string)).size == (e.width, e.height)]
                                    for e in acc.Images(t)]
            print(json.dumps(out))
            """, directory.path])
        #expect(ran.status == 0, "python3 needs tensorboard and pillow (scripts/setup --for-tests): \(ran.err)")
        let last = ran.out.split(separator: "\n").last.map(String.init) ?? ""
        let json = try #require(JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], "\(ran.out) \(ran.err)")
        var read = Read()
        for (tag, points) in json["scalars"] as? [String: [[Double]]] ?? [:] {
            read.scalars[tag] = points.map { (Int($0[0]), $0[1]) }
        }
        for (tag, items) in json["images"] as? [String: [[Any]]] ?? [:] {
            read.images[tag] = items.map { item in
                let hex = Array((item[1] as? String ?? "").utf8)
                let bytes = stride(from: 0, to: hex.count - 1, by: 2).map { UInt8(String(decoding: hex[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
                return ((item[0] as? NSNumber)?.intValue ?? -1, Data(bytes), item[2] as? Bool ?? false)
            }
        }
        return read
    }

    /// metrics.csv's columns and rows.
    static func metrics(_ folder: URL) throws -> (header: [String], rows: [[String]]) {
        let lines = try String(contentsOf: folder.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
        let split = { (line: Substring) in line.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        return (split(lines[0]), lines.dropFirst().map(split))
    }

    /// Checks that `read` holds exactly metrics.csv's values under `tags` (column → tag and sign), with the first
    /// column as the step: one event per step, with the mean `return` and `length` of the episodes that ended at that
    /// step and the other columns of its last row. Returns the rows.
    static func expectScalars(_ read: Read, _ folder: URL, _ tags: [String: (String, Double)],
                              sourceLocation: SourceLocation = #_sourceLocation) throws -> [[String]] {
        let (header, rows) = try metrics(folder)
        #expect(Set(header.dropFirst()) == Set(tags.keys), "metrics.csv's columns \(header)", sourceLocation: sourceLocation)
        let steps = stepGroups(rows)
        for (column, (tag, sign)) in tags {
            let i = header.firstIndex(of: column)!
            let expected = steps.compactMap { group -> (step: Int, value: Double)? in
                let values = (column == "return" || column == "length" ? group : [group.last!]).compactMap { Double($0[i]) }
                return values.isEmpty ? nil : (Int(Double(group[0][0])!), sign * values.reduce(0, +) / Double(values.count))
            }
            let got = read.scalars[tag] ?? []
            #expect(got.count == expected.count && !expected.isEmpty, "\(tag): \(got.count) events for \(expected.count) steps",
                    sourceLocation: sourceLocation)
            for (g, e) in zip(got, expected) where g.step != e.step || !close(g.value, e.value) {
                Issue.record("\(tag): TensorBoard has \(g), metrics.csv \(e)", sourceLocation: sourceLocation)
                break
            }
        }
        return rows
    }

    /// The rows in runs of equal steps (first column).
    static func stepGroups(_ rows: [[String]]) -> [[[String]]] {
        var groups: [[[String]]] = []
        for row in rows {
            if let step = groups.last?.last?[0], step == row[0] { groups[groups.count - 1].append(row) } else { groups.append([row]) }
        }
        return groups
    }

    /// PPO's metrics.csv columns and the tags they are logged under (SB3's where SB3 logs the same quantity).
    static let ppoTags: [String: (String, Double)] = [
        "episode": ("time/episodes", 1), "return": ("rollout/episode_return", 1), "length": ("rollout/episode_length", 1),
        "wall_time_s": ("time/time_elapsed", 1), "learning_rate": ("train/learning_rate", 1),
        "clip_range": ("train/clip_range", 1), "policy_loss": ("train/policy_loss", 1), "value_loss": ("train/value_loss", 1),
        "entropy": ("train/entropy_loss", -1), "approx_kl": ("train/approx_kl", 1), "clip_fraction": ("train/clip_fraction", 1),
        "explained_variance": ("train/explained_variance", 1)]

    /// A folder for TensorBoard logs and a run folder named `name` (so its logs go to `root/name`).
    static func folders(_ name: String) -> (root: URL, run: URL) {
        (Scratch.directory("tb"), Scratch.directory("tb-run").appendingPathComponent(name))
    }

    /// Equal as a Float32 holds them.
    static func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-6 * max(1, abs(b)) }

    @Test func agentRunsLogSB3Tags() throws {
        let (root, folder) = Self.folders("ppo-run")
        var options = RunOptions(agent: "ppo", environment: "CartPole-v1", outputDirectory: folder)
        options.steps = 4096
        options.checkpointEvery = 2048
        options.evaluationEpisodes = 0
        options.progress = .quiet
        options.tensorboardLog = root.path
        try TrainingRun(options).run()

        // As if killed after the periodic checkpoint (step 2,048 or a little later): the resumed run repeats the steps
        // after it, and TensorBoard keeps only its events of those steps (the new file's SessionLog START purges the
        // first file's).
        let checkpoints = folder.appendingPathComponent("checkpoints")
        let periodic = try #require(try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).first { !$0.contains(".state.") })
        let middle = try #require(Int(periodic.dropFirst("step_".count).prefix(9)))
        let state = periodic.replacingOccurrences(of: ".safetensors", with: ".state.safetensors")
        for (from, to) in [(periodic, "last.safetensors"), (state, "last.state.safetensors")] {
            try FileManager.default.removeItem(at: folder.appendingPathComponent(to))
            try FileManager.default.copyItem(at: checkpoints.appendingPathComponent(from), to: folder.appendingPathComponent(to))
        }
        var resumed = RunOptions(agent: "ppo", environment: "CartPole-v1", outputDirectory: folder)
        resumed.resume = true
        resumed.evaluationEpisodes = 0
        resumed.progress = .quiet
        try TrainingRun(resumed).run()  // tensorboard_log comes from the run's config.yml

        let events = root.appendingPathComponent("ppo-run")
        let files = try FileManager.default.contentsOfDirectory(atPath: events.path).sorted()
        #expect(files.count == 2 && files.allSatisfy { $0.hasPrefix("events.out.tfevents.") }, "\(files)")
        let read = try Self.read(events)
        let rows = try Self.expectScalars(read, folder, Self.ppoTags)
        #expect(rows.contains { Int($0[0])! > middle } && rows.contains { Int($0[0])! <= middle })
        // SB3's means over the last 100 episodes, and steps per second of wall time, at the last row of each step.
        let returns = rows.map { Double($0[2])! }, lengths = rows.map { Double($0[3])! }
        var ends: [Int] = [], index = -1
        let groups = Self.stepGroups(rows)
        #expect(groups.count < rows.count, "no two episodes ended at one step: the one-event-per-step case went untested")
        for group in groups { index += group.count; ends.append(index) }
        func windowMean(_ values: [Double], _ i: Int) -> Double {
            let window = values[max(0, i - 99)...i]
            return window.reduce(0, +) / Double(window.count)
        }
        for (tag, expected) in [("rollout/ep_rew_mean", ends.map { windowMean(returns, $0) }),
                                ("rollout/ep_len_mean", ends.map { windowMean(lengths, $0) }),
                                ("time/fps", ends.map { Double(rows[$0][0])! / Double(rows[$0][4])! })] {
            let got = read.scalars[tag]?.map(\.value) ?? []
            #expect(got.count == expected.count && zip(got, expected).allSatisfy { Self.close($0, $1) }, "\(tag): \(got.prefix(3)) … for \(expected.prefix(3)) …")
        }
    }

    @Test func generativeRunsLogLossesAndSampleGrids() throws {
        let (root, folder) = Self.folders("vae-run")
        var options = GenerativeRunOptions(model: "vae", data: "digits", outputDirectory: folder)
        (options.epochs, options.progress, options.scoreSamples, options.tensorboardLog) = (2, .quiet, false, root.path)
        try GenerativeRun(options).run()
        let read = try Self.read(root.appendingPathComponent("vae-run"))
        _ = try Self.expectScalars(read, folder, ["step": ("time/steps", 1), "loss": ("train/loss", 1),
                                                  "reconstruction": ("train/reconstruction", 1), "kl": ("train/kl", 1),
                                                  "wall_time_s": ("time/time_elapsed", 1)])
        let images = read.images["samples"] ?? []
        #expect(images.map(\.step) == [1, 2])
        for (epoch, image) in images.enumerated() {
            let file = folder.appendingPathComponent(String(format: "samples/epoch_%04d.png", epoch + 1))
            let png = try Data(contentsOf: file)
            #expect(image.decodes && image.png == png, "epoch \(epoch + 1): the image is not the run's sample grid")
        }
    }

    @Test func commandLineFlag() throws {
        let dir = CLI.temporaryDirectory()
        let ran = try CLI.run(["run", "ppo", "--steps", "256", "--set", "n_envs=1", "--set", "n_steps=128", "--eval-episodes", "0",
                               "--plain", "--out", "run", "--tensorboard", "tb"], in: dir)
        #expect(ran.status == 0, "\(ran.err)")
        let read = try Self.read(dir.appendingPathComponent("tb/run"))
        _ = try Self.expectScalars(read, dir.appendingPathComponent("run"), Self.ppoTags)
        let bad = try CLI.run(["run", "ppo", "--steps", "256", "--tensorboard", ""], in: dir)
        #expect(bad.status != 0 && bad.err.contains("--tensorboard needs a folder name"), "\(bad.err)")
    }

    /// kill -9 after the first checkpoint leaves an event file TensorBoard reads, holding the first steps of
    /// metrics.csv; `--resume` then continues the log, and TensorBoard shows exactly the finished metrics.csv.
    @Test func killedRunLeavesAReadableLog() throws {
        let dir = CLI.temporaryDirectory()
        let running = try CLI.start(["run", "ppo", "--steps", "30000", "--checkpoint-every", "3000", "--eval-episodes", "0",
                                     "--plain", "--out", "run", "--tensorboard", "tb"], in: dir)
        let last = dir.appendingPathComponent("run/last.safetensors")
        for _ in 0..<1200 where running.isRunning && !FileManager.default.fileExists(atPath: last.path) { usleep(25_000) }
        kill(running.process.processIdentifier, SIGKILL)
        #expect(running.finish().status != 0, "the run ended before it was killed")
        let killed = try Self.read(dir.appendingPathComponent("tb/run"))
        let (_, rows) = try Self.metrics(dir.appendingPathComponent("run"))
        let logged = killed.scalars["rollout/episode_return"] ?? []
        let groups = Self.stepGroups(rows)
        #expect(!logged.isEmpty && logged.count <= groups.count, "\(logged.count) events for \(groups.count) steps of metrics.csv")
        for (event, group) in zip(logged, groups) where event.step != Int(group[0][0])! {
            Issue.record("the killed run's log has step \(event.step) where metrics.csv has \(group[0][0])")
            break
        }
        let resumed = try CLI.run(["run", "--resume", "run", "--eval-episodes", "0", "--plain"], in: dir)
        #expect(resumed.status == 0, "\(resumed.err)")
        _ = try Self.expectScalars(try Self.read(dir.appendingPathComponent("tb/run")), dir.appendingPathComponent("run"), Self.ppoTags)
    }

    @Test func classifierRunsTakeTheConfigKey() throws {
        let (root, folder) = Self.folders("mlp-run")
        var options = ClassifierRunOptions(model: "mlp", data: "digits", outputDirectory: folder)
        (options.epochs, options.progress) = (2, .quiet)
        options.overrides = ["tensorboard_log=\(root.path)", "validation_fraction=0.1"]
        try ClassifierRun(options).run()
        #expect(try String(contentsOf: folder.appendingPathComponent("config.yml"), encoding: .utf8).contains("tensorboard_log: \(root.path)"))
        let read = try Self.read(root.appendingPathComponent("mlp-run"))
        _ = try Self.expectScalars(read, folder, ["train_loss": ("train/loss", 1), "train_accuracy": ("train/accuracy", 1),
                                                  "val_loss": ("val/loss", 1), "val_accuracy": ("val/accuracy", 1),
                                                  "learning_rate": ("train/learning_rate", 1), "wall_time_s": ("time/time_elapsed", 1)])
    }
}
