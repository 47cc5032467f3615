import Environments
import Foundation
import Imaging
import SeededRandom
import Testing

/// MinAtar against the `minatar` package 1.0.15: recorded runs (Recordings/MinAtar, with every random number the
/// package drew) replayed step by step, plus what the recordings do not show.
@Suite struct MinAtarTests {
    static let games = ["Breakout", "SpaceInvaders", "Freeway", "Asterix", "Seaquest"]
    static let recordings = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Recordings/MinAtar")

    @Test(arguments: games)
    func recordedRunsReplayExactly(_ game: String) throws {
        let runs = try MinAtarRecording.load(Self.recordings.appendingPathComponent("\(game)-v1.jsonl.gz"))
        #expect(runs.map(\.actions.count) == [300, 300, 300, 1500])   // three random runs, the scripted player's
        for run in runs {
            #expect(run.env == "MinAtar/\(game)-v1")
            let report = try run.replay()
            #expect(report.passed, "\(report.file): \(report.firstMismatch ?? "")")
        }
    }

    /// The replay notices a wrong rule: the same run with another action at one step no longer matches, and draws
    /// fed in another order are caught.
    @Test func replayDetectsADifferentRun() throws {
        var run = try #require(try MinAtarRecording.load(Self.recordings.appendingPathComponent("Breakout-v1.jsonl.gz")).first)
        run.actions[5] = (run.actions[5] + 1) % 3
        run.actions[6] = (run.actions[6] + 1) % 3
        #expect(try run.replay().firstMismatch != nil)
        var shifted = try #require(try MinAtarRecording.load(Self.recordings.appendingPathComponent("Freeway-v1.jsonl.gz")).first)
        shifted.draws.swapAt(0, 8)   // a speed draw where a direction draw belongs
        #expect(try shifted.replay().firstMismatch?.contains("randint(1, 6) asked for") == true)
    }

    @Test func spacesAndIdsFollowThePackage() throws {
        let expected: [String: (channels: Int, minimal: Int)] = [
            "Breakout": (4, 3), "SpaceInvaders": (6, 4), "Freeway": (7, 3), "Asterix": (4, 5), "Seaquest": (10, 6)]
        for (game, shape) in expected {
            let v1 = try Registry.make("MinAtar/\(game)-v1"), v0 = try Registry.make("MinAtar/\(game)-v0")
            #expect(v1.observationSpace == .box(low: 0, high: 1, shape: [10, 10, shape.channels]))
            #expect(v1.actionSpace == .discrete(shape.minimal) && v0.actionSpace == .discrete(6))
            #expect(v1.spec?.maxEpisodeSteps == nil)
        }
        #expect(throws: EnvironmentError.self) { try Registry.make("MinAtar/Breakout-v1", options: ["sticky_action_prob": "1.5"]) }
    }

    /// Without sticky actions Breakout's paddle goes exactly where it is sent; with `sticky_action_prob=1` it never
    /// leaves the middle (every step repeats the first action, no-op).
    @Test func stickyActionOption() throws {
        func paddle(_ options: [String: String]) throws -> Int {
            let env = try Registry.make("MinAtar/Breakout-v1", options: options)
            var obs = env.reset(seed: 4)
            for _ in 0..<3 { obs = try env.step(1).observation }   // left
            return (0..<10).first { obs[(9 * 10 + $0) * 4] == 1 }!
        }
        #expect(try paddle(["sticky_action_prob": "0"]) == 1)
        #expect(try paddle(["sticky_action_prob": "1"]) == 4)
    }

    /// Drawn as the package's rgb_array: each cell in the colour of its highest channel, black where empty.
    @Test func renderColoursCells() throws {
        let env = try Registry.make("MinAtar/Breakout-v1", options: ["sticky_action_prob": "0"])
        env.reset(seed: 0)
        let image = env.render()
        #expect(image.width == 320 && image.height == 320)
        #expect(image[5 * 32 + 16, 2 * 32 + 16] == RGB(193, 202, 243))   // a brick (channel 3 of 4)
        #expect(image[4 * 32 + 16, 9 * 32 + 16] == RGB(22, 61, 78))      // the paddle (channel 0)
        #expect(image[5 * 32 + 16, 6 * 32 + 16] == RGB(0, 0, 0))
    }
}
