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
        Allocator.keepFreedMemory()
        // RLBENCH_CORES=1 keeps training on one core (for several runs side by side); results are the same.
        if ProcessInfo.processInfo.environment["RLBENCH_CORES"] == "1" { ForkJoin.isParallel = false }
        main(nil)
    }
}
