import ArgumentParser
import CBLAS
import Foundation
import RLCore
import Support

/// The median time of one call of `body`, in seconds: three warm-up calls, then calls timed one by one for about
/// `seconds` (at least five). The median, not the best, because the two cores are shared.
func medianStepTime(seconds: Double, _ body: () -> Void) -> Double {
    for _ in 0..<3 { body() }
    var times: [Double] = []
    let end = Date().addingTimeInterval(seconds)
    while Date() < end || times.count < 5 {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
    }
    return median(times)
}

/// What two cores of this machine reach in a product, in GFLOP/s: the best of OpenBLAS's `sgemm` at 512 × 512 × 512
/// (large enough for its full speed, small enough to stay in cache). The yardstick of the benches' `peak_fraction`.
func gemmPeakGFLOPs() -> Double {
    let n = 512
    let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
    var c = [Float](repeating: 0, count: n * n)
    let t = bestTimePerCall(seconds: 0.5) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
    }
    return 2 * Double(n * n * n) / t / 1e9
}

/// A long-lived `torch_peer.py session`: steps are timed in it between the Swift side's timings, so that both see
/// the same load. Nil (after a note on stderr) when python3 cannot import torch.
final class TorchSession {
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private var buffered = Data()
    private(set) var version = ""

    init?(threads: Int) {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Peer.source("torch_peer"), String(threads), "session"]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        guard (try? process.run()) != nil, let ready = readLine(), ready.hasPrefix("ready ") else {
            FileHandle.standardError.write(Data("note: --torch: python3 cannot import torch (pip install torch); PyTorch rows skipped\n".utf8))
            return nil
        }
        version = String(ready.dropFirst(6))
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    /// The median step time of `model` in PyTorch, in seconds (nil if the peer failed); `argument` is the MNIST
    /// folder or the step's `peerSettings`.
    func medianStepTime(model: String, batch: Int, seconds: Double, argument: String? = nil) -> Double? {
        let line = [model, String(batch), String(seconds)] + (argument.map { [$0] } ?? [])
        input.fileHandleForWriting.write(Data((line.joined(separator: " ") + "\n").utf8))
        return readLine().flatMap(Double.init).map { $0 * 1e-6 }
    }

    private func readLine() -> String? {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffered.append(chunk)
        }
    }
}

/// Runs a child process (this executable with `arguments`, or `python3 -c <peer>`) and reads the JSON object it
/// prints last: each backend's epoch runs alone in its process, so its peak resident memory is its own.
func childRecord(_ arguments: [String], peer: String? = nil) throws -> [String: Any] {
    let child = Process()
    if let peer {
        child.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        child.arguments = ["python3", "-c", Peer.source(peer)] + arguments
    } else {
        child.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = arguments
    }
    let out = Pipe()
    child.standardOutput = out
    try child.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    child.waitUntilExit()
    guard child.terminationStatus == 0,
          let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
          let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else { throw ChildFailure(command: (child.arguments ?? []).prefix(1).joined() + " …", status: child.terminationStatus) }
    return object
}

struct ChildFailure: Error, CustomStringConvertible {
    let command: String, status: Int32
    var description: String { "the benchmark child \(command) failed (exit status \(status))" }
}

/// Shared options of `bench layers` and `bench generative`.
struct ComparisonOptions: ParsableArguments {
    @Flag(help: "One JSON object per line.")
    var json = false

    @Flag(help: "Also time PyTorch (python3 with torch).")
    var torch = false

    @Option(parsing: .unconditional, help: "PyTorch's threads (torch.set_num_threads); the core uses two cores.")
    var torchThreads = 2

    @Option(parsing: .unconditional, help: "Seconds of timed steps per model, backend and round.")
    var seconds = 2.0

    @Option(parsing: .unconditional, help: "Rounds alternating the core and PyTorch; medians are reported.")
    var rounds = 3

    @Option(help: "Folder of the MNIST IDX files (default $RLBENCH_DATA/mnist).")
    var dataDir: String?

    func validate() throws {
        guard seconds > 0, seconds.isFinite, rounds > 0, torchThreads > 0 else {
            throw ValidationError("--seconds, --rounds and --torch-threads must be positive")
        }
    }

    /// The MNIST folder: `--data-dir`, else `$RLBENCH_DATA/mnist`.
    var mnist: String { dataDir ?? ((ProcessInfo.processInfo.environment["RLBENCH_DATA"] ?? ".") + "/mnist") }

    /// Prints the machine line and the two-core sgemm row; returns that peak in GFLOP/s.
    func emitMachineAndPeak() -> Double {
        MachineLine.emit(json: json)
        let peak = gemmPeakGFLOPs()
        report(json: json, name: "gemm_peak_gflops", value: rounded(peak), unit: "GFLOP/s", ["backend": "cblas", "n": 512],
               label: "two-core sgemm 512³ (the peak of peak_fraction)")
        return peak
    }

    /// The PyTorch session with `--torch`.
    func torchSession() -> TorchSession? { torch ? TorchSession(threads: torchThreads) : nil }

    /// Runs `python3 -c torch_peer.py <threads> arguments...` and reads its record.
    func torchRecord(_ arguments: [String]) throws -> [String: Any] {
        try childRecord([String(torchThreads)] + arguments, peer: "torch_peer")
    }

    /// Times each step on the core and, with `torch`, in PyTorch, alternating for `rounds` rounds; prints the medians
    /// as `name` rows with GFLOP/s and the fraction of `peak`, and for PyTorch the ratio core time / PyTorch time.
    func compare(_ steps: [TrainingStep], name: String, extra: KeyValuePairs<String, String> = [:], torch: TorchSession?,
                 mnist: String? = nil, peak: Double) {
        for step in steps {
            var core: [Double] = [], theirs: [Double] = []
            for _ in 0..<rounds {
                core.append(medianStepTime(seconds: seconds, step.run))
                if let t = torch?.medianStepTime(model: step.model, batch: step.batch, seconds: seconds,
                                                         argument: step.peerSettings ?? mnist) { theirs.append(t) }
            }
            emit(name: name, step: step, backend: "core", seconds: median(core), extra: extra, peak: peak)
            if !theirs.isEmpty {
                emit(name: name, step: step, backend: "pytorch", seconds: median(theirs), extra: extra, peak: peak)
                report(json: json, name: name.replacingOccurrences(of: "_us", with: "_ratio"), value: median(core) / median(theirs),
                       unit: "x", ["model": step.model, "batch": step.batch], label: "\(step.model): core time / PyTorch time")
            }
        }
    }

    private func emit(name: String, step: TrainingStep, backend: String, seconds: Double, extra: KeyValuePairs<String, String>,
                      peak: Double) {
        let gflops = step.flops / seconds / 1e9
        var fields: [(String, Any)] = [("model", step.model)] + extra.map { ($0.key, $0.value) }
        fields += [("batch", step.batch), ("backend", backend), ("gflops", rounded(gflops)), ("peak_fraction", rounded(gflops / peak, 3))]
        printRecord(json: json, name: name, fields: fields, value: seconds * 1e6, unit: "us",
                    label: "\(step.model) step, batch \(step.batch), \(backend) (\(String(format: "%.1f", gflops)) GFLOP/s)")
    }
}

func rounded(_ x: Double, _ digits: Int = 2) -> Double {
    let scale = Foundation.pow(10, Double(digits))
    return (x * scale).rounded() / scale
}

/// One figure as `report` prints it, with fields in a given order.
func printRecord(json: Bool, name: String, fields: [(String, Any)], value: Double, unit: String, label: String) {
    if json {
        let parts = ["\"name\": \"\(name)\""] + fields.map { $0.1 is String ? "\"\($0.0)\": \"\($0.1)\"" : "\"\($0.0)\": \($0.1)" }
            + ["\"value\": \(value)", "\"unit\": \"\(unit)\""]
        print("{" + parts.joined(separator: ", ") + "}")
    } else {
        print(label.padding(toLength: 56, withPad: " ", startingAt: 0) + String(format: "%12.2f %@", value, unit))
    }
    fflush(nil)
}
