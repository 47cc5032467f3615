import Environments
import Foundation
import Testing

/// Text-map grid worlds: the shipped maps, movement and rewards, slipping, seeding, and malformed maps.
struct GridWorldTests {
    @Test func shippedMapsLoadAndFourRoomsIsTheDefault() throws {
        #expect(GridWorld.shippedMapNames == ["four_rooms", "lava_bridge"])
        let env = try Registry.make("GridWorld-v0")
        #expect(env.observationSpace == .discrete(12 * 13))
        #expect(env.actionSpace == .discrete(4))
        #expect(env.reset(seed: 0) == [14])  // S at row 1, column 1
        let bridge = try Registry.make("GridWorld-v0", options: ["map": "lava_bridge"])
        #expect(bridge.observationSpace == .discrete(7 * 11))
        #expect {
            try Registry.make("GridWorld-v0", options: ["map": "atlantis"])
        } throws: { "\($0)".contains("neither a file nor a shipped map (shipped: four_rooms, lava_bridge)") }
    }

    @Test func movesRewardsWallsAndTerminalTiles() throws {
        let env = try Registry.make("GridWorld-v0", options: ["map": "lava_bridge"])
        let (left, down, right) = (0, 1, 2)
        // Into the wall: stay, pay the step.
        env.reset(seed: 1)
        var r = try env.step(left)
        #expect(r.observation == [12] && r.reward == -0.1 && !r.terminated)
        // Down the left column to the near goal `$` (worth 2, plus the step).
        for expected: Float in [23, 34, 45] {
            r = try env.step(down)
            #expect(r.observation == [expected] && r.reward == -0.1 && !r.terminated)
        }
        r = try env.step(down)
        #expect(r.observation == [56] && abs(r.reward - 1.9) < 1e-12 && r.terminated && !r.truncated)
        #expect(throws: EnvironmentError.self) { try env.step(down) }
        // Right then down: into the lava.
        env.reset(seed: 1)
        _ = try env.step(right)
        r = try env.step(down)
        #expect(r.observation == [24] && abs(r.reward - -10.1) < 1e-12 && r.terminated)
    }

    @Test func slippingFollowsTheMapsProbability() throws {
        // four_rooms slips with probability 0.1: half of that to each perpendicular direction.
        let world = try GridWorld(text: GridWorld.exampleMap)
        var observation: [Float] = [0]
        world.reset(seed: 123)
        let centre = 3 * 13 + 3  // open floor on every side
        var counts = [Int: Int]()
        let n = 40_000
        for _ in 0..<n {
            try world.setState(centre)
            _ = try observation.withUnsafeMutableBufferPointer { try world.step(.discrete(2), into: $0) }
            counts[Int(observation[0]) - centre, default: 0] += 1
        }
        #expect(Set(counts.keys) == [1, 13, -13])
        #expect(throws: EnvironmentError.invalidState("state 0 is not a free cell")) { try world.setState(0) }  // right, or slipped down/up
        for (offset, expected) in [(1, 0.9), (13, 0.05), (-13, 0.05)] {
            let frequency = Double(counts[offset]!) / Double(n)
            #expect(abs(frequency - expected) < 0.01, "offset \(offset): \(frequency)")
        }
    }

    @Test func sameSeedSameSlipperyEpisode() throws {
        func episode(seed: UInt64) throws -> [Float] {
            let env = try Registry.make("GridWorld-v0")
            var trace = env.reset(seed: seed)
            for t in 0..<200 {
                let r = try env.step(t % 3 == 0 ? 1 : 2)
                trace += r.observation
                if r.terminated || r.truncated { break }
            }
            return trace
        }
        #expect(try episode(seed: 5) == episode(seed: 5))
        #expect(try episode(seed: 5) != episode(seed: 6))
    }

    @Test func malformedMapsNameTheLineAndProblem() {
        let cases: [(String, String)] = [
            ("#####\n#S.X#\n#####", "line 2: unknown tile 'X'"),
            ("#####\n#S.G#\n####", "line 3: row of 4 tiles, expected 5"),
            ("#####\n#..G#\n#####", "exactly one S, found 0"),
            ("#####\n#S.G#\nslip: 0.1\n#####", "line 3: header line 'slip: 0.1' after the grid"),
            ("wind: 3\n#S.G#", "line 1: unknown key 'wind'"),
            ("slip: 1.5\n#S.G#", "line 1: slip must be in [0, 1]"),
            ("step_reward: lots\n#S.G#", "line 1: 'lots' is not a number"),
            ("# only a comment\n", "the map has no grid rows"),
        ]
        for (text, message) in cases {
            #expect("expected “\(message)”", performing: { try GridWorld(text: text) }, throws: { error in
                "\(error)".contains(message)
            })
        }
    }
}
