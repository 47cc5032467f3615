import Foundation
import RLCore
import Support

/// A run's folder and the files every trainer writes into it, whatever it trains (an agent, a generative model):
///
/// - `config.yml` — the exact settings used (loadable with `--config`)
/// - `metrics.csv` — one row per episode or epoch
/// - `checkpoints/step_<N>.safetensors` (periodic), `last.safetensors` (the newest), `final.safetensors`
///
/// Every file is written atomically (a crash leaves the previous version), and a folder that already holds a run is
/// used only to resume it.
public struct RunFolder: Sendable {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    public var config: URL { url.appendingPathComponent("config.yml") }
    public var metrics: URL { url.appendingPathComponent("metrics.csv") }
    public var last: URL { url.appendingPathComponent("last.safetensors") }
    public var final: URL { url.appendingPathComponent("final.safetensors") }
    public var checkpoints: URL { url.appendingPathComponent("checkpoints") }

    /// The periodic checkpoint of step (or epoch) `step`: zero-padded, so the files sort in order.
    public func checkpoint(step: Int) -> URL {
        checkpoints.appendingPathComponent(String(format: "step_%09d.safetensors", step))
    }

    /// Refuses a folder that holds a run to continue: one with a usable checkpoint (see `resumePoint`). A folder
    /// whose run left none (it diverged or was killed before its first checkpoint) is reused: the new run replaces
    /// its config and metrics; the returned note says so.
    @discardableResult
    public func checkUnused() throws -> String? {
        if (try? resumePoint()) != nil { throw RunFolderError.occupied(url.path) }
        guard [config, metrics, last].contains(where: { FileManager.default.fileExists(atPath: $0.path) }) else { return nil }
        return "\(url.path) holds no usable checkpoint of its earlier run: starting over in it"
    }

    /// The checkpoint `--resume` continues from: `last.safetensors` if it is a valid checkpoint (of `kind`, if given),
    /// else the newest valid periodic checkpoint, with a note naming it and why `last` was passed over. Every file is
    /// read and its metadata validated here, before anything in the folder is written; a folder without a usable
    /// checkpoint is an error naming each candidate's problems (each bad metadata key among them).
    public func resumePoint(kind: CheckpointMetadata.Kind? = nil) throws -> ResumePoint {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RunFolderError.nothingToResume("nothing to resume: \(url.path) is not a folder")
        }
        var rejected: [String] = []
        for file in [last] + periodicCheckpoints() {
            guard FileManager.default.fileExists(atPath: file.path) else {
                rejected.append("it has no last.safetensors")
                continue
            }
            do {
                let metadata = try CheckpointMetadata(contentsOf: file).validated(as: kind, source: relativePath(file))
                let note = rejected.isEmpty ? nil
                    : "resuming from \(file.path) (" + rejected.joined(separator: "; ") + ")"
                return ResumePoint(file: file, metadata: metadata, note: note)
            } catch let error as CheckpointMetadataError {
                rejected.append("\(error)")
            } catch {
                rejected.append("\(relativePath(file)) is unusable: \(error)")
            }
        }
        let leftovers = rejected.count > 1 || FileManager.default.fileExists(atPath: config.path)
            || FileManager.default.fileExists(atPath: metrics.path)
        let startOver = !leftovers ? ""
            : "; start it over with `rlbench run … --out \(url.path)`"
        throw RunFolderError.nothingToResume("nothing to resume in \(url.path): " + rejected.joined(separator: "; ") + startOver)
    }

    /// The periodic checkpoints in `checkpoints/`, newest (highest step) first (not the training states beside them).
    func periodicCheckpoints() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? []
        return names.filter { $0.hasPrefix("step_") && $0.hasSuffix(".safetensors") && !$0.hasSuffix(".state.safetensors") }
            .sorted(by: >)
            .map { checkpoints.appendingPathComponent($0) }
    }

    /// The kind of run the folder holds, by the `format` of its newest checkpoint that names one, valid or not (to
    /// choose the trainer that `--resume` goes to, which then reports what is wrong).
    public func recordedKind() -> CheckpointMetadata.Kind? {
        for file in [last] + periodicCheckpoints() {
            if let kind = (try? CheckpointMetadata(contentsOf: file))?.kind { return kind }
        }
        return nil
    }

    /// `file`'s path inside the folder, for messages.
    private func relativePath(_ file: URL) -> String {
        file.path.hasPrefix(url.path + "/") ? String(file.path.dropFirst(url.path.count + 1)) : file.path
    }

    /// Makes the folder and its `checkpoints/`.
    public func create() throws { try Files.makeDirectory(checkpoints) }

    /// Makes the folder and claims it for this process until the returned lock is released (or the process dies, even
    /// by kill -9: the lock is the kernel's `flock` on `.rlbench.lock`). A folder another run holds is an error naming
    /// its pid; a new run (not `resuming`) also re-checks, under the lock, that no run has finished there meanwhile.
    public func claim(resuming: Bool) throws -> RunFolderLock {
        try create()
        let lock = try RunFolderLock(url.appendingPathComponent(".rlbench.lock"))
        if !resuming { try checkUnused() }
        return lock
    }

    /// The folder of this run's TensorBoard event files under `root` (a run's `tensorboard_log`): one per run folder,
    /// named as it is, so that `tensorboard --logdir ROOT` shows each run as its own line and a resumed run continues
    /// its own (as SB3 writes `ROOT/PPO_1`).
    public func tensorboardDirectory(under root: String) -> URL {
        URL(fileURLWithPath: root).appendingPathComponent(url.standardizedFileURL.lastPathComponent)
    }

    /// Writes `config.yml`.
    public func writeConfig(_ yaml: String) throws { try AtomicFile.write(Data(yaml.utf8), to: config) }

    /// Writes a checkpoint as `checkpoints/step_<step>.safetensors` (or `name` in the folder) and as
    /// `last.safetensors`; returns the first.
    @discardableResult
    public func saveCheckpoint(_ tensors: [(name: String, tensor: Tensor)], metadata: CheckpointMetadata,
                               step: Int, named name: String? = nil) throws -> URL {
        try saveCheckpoint(SafeTensors.encode(tensors, metadata: metadata.values), trainingState: nil, step: step, named: name)
    }

    /// Writes the checkpoint file bytes `checkpoint` as `saveCheckpoint(_:metadata:step:named:)` does, each copy
    /// --resume can continue from (`last`, a periodic one) preceded by `trainingState` beside it (`stateFile(of:)`).
    /// A crash between the two leaves a state its checkpoint refuses (the state names the checkpoint's hash).
    /// Without a training state, any earlier one beside those copies is removed.
    @discardableResult
    public func saveCheckpoint(_ checkpoint: Data, trainingState: Data?, step: Int, named name: String? = nil) throws -> URL {
        let file = name.map { url.appendingPathComponent($0) } ?? self.checkpoint(step: step)
        // A named copy (final.safetensors) is not one --resume continues from: no state beside it.
        if name == nil { try writeTrainingState(trainingState, of: file) }
        try AtomicFile.write(checkpoint, to: file)
        try writeTrainingState(trainingState, of: last)
        try AtomicFile.write(checkpoint, to: last)
        return file
    }

    /// The training state saved beside `checkpoint` (`X.safetensors` → `X.state.safetensors`), which `--resume`
    /// needs to continue the run bit for bit.
    public func stateFile(of checkpoint: URL) -> URL {
        checkpoint.deletingPathExtension().appendingPathExtension("state.safetensors")
    }

    private func writeTrainingState(_ state: Data?, of checkpoint: URL) throws {
        let file = stateFile(of: checkpoint)
        if let state { return try AtomicFile.write(state, to: file) }
        if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
    }
}

/// Where a resumed run continues from: a checkpoint file and its validated metadata.
public struct ResumePoint: Sendable {
    public let file: URL
    public let metadata: CheckpointMetadata
    /// Set when the run continues from a periodic checkpoint because `last.safetensors` is missing or unusable: which
    /// file, and why (for the run to print).
    public let note: String?
}

/// An exclusive `flock` on a run folder's lock file, held while this object lives.
public final class RunFolderLock {
    private let descriptor: Int32

    init(_ file: URL) throws {
        descriptor = open(file.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw RunFolderError.inUse(file.deletingLastPathComponent().path, "cannot open \(file.path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(descriptor, &buffer, buffer.count, 0)
            let owner = String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            close(descriptor)
            throw RunFolderError.inUse(file.deletingLastPathComponent().path, owner.isEmpty ? "another process" : "pid \(owner)")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pwrite(descriptor, pid, pid.count, 0)
    }

    deinit { close(descriptor) }
}

public enum RunFolderError: Error, CustomStringConvertible, Equatable {
    case occupied(String)
    case nothingToResume(String)
    /// The folder, and who holds it.
    case inUse(String, String)
    /// The metrics file, and why its rows could not be written.
    case metricsNotWritten(String, String)

    public var description: String {
        switch self {
        case let .occupied(path):
            "\(path) already holds a run; continue it with --resume \(path), or choose another --out"
        case let .nothingToResume(message): message
        case let .metricsNotWritten(path, reason): "cannot write the metrics rows to \(path): \(reason)"
        case let .inUse(path, owner): "\(path) is in use by another rlbench run (\(owner)); wait for it, or choose another --out"
        }
    }
}

/// `metrics.csv`: a header, then rows appended as training goes, buffered and flushed at checkpoints. A resumed run
/// starts from the rows its checkpoint covers (later rows came from steps the run repeats). With a TensorBoard log
/// (`tensorboard_log`), every row also goes there as scalars, flushed with the rows.
public final class MetricsLog {
    private let handle: FileHandle
    private let url: URL
    private var buffer = ""
    /// The first write that failed (a full disk) while rows were appended; `flush` reports it.
    private var lostWrite: Error?
    /// The run's TensorBoard event file, if it keeps one.
    public let tensorboard: TensorBoardLog?

    /// Writes `header` and `keptRows` (without newlines) to `url`, replacing what was there, and opens it for rows;
    /// with `tensorboard` (the run's folder of event files, `RunFolder.tensorboardDirectory`), opens an event file
    /// there too.
    public init(url: URL, header: [String], keptRows: [String] = [], tensorboard: URL? = nil) throws {
        let rows = keptRows.map { $0 + "\n" }.joined()
        try AtomicFile.write(Data((header.joined(separator: ",") + "\n" + rows).utf8), to: url)
        self.url = url
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        self.tensorboard = try tensorboard.map { try TensorBoardLog(directory: $0, header: header, keptRows: keptRows) }
    }

    deinit { try? flush(); try? handle.close() }

    /// Adds a row (fields already formatted); it reaches the file at the next `flush` or when the buffer is large
    /// (a write that fails then is reported by the next `flush`).
    public func append(_ fields: [String]) {
        buffer += fields.joined(separator: ",") + "\n"
        tensorboard?.add(row: fields)
        if buffer.utf8.count > 1 << 16 {
            do { try writeRows() } catch { lostWrite = lostWrite ?? error }
        }
    }

    /// Writes the buffered rows (and the TensorBoard events); throws when they, or rows written since the last
    /// `flush`, could not be written, so a run stops at its next checkpoint rather than going on with rows missing
    /// from its file.
    public func flush() throws {
        try writeRows()
        try tensorboard?.flush()
    }

    private func writeRows() throws {
        if let lostWrite { throw RunFolderError.metricsNotWritten(url.path, lostWrite.localizedDescription) }
        guard !buffer.isEmpty else { return }
        let rows = buffer
        buffer = ""
        do { try handle.write(contentsOf: Data(rows.utf8)) } catch {
            lostWrite = error
            throw RunFolderError.metricsNotWritten(url.path, error.localizedDescription)
        }
    }

    /// The data rows of an existing metrics file (header dropped), for a resumed run to keep; none if it is absent.
    public static func rows(of url: URL) throws -> [Substring] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let text: String
        do { text = try Files.text(url) } catch {
            throw RunFolderError.nothingToResume("cannot read \(url.path) to continue it: \(error.localizedDescription)")
        }
        return Array(text.split(separator: "\n").dropFirst())
    }
}

/// A JSON object string with sorted keys (checkpoint metadata values).
public func jsonString(_ object: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}
