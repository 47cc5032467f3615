import ArgumentParser
import CBLAS
import Foundation
import RLCore
import SeededRandom

/// Peak and current resident memory of this process, in MB (Linux /proc).
enum Memory {
    static func field(_ name: String) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
              let kb = Double(line.split(separator: " ").dropFirst().first(where: { !$0.isEmpty }) ?? "") else { return 0 }
        return kb / 1024
    }
    static var peakMB: Double { field("VmHWM") }
    static var currentMB: Double { field("VmRSS") }
    /// Resets the peak to the current resident size (writing 5 to /proc/self/clear_refs).
    static func resetPeak() { try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8) }
}

/// Prints one figure: a table line, or with `json` one JSON object with `name`, `value`, `unit` and parameters.
func report(json: Bool, name: String, value: Double, unit: String, _ parameters: KeyValuePairs<String, Any>, label: String) {
    if json {
        var fields = ["\"name\": \"\(name)\""]
        for (k, v) in parameters { fields.append(v is String ? "\"\(k)\": \"\(v)\"" : "\"\(k)\": \(v)") }
        fields.append("\"value\": \(value)")
        fields.append("\"unit\": \"\(unit)\"")
        print("{" + fields.joined(separator: ", ") + "}")
    } else {
        print(label.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: "%12.2f %@", value, unit))
    }
    fflush(nil)
}

/// Runs `body` repeatedly for about `seconds`; returns the best time per call over five windows.
func bestTimePerCall(seconds: Double, _ body: () -> Void) -> Double {
    body()
    var calls = 1
    var start = Date()
    while Date().timeIntervalSince(start) < 0.02 { body(); calls += 1 }
    let perWindow = max(1, Int(Double(calls) * seconds / 5 / 0.02))
    var best = Double.infinity
    for _ in 0..<5 {
        start = Date()
        for _ in 0..<perWindow { body() }
        best = min(best, Date().timeIntervalSince(start) / Double(perWindow))
    }
    return best
}

/// `rlbench bench core`: GEMM throughput, MLP training-step latency and memory stability of the tensor core.
struct BenchCore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "GEMM GFLOP/s (core vs raw cblas_sgemm), MLP train-step µs, and peak memory of a long training loop.")

    @Flag(help: "One JSON object per line.")
    var json = false

    @Option(help: "Seconds of measurement per figure.")
    var seconds = 1.0

    @Option(help: "Steps of the memory-stability loop.")
    var memorySteps = 100_000

    func run() throws {
        var rng = SeededGenerator(seed: 0)
        for n in [64, 256, 1024, 2048] {
            let a = Tensor.uniform([n, n], low: -1, high: 1, using: &rng), b = Tensor.uniform([n, n], low: -1, high: 1, using: &rng)
            let flops = 2.0 * Double(n * n * n)
            let budget = n >= 1024 ? max(seconds, 2) : seconds
            let core = bestTimePerCall(seconds: budget) { _ = a.matmul(b) }
            var c = [Float](repeating: 0, count: n * n)
            let raw = bestTimePerCall(seconds: budget) {
                a.data.withUnsafeBufferPointer { ap in b.data.withUnsafeBufferPointer { bp in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, ap.baseAddress, Int32(n),
                                bp.baseAddress, Int32(n), 0, &c, Int32(n))
                } }
            }
            report(json: json, name: "gemm_gflops", value: flops / core / 1e9, unit: "GFLOP/s", ["backend": "core", "n": n],
                   label: "gemm \(n)x\(n) core")
            report(json: json, name: "gemm_gflops", value: flops / raw / 1e9, unit: "GFLOP/s", ["backend": "cblas", "n": n],
                   label: "gemm \(n)x\(n) raw cblas_sgemm")
        }
        for width in [64, 256] {
            let step = MLPStep(width: width, batch: 64, seed: 1)
            let t = bestTimePerCall(seconds: seconds) { step.run() }
            report(json: json, name: "mlp_step_us", value: t * 1e6, unit: "us", ["net": "4-\(width)-\(width)-2", "batch": 64],
                   label: "train step 4-\(width)-\(width)-2, batch 64")
        }
        // Memory must stay flat: the peak after warm-up equals the peak at the end.
        let step = MLPStep(width: 64, batch: 64, seed: 2)
        for _ in 0..<1000 { step.run() }
        Memory.resetPeak()
        let warm = Memory.peakMB
        for _ in 0..<memorySteps { step.run() }
        let peak = Memory.peakMB
        report(json: json, name: "peak_rss_mb", value: peak, unit: "MB", ["net": "4-64-64-2", "steps": memorySteps, "after_warmup_mb": warm],
               label: "peak RSS after \(memorySteps) steps (warm-up \(String(format: "%.1f", warm)) MB)")
    }
}

/// One training step of a tanh MLP 4-w-w-2: forward, MSE loss, backward, Adam update.
final class MLPStep {
    let net: Sequential
    let optimizer: Adam
    let x: Tensor, y: Tensor

    init(width: Int, batch: Int, seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        net = MLP(sizes: [4, width, width, 2], activation: .tanh, using: &rng)
        optimizer = Adam(net.namedParameters(), learningRate: 1e-3)
        x = Tensor.normal([batch, 4], using: &rng)
        y = Tensor.normal([batch, 2], using: &rng)
    }

    func run() {
        net.zeroGrad()
        mseLoss(net(x), y).backward()
        optimizer.step()
    }
}
