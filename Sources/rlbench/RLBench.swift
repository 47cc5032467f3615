import ArgumentParser
import Foundation
import Benchmarks
import CLIKit
import RLCore
import Support

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
            Export.self,
            Import.self,
            Classify.self,
            Sweep.self,
            Report.self,
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
