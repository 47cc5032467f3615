import ArgumentParser
import Foundation
import RLCore

/// The `rlbench` command: train agents and generative models, inspect checkpoints, benchmark.
@main
struct RLBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rlbench",
        abstract: "A reinforcement-learning and generative-model workbench.",
        subcommands: [
            Run.self,
            Sample.self,
            Eval.self,
            Play.self,
            List.self,
            Env.self,
            Inspect.self,
            Classify.self,
            Bench.self,
        ]
    )

    static func main() {
        useVectorBLASKernels()
        Allocator.keepFreedMemory()
        // RLBENCH_CORES=1 keeps training on one core (for several runs side by side); results are the same.
        if ProcessInfo.processInfo.environment["RLBENCH_CORES"] == "1" { ForkJoin.isParallel = false }
        main(nil)
    }

    /// Restarts the process once with `OPENBLAS_CORETYPE` set when OpenBLAS did not recognise this CPU and chose
    /// kernels without its vector instructions (see `BLASKernels`). The restart keeps the arguments and the rest of
    /// the environment; if it fails, rlbench goes on with OpenBLAS's choice.
    private static func useVectorBLASKernels() {
        guard let coreType = BLASKernels.suggestedCoreType else { return }
        setenv("OPENBLAS_CORETYPE", coreType, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")
    }
}

/// Reads a `--seed` value: a whole number from 0 to 2⁶⁴ − 1. Options that take it parse unconditionally, so that a
/// negative number reaches this check instead of being read as a flag ("Missing value").
func parseSeed(_ text: String) throws -> UInt64 {
    guard let seed = UInt64(text) else {
        throw ValidationError("a seed is a whole number from 0 to \(UInt64.max)")
    }
    return seed
}
