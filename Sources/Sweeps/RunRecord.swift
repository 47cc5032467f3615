import Foundation
import Support
import Training

/// What a report reads from one run folder: who ran on what with which settings (the checkpoint's metadata), the
/// score (`eval.json`), the wall time and the learning curve (`metrics.csv`).
public struct RunRecord: Sendable {
    public let folder: URL
    /// The agent, or the classifier or generative model.
    public let subject: String
    /// The environment, or the data set.
    public let target: String
    public let seed: UInt64
    /// Every setting, as compact JSON text per key (so values compare as text).
    public let settings: [String: String]
    /// `eval.json`'s `mean` (agents) or `test_accuracy` (classifiers); nil while the run has none.
    public let score: Double?
    /// The last `wall_time_s` of `metrics.csv`.
    public let wallSeconds: Double?
    /// Episode returns against environment steps (agents' `metrics.csv`: `step`, `return`).
    public let curve: (steps: [Double], returns: [Double])?
    /// The score the run should reach: its group's `target` in the spec (`sweep.yml`) of the sweep that made it.
    public var targetScore: Double?

    /// The run's budget as its settings give it: `n_timesteps` (agents) or `epochs` (data runs).
    public var budget: (count: Double, unit: String)? {
        if let steps = settings["n_timesteps"].flatMap(Double.init) { return (steps, "steps") }
        if let epochs = settings["epochs"].flatMap(Double.init) { return (epochs, "epochs") }
        return nil
    }

    /// The keys `eval.json` is scored by, the first one present.
    public static let scoreKeys = ["mean", "test_accuracy"]

    /// Reads the run in `folder`; nil when it is not a run folder (no checkpoint), an error when its files are
    /// unreadable.
    public init?(folder: URL) throws {
        let run = RunFolder(folder)
        let checkpoint = [run.final, run.last].first { FileManager.default.fileExists(atPath: $0.path) }
        guard let checkpoint else { return nil }
        let meta = try CheckpointMetadata(contentsOf: checkpoint)
        guard let subject = meta[.agent] ?? meta[.model], let target = meta[.env] ?? meta[.data], let seed = meta[.seed] else {
            throw SweepError("\(checkpoint.path) does not name its agent, environment and seed")
        }
        self.folder = folder
        self.subject = subject
        self.target = target
        self.seed = seed
        var settings: [String: String] = [:]
        if let json = meta[.hyperparameters],
           let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] {
            for (key, value) in object {
                let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
                settings[key] = data.map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
            }
        }
        self.settings = settings

        let evalFile = folder.appendingPathComponent("eval.json")
        if FileManager.default.fileExists(atPath: evalFile.path) {
            let object = try JSONSerialization.jsonObject(with: try Files.data(evalFile, maxBytes: 1 << 24)) as? [String: Any]
            score = Self.scoreKeys.lazy.compactMap { (object?[$0] as? NSNumber)?.doubleValue }.first
        } else {
            score = nil
        }

        let metrics = (try? Files.text(run.metrics, maxBytes: 1 << 30)) ?? ""
        let lines = metrics.split(separator: "\n")
        let header = lines.first.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
        func column(_ name: String) -> [Double]? {
            guard let i = header.firstIndex(of: name) else { return nil }
            return lines.dropFirst().map { line in
                let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                return i < fields.count ? Double(fields[i]) ?? .nan : .nan
            }
        }
        wallSeconds = column("wall_time_s")?.last { $0.isFinite }
        if let steps = column("step"), let returns = column("return"), !steps.isEmpty {
            curve = (steps, returns)
        } else {
            curve = nil
        }
    }

    /// The run folders in `paths`: each path that is a run folder, and the run folders directly inside each that is
    /// not (a sweep's folder). A sweep's runs come in its spec's order (`sweep.yml`) with their targets; other folders
    /// in name order.
    public static func collect(_ paths: [URL]) throws -> [RunRecord] {
        var records: [RunRecord] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw SweepError("\(path.path) is not a folder")
            }
            if let record = try RunRecord(folder: path) { records.append(record); continue }
            var names = try FileManager.default.contentsOfDirectory(atPath: path.path).sorted()
            var planned: [String: SweepRun] = [:]
            let specFile = path.appendingPathComponent("sweep.yml")
            if FileManager.default.fileExists(atPath: specFile.path) {
                let runs = try SweepSpec(contentsOf: specFile).runs()
                let order = Dictionary(uniqueKeysWithValues: runs.enumerated().map { ($1.name, $0) })
                planned = Dictionary(uniqueKeysWithValues: runs.map { ($0.name, $0) })
                names.sort { (order[$0] ?? Int.max, $0) < (order[$1] ?? Int.max, $1) }
            }
            for name in names {
                guard var record = try RunRecord(folder: path.appendingPathComponent(name)) else { continue }
                record.targetScore = planned[name]?.targetScore
                records.append(record)
            }
        }
        return records
    }
}
