import ArgumentParser
import Environments
import Foundation
import SeededRandom

/// `rlbench bench env`: environment steps per second, single environments and vectors of CartPoles.
struct BenchEnv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Environment steps per second: every registered environment alone, and vectors of 8 and 64 CartPoles.",
        discussion: """
            Random actions come from a seeded generator (pre-generated, cycled); episodes auto-reset. Single \
            environments are made with Registry.make (time limit included) and stepped on one thread with the \
            allocation-free step(_:into:). Vectors count every sub-environment step, autoreset steps included. \
            Each figure is the best of three windows of --seconds/3 after a short warm-up (the least disturbed \
            by other load). With --json, one object per line: \
            {"name": "env_steps_per_s", "env": ..., "n_envs": ..., "threads": ..., "value": ..., "unit": "steps/s"}.
            """
    )

    @Flag(name: .long, help: "Print one JSON object per line instead of a table.")
    var json = false

    @Option(name: .long, parsing: .unconditional, help: "Measuring time per figure, in seconds.")
    var seconds = 1.5

    @Option(name: .long, help: "Only these environment ids (repeatable); default: every registered one and the vectors.")
    var env: [String] = []

    @Flag(name: .long, help: "Skip the vector benchmarks.")
    var noVector = false

    @Flag(name: .long, help: "Skip the single-environment benchmarks.")
    var noSingle = false

    @Option(name: .long, help: "Vector sizes to measure (repeatable).")
    var vectorEnvs: [Int] = [8, 64]

    @Option(name: .long, help: "Thread counts for the vectors (repeatable).")
    var threads: [Int] = [1, 2]

    /// Gymnasium 1.4.0 single-environment steps/s on the reference machine (for the table's last column).
    static let gymnasiumRate: [String: Double] = [
        "CartPole-v1": 110_000, "MountainCar-v0": 61_000, "Acrobot-v1": 20_000, "Pendulum-v1": 54_000,
    ]

    struct Figure {
        var env: String, numEnvs: Int, threads: Int, stepsPerSecond: Double
    }

    func validate() throws {
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be positive, got \(seconds)") }
        guard vectorEnvs.allSatisfy({ $0 > 0 }), threads.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--vector-envs and --threads must be positive")
        }
        if noVector && noSingle { throw ValidationError("--no-vector and --no-single leave nothing to measure") }
        for id in env where !Registry.ids.contains(id) {
            throw ValidationError("unknown environment id '\(id)'; known ids: \(Registry.ids.joined(separator: ", "))")
        }
    }

    func run() throws {
        let ids = env.isEmpty ? Registry.ids : env
        if !json {
            print("env".padding(toLength: 26, withPad: " ", startingAt: 0) + "n_envs  threads        steps/s    ns/step  vs Gymnasium")
        }
        for id in ids where !noSingle {
            report(Figure(env: id, numEnvs: 1, threads: 1, stepsPerSecond: try measureSingle(id)))
        }
        if !noVector && (env.isEmpty || env.contains("CartPole-v1")) {
            for count in vectorEnvs {
                for threads in threads {
                    let rate = try measureVector("CartPole-v1", count: count, threads: threads)
                    report(Figure(env: "CartPole-v1", numEnvs: count, threads: threads, stepsPerSecond: rate))
                }
            }
        }
    }

    func report(_ f: Figure) {
        if json {
            print("{\"name\": \"env_steps_per_s\", \"env\": \"\(f.env)\", \"n_envs\": \(f.numEnvs), \"threads\": \(f.threads), "
                + "\"value\": \(f.stepsPerSecond.rounded()), \"unit\": \"steps/s\"}")
        } else {
            let ratio = Self.gymnasiumRate[f.env].map { String(format: "%10.0fx", f.stepsPerSecond / $0) } ?? ""
            print(f.env.padding(toLength: 26, withPad: " ", startingAt: 0)
                + String(format: "%6d  %7d  %13.0f  %9.1f  ", f.numEnvs, f.threads, f.stepsPerSecond, 1e9 / f.stepsPerSecond) + ratio)
        }
        fflush(nil)
    }

    /// Runs `batch` (which performs `stepsPerCall` steps per call) for a warm-up and three windows; the best rate.
    func measure(stepsPerCall: Int, _ batch: () throws -> Void) rethrows -> Double {
        let window = seconds / 3
        func rate(for duration: Double) throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            var calls = 0, elapsed = 0.0
            repeat {
                for _ in 0..<64 { try batch() }
                calls += 64
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            } while elapsed < duration
            return Double(calls * stepsPerCall) / elapsed
        }
        _ = try rate(for: min(0.2, window / 2))
        var best = 0.0
        for _ in 0..<3 { best = max(best, try rate(for: window)) }
        return best
    }

    /// Random actions for `space`, pre-generated from seed 0.
    static func actions(for space: Space, count: Int) -> [Action] {
        var rng = SeededGenerator(seed: 0)
        return (0..<count).map { _ in space.sample(using: &rng) }
    }

    func measureSingle(_ id: String) throws -> Double {
        let env = try Registry.make(id)
        let actions = Self.actions(for: env.actionSpace, count: 4096)
        var observation = [Float](repeating: 0, count: env.observationSpace.flatCount)
        return try observation.withUnsafeMutableBufferPointer { obs in
            env.reset(seed: 0, into: obs)
            var t = 0
            let stepsPerCall = 256
            return try actions.withUnsafeBufferPointer { actions in
                try measure(stepsPerCall: stepsPerCall) {
                    for _ in 0..<stepsPerCall {
                        if try env.step(actions[t & 4095], into: obs).done { env.reset(seed: nil, into: obs) }
                        t &+= 1
                    }
                }
            }
        }
    }

    func measureVector(_ id: String, count: Int, threads: Int) throws -> Double {
        let vector = try VectorEnvironment(id: id, count: count, threads: threads)
        defer { vector.close() }
        guard case let .discrete(n) = vector.actionSpace else { throw ValidationError("\(id) has no discrete actions") }
        let batches = 1024
        var rng = SeededGenerator(seed: 0)
        let actions = (0..<(batches * count)).map { _ in rng.nextInt(below: n) }
        vector.reset(seed: 0)
        var b = 0
        return try actions.withUnsafeBufferPointer { actions in
            try measure(stepsPerCall: count) {
                try vector.step(discrete: UnsafeBufferPointer(rebasing: actions[(b * count)..<((b + 1) * count)]))
                b = (b + 1) % batches
            }
        }
    }
}
