import ArgumentParser
import Foundation
import RLCore

/// `rlbench bench ...`: benchmarks that print figures (one JSON object per line with `--json`).
public struct Bench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Measure speed, side by side with the peers; prints figures (JSON lines with --json).",
        subcommands: [
            BenchCore.self,
            BenchAgents.self,
            BenchEnv.self,
            BenchView.self,
            BenchLayers.self,
            BenchGenerative.self,
            BenchSweep.self,
        ]
    )

    public init() {}
}

/// The machine a benchmark ran on, printed first: figures from different CPUs (or OpenBLAS kernel sets) differ.
enum MachineLine {
    /// The CPU's model name (Linux /proc/cpuinfo), or "unknown".
    static var cpuModel: String {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "unknown" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }

    /// `{"name": "machine", "cpu": ..., "cores": ..., "blas_kernels": ...}` with `json`, else one plain line.
    static func emit(json: Bool) {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if json {
            let cpu = cpuModel.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            print("{\"name\": \"machine\", \"cpu\": \"\(cpu)\", \"cores\": \(cores), \"blas_kernels\": \"\(BLASKernels.coreName)\"}")
        } else {
            print("machine: \(cpuModel), \(cores) cores; OpenBLAS kernels \(BLASKernels.coreName)")
        }
        fflush(nil)
    }
}
