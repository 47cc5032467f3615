import Foundation
import Imaging
import Testing
import TestSupport

/// `rlbench run --view` and `rlbench play` as a person uses them, each test on its own private Xvfb display (typed
/// keys and window focus stay within the test); keys are typed with xdotool (installed by `scripts/setup --for-tests`).
@Suite(.serialized)
struct ViewTests {
    /// Runs `body` with the environment entry of a private display.
    func withDisplay<T>(_ body: ([String: String]) throws -> T) throws -> T {
        let server = try XvfbServer.start()
        defer { server.stop() }
        return try body(["DISPLAY": server.display])
    }

    @Test func runWithViewTrainsAndSavesAScreenshotOnRequest() throws {
        let (dir, result) = try trainWithView(agent: "ppo", steps: 20_000, pressing: "s")
        #expect(stepsDone(result.out) >= 20_000, "\(result.out)")
        let run = dir.appendingPathComponent("r")
        // The window changes nothing in training: a headless run with the same arguments writes the same checkpoint.
        let headless = try CLI.run(["run", "ppo", "--env", "CartPole-v1", "--steps", "20000", "--plain", "--out", "headless"], in: dir)
        #expect(headless.status == 0, "\(headless.err)")
        #expect(try Data(contentsOf: run.appendingPathComponent("final.safetensors"))
                == Data(contentsOf: dir.appendingPathComponent("headless/final.safetensors")), "--view trained differently")
        for file in ["final.safetensors", "eval.json", "metrics.csv", "learning_curve.png"] {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(file).path), "\(file) missing")
        }
        let shots = try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasSuffix(".png") && $0.hasPrefix("rlbench-") }
        try #require(shots.count == 1, "screenshots: \(shots); stderr: \(result.err)")
        #expect(result.err.contains("viewer: screenshot saved to \(run.appendingPathComponent(shots[0]).path)"))
        // The screenshot is the window: the CartPole frame (600x400) beside the status panel.
        let shot = try PNG.decode(Data(contentsOf: run.appendingPathComponent(shots[0])))
        #expect(shot.width > 600 && shot.height >= 400, "\(shot.width)x\(shot.height)")
        #expect(shot[300, shot.height / 2 - 150] == RGB(255, 255, 255), "the frame's white background")
    }

    @Test func closingTheWindowLetsTrainingContinueHeadless() throws {
        let (dir, result) = try trainWithView(agent: "a2c", steps: 500_000, pressing: "q")
        #expect(result.err.contains("viewer: window closed; training continues headless"), "\(result.err)")
        #expect(stepsDone(result.out) >= 500_000, "\(result.out)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r/final.safetensors").path))
    }

    /// The step count of a run's closing "done: N steps" line (0 without one).
    private func stepsDone(_ output: String) -> Int {
        output.firstMatch(of: /done: (\d+) steps/).flatMap { Int($0.1) } ?? 0
    }

    /// Runs `rlbench run <agent> --env CartPole-v1 --view` into `<dir>/r`, types `key` into its window as soon as it
    /// appears, and checks that the window appeared and the run succeeded. The window stays up through training and
    /// the final 100-episode evaluation, long enough for xdotool to find it on a busy machine.
    private func trainWithView(agent: String, steps: Int, pressing key: String) throws
        -> (directory: URL, result: (status: Int32, out: String, err: String)) {
        let xdotool = try #require(CLI.executable(named: "xdotool"),
                                   "xdotool is missing: install it with `scripts/setup --for-tests`")
        let dir = CLI.temporaryDirectory()
        let (pressed, result) = try withDisplay { display in
            let process = try CLI.start(["run", agent, "--env", "CartPole-v1", "--view", "--steps", String(steps),
                                         "--plain", "--out", "r"], in: dir, environment: display)
            let pressed = try press(key, inWindowNamed: "\(agent) on CartPole-v1", whileRunning: process,
                                    xdotool: xdotool, display: display)
            return (pressed, process.finish())
        }
        #expect(pressed, "the window never appeared")
        #expect(result.status == 0, "stderr: \(result.err)")
        return (dir, result)
    }

    /// Types `key` into the window whose title matches `name` as soon as it appears; false if the process ended first.
    /// xdotool's exit status is not the outcome: a key that closes the window makes its key-up fail (the window is
    /// gone), so the callers check what the key did instead.
    private func press(_ key: String, inWindowNamed name: String, whileRunning process: CLI.Running,
                       xdotool: String, display: [String: String]) throws -> Bool {
        while process.isRunning {
            let found = try CLI.runTool(xdotool, ["search", "--name", name], environment: display)
            if let window = found.out.split(separator: "\n").first {
                _ = try CLI.runTool(xdotool, ["key", "--window", String(window), key], environment: display)
                return true
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    @Test func playShowsTheTrainedPolicyAndPrintsEachEpisode() throws {
        let dir = CLI.temporaryDirectory()
        let train = try CLI.run(["run", "qlearning", "--env", "CliffWalking-v1", "--plain", "--eval-episodes", "1",
                                 "--out", "q"], in: dir)
        try #require(train.status == 0, "stderr: \(train.err)")
        let play = try withDisplay { display in
            try CLI.run(["play", "q/final.safetensors", "--episodes", "2", "--fps", "240"], in: dir, environment: display)
        }
        #expect(play.status == 0, "stderr: \(play.err)")
        // Q-learning's greedy policy walks the optimal path along the cliff: 13 steps, return −13.
        #expect(play.out.contains("episode 1: return -13.00\nepisode 2: return -13.00\n"), "\(play.out)")
        #expect(play.out.contains("qlearning on CliffWalking-v1: mean return -13.00 over 2 episodes"), "\(play.out)")
    }

    @Test func withoutADisplayRunTrainsHeadlessAndPlayFailsClearly() throws {
        let dir = CLI.temporaryDirectory()
        let noDisplay = ["DISPLAY": "", "WAYLAND_DISPLAY": ""]
        let run = try CLI.run(["run", "a2c", "--view", "--steps", "2000", "--plain", "--eval-episodes", "1",
                               "--out", "a"], in: dir, environment: noDisplay)
        #expect(run.status == 0, "stderr: \(run.err)")
        #expect(run.err.contains("viewer: no display available: neither DISPLAY nor WAYLAND_DISPLAY is set; training headless"),
                "\(run.err)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a/final.safetensors").path))

        let play = try CLI.run(["play", "a/final.safetensors"], in: dir, environment: noDisplay)
        #expect(play.status != 0)
        #expect(play.err.contains("error: no display available"), "\(play.err)")

        let badFPS = try CLI.run(["run", "ppo", "--fps", "30"], in: dir)
        #expect(badFPS.status != 0 && badFPS.err.contains("add --view"), "\(badFPS.err)")
    }
}
