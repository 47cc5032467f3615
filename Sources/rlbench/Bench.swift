import ArgumentParser

/// `rlbench bench ...`: benchmarks that print figures (one JSON object per line with `--json`).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed and learning; prints figures (JSON lines with --json).",
        subcommands: [
            BenchCore.self,
            BenchAgents.self,
            BenchLearn.self,
            BenchEnv.self,
            BenchView.self,
        ]
    )
}
