import ArgumentParser
import CBLAS
import CKernels
import Foundation
import Support
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
    printRecord(json: json, name: name, fields: parameters.map { ($0.key, $0.value) }, value: value, unit: unit, label: label)
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

    @Option(parsing: .unconditional, help: "Seconds of measurement per figure.")
    var seconds = 1.0

    @Option(parsing: .unconditional, help: "Steps of the memory-stability loop.")
    var memorySteps = 100_000

    func validate() throws {
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be positive, got \(seconds)") }
        guard memorySteps >= 1 else { throw ValidationError("--memory-steps must be positive, got \(memorySteps)") }
    }

    func run() throws {
        MachineLine.emit(json: json)
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
            let net = "4-\(width)-\(width)-2"
            let step = MLPStep(width: width, batch: 64, seed: 1)
            let t = bestTimePerCall(seconds: seconds) { step.run() } * 1e6
            report(json: json, name: "mlp_step_us", value: t, unit: "us", ["backend": "core", "net": net, "batch": 64],
                   label: "train step \(net), batch 64")
            // The same step in PyTorch, side by side (the faster of 1 and 2 threads), when it is installed.
            guard let torch = PyTorchStep.microseconds(width: width, batch: 64, seconds: seconds) else {
                if width == 64 { FileHandle.standardError.write(Data("pytorch: not importable by python3; side-by-side skipped (pip install torch)\n".utf8)) }
                continue
            }
            report(json: json, name: "mlp_step_us", value: torch.us, unit: "us",
                   ["backend": "pytorch", "net": net, "batch": 64, "threads": torch.threads, "version": torch.version],
                   label: "train step \(net), batch 64, PyTorch (\(torch.threads) thr)")
            report(json: json, name: "mlp_step_ratio", value: t / torch.us, unit: "x", ["net": net, "batch": 64],
                   label: "core time / PyTorch time, \(net)")
        }
        // Products with one tiny dimension (PPO's CartPole shapes): the core's thin kernel against OpenBLAS.
        for (label, transA, transB, m, n, k) in [("first layer forward 256x4 . (64x4)T", false, true, 256, 64, 4),
                                                 ("head forward 256x64 . (2x64)T", false, true, 256, 2, 64),
                                                 ("head weight gradient (256x2)T . 256x64", true, false, 2, 64, 256)] {
            let a = Tensor.uniform([m * k], low: -1, high: 1, using: &rng).data
            let b = Tensor.uniform([k * n], low: -1, high: 1, using: &rng).data
            var c = [Float](repeating: 0, count: m * n)
            let lda = transA ? m : k, ldb = transB ? k : n
            let shape = "\(m)x\(n)x\(k)"
            for backend in ["core", "cblas"] {
                let t = bestTimePerCall(seconds: seconds / 2) {
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                        if backend == "core" {
                            Gemm.multiply(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!,
                                          lda: lda, b: bp.baseAddress!, ldb: ldb, beta: 0, c: cp.baseAddress!, ldc: n)
                        } else {
                            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                        Int32(m), Int32(n), Int32(k), 1, ap.baseAddress, Int32(lda), bp.baseAddress, Int32(ldb),
                                        0, cp.baseAddress, Int32(n))
                        }
                    } } }
                }
                report(json: json, name: "thin_gemm_us", value: t * 1e6, unit: "us", ["backend": backend, "shape": shape],
                       label: "\(label) (\(backend == "core" ? "core" : "raw cblas_sgemm"))")
            }
        }

        // The element-wise kernels, on every path this CPU has (the same bits; only the speed differs).
        let values = Tensor.uniform([1 << 16], low: -4, high: 4, using: &rng).data
        var out = [Float](repeating: 0, count: values.count)
        let level = rl_kernels_level()
        defer { rl_kernels_limit(level) }
        for path in (0...level).reversed() {
            rl_kernels_limit(path)
            let path = ["portable", "avx2", "avx512"][Int(path)]
            let t = bestTimePerCall(seconds: seconds / 2) { rl_tanh(values, &out, values.count) }
            report(json: json, name: "tanh_ns", value: t / Double(values.count) * 1e9, unit: "ns", ["path": path, "n": values.count],
                   label: "tanh per value (\(path))")
            let parameters = MLP(sizes: [4, 256, 256, 2], activation: .relu, using: &rng).namedParameters()
            for (_, p) in parameters { p.grad = [Float](repeating: 1e-3, count: p.count) }
            let adam = Adam(parameters, learningRate: 1e-3)
            let u = bestTimePerCall(seconds: seconds / 2) { adam.step() }
            report(json: json, name: "adam_step_us", value: u * 1e6, unit: "us", ["path": path, "parameters": 67_330],
                   label: "Adam step, 67k parameters, two cores (\(path))")
        }

        // Memory must stay flat: the peak after warm-up equals the peak at the end.
        Allocator.releaseFreedMemory()
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

/// Times the same training step in PyTorch through `python3` (best per-call time over `seconds`, for 1 and 2 threads;
/// the faster is reported); nil when PyTorch cannot be imported.
enum PyTorchStep {
    static func microseconds(width: Int, batch: Int, seconds: Double) -> (us: Double, threads: Int, version: String)? {
        guard let (status, data) = try? Peer.run("mlp_step", [String(width), String(batch), String(seconds)]) else { return nil }
        let fields = String(decoding: data, as: UTF8.self).split(separator: " ")
        guard status == 0, fields.count == 3, let us = Double(fields[0]), let threads = Int(fields[1])
        else { return nil }
        return (us, threads, fields[2].trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
