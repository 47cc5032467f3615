import Environments
import Testing

/// Gymnasium 1.x's options of the toy-text environments: FrozenLake's `success_rate` and `reward_schedule`, and
/// slippery CliffWalking.
@Suite struct ToyTextOptionsTests {
    /// The share of `trials` first steps (each from a fresh reset) that end in each (observation, reward).
    func outcomes(_ id: String, _ options: [String: String], action: Int, trials: Int = 30_000) throws -> [String: Double] {
        let env = try Registry.make(id, options: options)
        env.reset(seed: 11)
        var counts: [String: Int] = [:]
        for _ in 0..<trials {
            env.reset()
            let r = try env.step(.discrete(action))
            counts["\(Int(r.observation[0])) \(r.reward)", default: 0] += 1
        }
        return counts.mapValues { Double($0) / Double(trials) }
    }

    @Test func frozenLakeRewardScheduleIsPaidByTheCellReached() throws {
        let lake = try Registry.make("FrozenLake-v1", options: ["is_slippery": "false", "reward_schedule": "(2, -1, -0.5)"])
        lake.reset(seed: 0)
        var r = try lake.step(.discrete(2))  // right, onto frozen ice
        #expect(r.observation == [1] && r.reward == -0.5 && !r.terminated)
        r = try lake.step(.discrete(1))  // down, into the hole at 5
        #expect(r.observation == [5] && r.reward == -1 && r.terminated)
        lake.reset()
        for a in [1, 1, 2, 1, 2] { _ = try lake.step(.discrete(a)) }  // 4, 8, 9, 13, 14
        r = try lake.step(.discrete(2))
        #expect(r.observation == [15] && r.reward == 2 && r.terminated)
    }

    @Test func frozenLakeSuccessRateSetsTheSlip() throws {
        // Down from the start: left (stays at 0), down (4) or right (1), with 0.1 / 0.8 / 0.1.
        let shares = try outcomes("FrozenLake-v1", ["success_rate": "0.8"], action: 1)
        #expect(abs(shares["4 0.0", default: 0] - 0.8) < 0.015, "\(shares)")
        #expect(abs(shares["0 0.0", default: 0] - 0.1) < 0.01 && abs(shares["1 0.0", default: 0] - 0.1) < 0.01, "\(shares)")
        #expect(try outcomes("FrozenLake-v1", ["success_rate": "1"], action: 1, trials: 1000) == ["4 0.0": 1])
        // The default is Gymnasium's 1/3 each way.
        let uniform = try outcomes("FrozenLake-v1", [:], action: 1)
        for state in ["0", "1", "4"] { #expect(abs(uniform["\(state) 0.0", default: 0] - 1.0 / 3) < 0.015, "\(uniform)") }
    }

    @Test func slipperyCliffWalkingSlipsAThirdEachWay() throws {
        // Up from the start: left (stays, −1), up (24, −1) or right (the cliff: back to the start, −100).
        for (id, options) in [("CliffWalkingSlippery-v1", [:]), ("CliffWalking-v1", ["is_slippery": "true"])] {
            let shares = try outcomes(id, options, action: 0)
            for key in ["36 -1.0", "24 -1.0", "36 -100.0"] { #expect(abs(shares[key, default: 0] - 1.0 / 3) < 0.015, "\(id): \(shares)") }
        }
        #expect(try outcomes("CliffWalking-v1", [:], action: 0, trials: 100) == ["24 -1.0": 1])
    }

    @Test func badOptionValuesAreNamed() {
        #expect { try Registry.make("FrozenLake-v1", options: ["success_rate": "1.5"]) } throws: {
            "\($0)".contains("success_rate must be in [0, 1], got 1.5")
        }
        #expect { try Registry.make("FrozenLake-v1", options: ["reward_schedule": "1,2"]) } throws: {
            "\($0)".contains("reward_schedule must be three numbers (goal, hole, frozen)")
        }
        #expect { try Registry.make("CliffWalking-v1", options: ["is_slippery": "maybe"]) } throws: {
            "\($0)".contains("is_slippery must be true or false, got 'maybe'")
        }
    }
}
