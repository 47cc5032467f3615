import Foundation
import Support

/// A run's TensorBoard log (`tensorboard_log`, `run --tensorboard DIR`): the rows of `metrics.csv` as scalars under
/// Stable-Baselines3's tag names where SB3 has one, and pictures (a generative model's samples), written as an event
/// file that TensorBoard reads. `MetricsLog` feeds it every row it writes, so agents, classifiers and generative
/// models all get it from the run machinery.
///
/// - The event step is a row's first column (agents: the environment step; classifiers and generative models: the
///   epoch). The other columns become scalars (`tag(column:)`); empty fields are left out. Agents' rows also give
///   SB3's `rollout/ep_rew_mean` and `rollout/ep_len_mean` (means of the last 100 episodes, as SB3's) and `time/fps`.
/// - One event per step: TensorBoard's data server keeps one value per step of a series (a step that does not
///   increase counts as a restart, and replaces what it had from that step on). Rows of the same step (episodes of
///   several environments ending together) make one event: the mean `return` and `length` of those episodes, the
///   other columns from the step's last row.
/// - Records reach the file whole, at each `flush` (the run's checkpoints), so a killed run leaves a readable file.
/// - Each process writes a new file (`events.out.tfevents.<time>.<host>.<pid>`) in `directory`, beginning with a
///   SessionLog START at the step after the rows a resumed run keeps: both of TensorBoard's readers then drop the
///   earlier files' events from that step on (the steps the resumed run repeats), as for a restarted TensorFlow job.
public final class TensorBoardLog {
    /// Episodes averaged by `rollout/ep_rew_mean` and `rollout/ep_len_mean` (SB3's `stats_window_size`).
    public static let episodeWindow = 100

    public let file: URL
    private let columns: [String]
    private let handle: FileHandle
    private var pending: [UInt8] = []
    private var recentReturns: [Double] = []
    private var recentLengths: [Double] = []
    /// The rows of the latest step, not yet an event (the next step's row, or `flush`, writes them).
    private var stepRows: [[String]] = []

    /// Opens a new event file in `directory` for rows with `header`; `keptRows` are the rows a resumed run keeps
    /// (already in the earlier files), which fill the episode windows and say where the new file's steps begin.
    public init(directory: URL, header: [String], keptRows: [String] = []) throws {
        columns = header
        try Files.makeDirectory(directory)
        file = directory.appendingPathComponent(Self.newFileName(in: directory))
        guard FileManager.default.createFile(atPath: file.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: file) else {
            throw FileError(path: file.path, reason: "cannot create the TensorBoard event file")
        }
        self.handle = handle
        var firstNewStep: Int64 = 0
        for row in keptRows {
            let fields = Self.fields(row)
            remember(fields)
            if let x = fields.first.flatMap({ Double($0) }) { firstNewStep = Int64(x) + 1 }
        }
        let now = Date().timeIntervalSince1970
        append(Self.event(wallTime: now, step: 0) { $0.string(3, "brain.Event:2") })
        append(Self.event(wallTime: now, step: firstNewStep) { event in
            event.message(7) { $0.int(1, 1) }  // session_log { status: START }
        })
        try flush()
    }

    deinit { try? flush(); try? handle.close() }

    /// The scalars of one metrics row (fields as written to metrics.csv).
    public func add(row: [String]) {
        guard let x = row.first.flatMap(Double.init) else { return }
        if let current = stepRows.first?.first.flatMap(Double.init), current != x { writeStep() }
        stepRows.append(row)
        remember(row)
    }

    /// The event of the rows of one step (see the type's notes).
    private func writeStep() {
        guard let last = stepRows.last, let x = last.first.flatMap(Double.init) else { return }
        var values: [(tag: String, value: Double)] = []
        for (i, column) in columns.enumerated().dropFirst() {
            let value: Double?
            if column == "return" || column == "length" {
                let fields = stepRows.compactMap { i < $0.count ? Double($0[i]) : nil }
                value = fields.isEmpty ? nil : fields.reduce(0, +) / Double(fields.count)
            } else {
                value = i < last.count ? Double(last[i]) : nil
            }
            guard let value else { continue }
            let (tag, sign) = Self.tag(column: column)
            values.append((tag, sign * value))
        }
        stepRows = []
        if columns.contains("return") {
            values.append(("rollout/ep_rew_mean", recentReturns.reduce(0, +) / Double(max(recentReturns.count, 1))))
        }
        if columns.contains("length") {
            values.append(("rollout/ep_len_mean", recentLengths.reduce(0, +) / Double(max(recentLengths.count, 1))))
        }
        if columns.first == "step", let i = columns.firstIndex(of: "wall_time_s"), i < last.count, let wall = Double(last[i]), wall > 0 {
            values.append(("time/fps", x / wall))
        }
        append(Self.event(wallTime: Date().timeIntervalSince1970, step: Int64(x)) { event in
            event.message(5) { summary in
                for (tag, value) in values {
                    summary.message(1) { $0.string(1, tag); $0.float(2, Float(value)) }  // Value { tag, simple_value }
                }
            }
        })
    }

    /// A PNG picture (`width` × `height`, RGB) as an image summary at `step`.
    public func add(image png: Data, width: Int, height: Int, tag: String, step: Int) {
        append(Self.event(wallTime: Date().timeIntervalSince1970, step: Int64(step)) { event in
            event.message(5) { summary in
                summary.message(1) { value in
                    value.string(1, tag)
                    value.message(4) { image in  // Image { height, width, colorspace (3: RGB), encoded_image_string }
                        image.int(1, height); image.int(2, width); image.int(3, 3); image.bytes(4, png)
                    }
                }
            }
        })
    }

    /// Writes the records added since the last flush, whole (with the event of the latest step: a run flushes at a
    /// checkpoint, after every row of that step).
    public func flush() throws {
        writeStep()
        guard !pending.isEmpty else { return }
        let records = pending
        pending = []
        do { try handle.write(contentsOf: Data(records)) } catch {
            throw FileError(path: file.path, reason: "cannot write the TensorBoard events: \(error.localizedDescription)")
        }
    }

    // MARK: Tags

    /// The tag of a metrics column and the sign its value is logged with: SB3's name where SB3 logs the same
    /// quantity (`entropy` as SB3's `train/entropy_loss`, which is −entropy), `train/`, `val/` or `test/` for a
    /// classifier's `train_loss`, `val_accuracy`, …, and `train/<column>` for the rest.
    public static func tag(column: String) -> (tag: String, sign: Double) {
        if let known = sb3Tags[column] { return known }
        for split in ["train", "val", "test"] where column.hasPrefix(split + "_") {
            return ("\(split)/" + column.dropFirst(split.count + 1), 1)
        }
        return ("train/" + column, 1)
    }

    private static let sb3Tags: [String: (tag: String, sign: Double)] = [
        "episode": ("time/episodes", 1), "return": ("rollout/episode_return", 1), "length": ("rollout/episode_length", 1),
        "wall_time_s": ("time/time_elapsed", 1), "epsilon": ("rollout/exploration_rate", 1),
        "entropy": ("train/entropy_loss", -1), "step": ("time/steps", 1),
    ]

    // MARK: Records

    /// An `Event` message: wall_time, step, then what `what` adds (file_version, summary or session_log).
    private static func event(wallTime: Double, step: Int64, _ what: (inout ProtobufWriter) -> Void) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        if step != 0 { event.int(2, step) }
        what(&event)
        return event.encoded
    }

    /// Adds one record: the length (uint64), its masked CRC-32C, the data, the data's masked CRC-32C.
    private func append(_ data: [UInt8]) {
        var length = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { length[i] = UInt8(truncatingIfNeeded: UInt64(data.count) >> (8 * i)) }
        pending += length
        pending += CRC32C.masked(length)
        pending += data
        pending += CRC32C.masked(data)
    }

    private func remember(_ row: [String]) {
        func window(_ column: String, _ values: inout [Double]) {
            guard let i = columns.firstIndex(of: column), i < row.count, let v = Double(row[i]) else { return }
            values.append(v)
            if values.count > Self.episodeWindow { values.removeFirst() }
        }
        window("return", &recentReturns)
        window("length", &recentLengths)
    }

    private static func fields(_ row: String) -> [String] {
        row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }

    /// `events.out.tfevents.<seconds>.<host>.<pid>`, its time after that of every event file already in `directory`
    /// (TensorBoard reads a folder's files in name order).
    private static func newFileName(in directory: URL) -> String {
        let prefix = "events.out.tfevents."
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let latest = names.compactMap { name -> Int? in
            guard name.hasPrefix(prefix) else { return nil }
            return Int(name.dropFirst(prefix.count).prefix { $0.isNumber })
        }.max() ?? 0
        let seconds = max(Int(Date().timeIntervalSince1970), latest + 1)
        var host = [CChar](repeating: 0, count: 256)
        let name = gethostname(&host, host.count) == 0 ? String(cString: host) : "localhost"
        return prefix + String(format: "%010d", seconds) + "." + name.replacingOccurrences(of: "/", with: "_") + ".\(getpid())"
    }
}

/// CRC-32C (Castagnoli), masked as TensorFlow's record files mask it: rotated right by 15 bits plus 0xa282ead8.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// The masked checksum, little-endian.
    static func masked(_ bytes: [UInt8]) -> [UInt8] {
        let crc = checksum(bytes)
        let masked = ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
        return (0..<4).map { UInt8(truncatingIfNeeded: masked >> (8 * $0)) }
    }
}
