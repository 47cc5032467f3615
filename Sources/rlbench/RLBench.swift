import ArgumentParser

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
        main(nil)
    }
}
