import Foundation

/// Gymnasium's registry for rlbench's environments: ids, time limits, reward thresholds and options.
public enum Registry {
    /// One registered environment.
    public struct Entry: Sendable {
        public let spec: EnvSpec
        /// The observation entries `mask_velocity` sets to 0 (rl-baselines3-zoo's `MaskVelocityWrapper`), if any.
        public let velocityIndices: [Int]
        /// For a partially observed version (`CartPoleNoVel-v1`), the id of the environment it masks: the two have
        /// the same spaces, so only the id tells them apart.
        public let masks: String?
        let declaredOptions: [String: String]
        let build: @Sendable ([String: String]) throws -> Environment

        init(spec: EnvSpec, options: [String: String], velocityIndices: [Int] = [], masks: String? = nil,
             build: @escaping @Sendable ([String: String]) throws -> Environment) {
            self.spec = spec; declaredOptions = options; self.velocityIndices = velocityIndices; self.masks = masks
            self.build = build
        }

        /// Options `make` accepts, with a one-line description each (`mask_velocity` where there are velocities).
        public var options: [String: String] {
            guard !velocityIndices.isEmpty else { return declaredOptions }
            return declaredOptions.merging(["mask_velocity": "true/false: the velocities read 0 (rl-baselines3-zoo's MaskVelocityWrapper)"]) { a, _ in a }
        }
    }

    public static let entries: [Entry] = [
        Entry(spec: EnvSpec(id: "CartPole-v1", maxEpisodeSteps: 500, rewardThreshold: 475, renderFPS: 50),
              options: cartPoleOptions, velocityIndices: [1, 3], build: cartPole),
        Entry(spec: EnvSpec(id: "CartPole-v0", maxEpisodeSteps: 200, rewardThreshold: 195, renderFPS: 50),
              options: cartPoleOptions, velocityIndices: [1, 3], build: cartPole),
        Entry(spec: EnvSpec(id: "MountainCar-v0", maxEpisodeSteps: 200, rewardThreshold: -110), options: goalVelocityOption,
              velocityIndices: [1]) { o in
            MountainCar(goalVelocity: try number(o, "goal_velocity", default: 0))
        },
        Entry(spec: EnvSpec(id: "MountainCarContinuous-v0", maxEpisodeSteps: 999, rewardThreshold: 90), options: goalVelocityOption,
              velocityIndices: [1]) { o in
            MountainCarContinuous(goalVelocity: try number(o, "goal_velocity", default: 0))
        },
        Entry(spec: EnvSpec(id: "Acrobot-v1", maxEpisodeSteps: 500, rewardThreshold: -100, renderFPS: 15), options: [:]) { _ in Acrobot() },
        Entry(spec: EnvSpec(id: "Pendulum-v1", maxEpisodeSteps: 200, rewardThreshold: nil), options: pendulumOptions,
              velocityIndices: [2], build: pendulum),
        // rl-baselines3-zoo's partially observed versions (its MaskVelocityWrapper): CartPole-v1 and Pendulum-v1 with
        // the velocities read as 0.
        Entry(spec: EnvSpec(id: "CartPoleNoVel-v1", maxEpisodeSteps: 500, rewardThreshold: 475, renderFPS: 50),
              options: cartPoleOptions, velocityIndices: [1, 3], masks: "CartPole-v1") { o in
            MaskVelocity(try cartPole(o), indices: [1, 3])
        },
        Entry(spec: EnvSpec(id: "PendulumNoVel-v1", maxEpisodeSteps: 200, rewardThreshold: nil), options: pendulumOptions,
              velocityIndices: [2], masks: "Pendulum-v1") { o in MaskVelocity(try pendulum(o), indices: [2]) },
        Entry(spec: EnvSpec(id: "FrozenLake-v1", maxEpisodeSteps: 100, rewardThreshold: 0.70, renderFPS: 4),
              options: frozenLakeOptions) { o in
            try frozenLake(o, defaultMap: "4x4")
        },
        Entry(spec: EnvSpec(id: "FrozenLake8x8-v1", maxEpisodeSteps: 200, rewardThreshold: 0.85, renderFPS: 4),
              options: frozenLakeOptions) { o in
            try frozenLake(o, defaultMap: "8x8")
        },
        Entry(spec: EnvSpec(id: "CliffWalking-v1", maxEpisodeSteps: nil, rewardThreshold: nil, renderFPS: 4),
              options: ["is_slippery": "true/false (default false): each move goes the intended way or a perpendicular one, 1/3 each"]) { o in
            CliffWalking(isSlippery: try bool(o, "is_slippery", default: false))
        },
        Entry(spec: EnvSpec(id: "CliffWalkingSlippery-v1", maxEpisodeSteps: nil, rewardThreshold: nil, renderFPS: 4),
              options: ["is_slippery": "true/false (default true)"]) { o in
            CliffWalking(isSlippery: try bool(o, "is_slippery", default: true))
        },
        Entry(spec: EnvSpec(id: "GridWorld-v0", maxEpisodeSteps: 200, rewardThreshold: nil, renderFPS: 4),
              options: ["map": "a shipped map's name (four_rooms, lava_bridge), the path of a text map, or a map's text itself (default four_rooms)"]) { o in
            try gridWorld(map: o["map"] ?? "four_rooms")
        },
    ] + minAtar(Breakout.self) + minAtar(SpaceInvaders.self) + minAtar(Freeway.self) + minAtar(Asterix.self) + minAtar(Seaquest.self)

    static let minAtarOptions = [
        "sticky_action_prob": "the chance that a step repeats the previous action instead (default 0.1)",
        "difficulty_ramping": "true/false (default true): Asterix, Seaquest and Space Invaders speed up as the game goes on",
    ]

    /// A MinAtar game's two ids, as the `minatar` package registers them: `MinAtar/<Game>-v1` (the minimal action set)
    /// and `-v0` (all six actions). No time limit, as in the package.
    static func minAtar<Game: MinAtarGame>(_ game: Game.Type) -> [Entry] {
        [(version: 1, minimal: true), (version: 0, minimal: false)].map { v in
            Entry(spec: EnvSpec(id: "MinAtar/\(Game.name)-v\(v.version)", maxEpisodeSteps: nil, rewardThreshold: nil, renderFPS: 15,
                                longestEpisode: Game.longestEpisode),
                  options: minAtarOptions) { o in
                let sticky = try number(o, "sticky_action_prob", default: 0.1)
                guard (0...1).contains(sticky) else { throw EnvironmentError.invalidOption("sticky_action_prob must be in [0, 1], got \(sticky)") }
                return MinAtarEnvironment<Game>(minimalActionSet: v.minimal, stickyActionProbability: sticky,
                                                difficultyRamping: try bool(o, "difficulty_ramping", default: true))
            }
        }
    }

    static let cartPoleOptions = ["sutton_barto_reward": "true/false: reward 0 per step and −1 on failure"]

    static func cartPole(_ o: [String: String]) throws -> Environment {
        CartPole(suttonBartoReward: try bool(o, "sutton_barto_reward", default: false))
    }

    static let pendulumOptions = ["g": "gravity (default 10.0)"]

    static func pendulum(_ o: [String: String]) throws -> Environment { Pendulum(g: try number(o, "g", default: 10)) }

    static let goalVelocityOption = ["goal_velocity": "the velocity needed at the flag to finish (default 0)"]

    static let frozenLakeOptions = [
        "map_name": "4x4 or 8x8", "is_slippery": "true/false (default true)",
        "desc": "a map of your own: its rows, comma-separated (e.g. SFFF,FHFH,FFFH,HFFG; one S); overrides map_name",
        "success_rate": "the chance a slippery move goes the intended way (default 1/3; each perpendicular way half the rest)",
        "reward_schedule": "rewards for reaching G, H and any other cell (default 1,0,0)",
    ]

    /// Options every environment takes, as `gymnasium.make` does.
    public static let commonOptions = ["max_episode_steps": "the time limit (default: the registered one; none for CliffWalking-v1)"]

    /// Every registered id, in listing order.
    public static var ids: [String] { entries.map(\.spec.id) }

    /// The entry for `id`, or `EnvironmentError.unknownID` listing the known ids.
    public static func entry(_ id: String) throws -> Entry {
        guard let e = entries.first(where: { $0.spec.id == id }) else { throw EnvironmentError.unknownID(id, known: ids) }
        return e
    }

    /// A grid world from a map's text (anything with a line break: how checkpoints carry a map read from a file), a
    /// file path or, when no such file exists, a shipped map of that name.
    static func gridWorld(map: String) throws -> GridWorld {
        if map.contains("\n") { return try GridWorld(text: map, name: "GridWorld(map text)") }
        if FileManager.default.fileExists(atPath: map) { return try GridWorld(contentsOf: URL(fileURLWithPath: map)) }
        if let text = GridWorld.shippedMap(named: map) { return try GridWorld(text: text, name: map) }
        throw EnvironmentError.invalidOption("map '\(map)' is neither a file nor a shipped map "
                                            + "(shipped: \(GridWorld.shippedMapNames.joined(separator: ", ")))")
    }

    /// Makes a registered environment with its time limit applied, as `gymnasium.make(id, **options)`.
    /// Unknown options and malformed values are errors naming them.
    public static func make(_ id: String, options: [String: String] = [:]) throws -> Environment {
        let e = try entry(id)
        for key in options.keys where e.options[key] == nil && commonOptions[key] == nil {
            let known = (Array(e.options.keys) + Array(commonOptions.keys)).sorted()
            throw EnvironmentError.invalidOption("\(id) has no option '\(key)'; its options: \(known.joined(separator: ", "))")
        }
        var env = try e.build(options)
        if try bool(options, "mask_velocity", default: false) { env = MaskVelocity(env, indices: e.velocityIndices) }
        var spec = e.spec
        if let limit = options["max_episode_steps"] {
            guard let n = Int(limit), n > 0 else { throw EnvironmentError.invalidOption("max_episode_steps must be a positive integer, got '\(limit)'") }
            spec.maxEpisodeSteps = n
        }
        env.spec = spec
        guard let limit = spec.maxEpisodeSteps else { return env }
        return TimeLimit(env, maxEpisodeSteps: limit)
    }

    static func bool(_ o: [String: String], _ key: String, default value: Bool) throws -> Bool {
        guard let text = o[key] else { return value }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw EnvironmentError.invalidOption("\(key) must be true or false, got '\(text)'")
        }
    }

    static func number(_ o: [String: String], _ key: String, default value: Double) throws -> Double {
        guard let text = o[key] else { return value }
        guard let v = Double(text), v.isFinite else { throw EnvironmentError.invalidOption("\(key) must be a number, got '\(text)'") }
        return v
    }

    static func frozenLake(_ o: [String: String], defaultMap: String) throws -> Environment {
        let map: [String]
        if let desc = o["desc"] {
            map = listItems(desc)
        } else {
            let name = o["map_name"] ?? defaultMap
            guard let named = FrozenLake.maps[name] else {
                throw EnvironmentError.invalidOption("map_name must be one of \(FrozenLake.maps.keys.sorted().joined(separator: ", ")), got '\(name)'")
            }
            map = named
        }
        return try FrozenLake(map: map, isSlippery: try bool(o, "is_slippery", default: true),
                              successRate: try number(o, "success_rate", default: 1.0 / 3.0),
                              rewardSchedule: try rewardSchedule(o["reward_schedule"]))
    }

    /// The comma-separated items of an option's value, with the brackets, quotes and white space of a Python list's
    /// text ignored: `SFF,FHG`, `["SFF", "FHG"]` and `(1, 0, 0)` all work.
    static func listItems(_ text: String) -> [String] {
        text.filter { !"[]()\"' \n\t".contains($0) }.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }

    /// FrozenLake's `reward_schedule`: three numbers (goal, hole, frozen), e.g. `1,-1,0` or `(1, -1, 0)`.
    static func rewardSchedule(_ text: String?) throws -> (goal: Double, hole: Double, frozen: Double) {
        guard let text else { return (1, 0, 0) }
        let parts = listItems(text).map { Double($0) }
        guard parts.count == 3, let goal = parts[0], let hole = parts[1], let frozen = parts[2],
              goal.isFinite, hole.isFinite, frozen.isFinite else {
            throw EnvironmentError.invalidOption("reward_schedule must be three numbers (goal, hole, frozen) such as 1,0,0, got '\(text)'")
        }
        return (goal, hole, frozen)
    }
}
