import Imaging
import SeededRandom

// MinAtar (Young & Tian 2019): five Atari games on a 10×10 grid, one binary channel per kind of object, exactly as
// the `minatar` Python package 1.0.15 plays them through its Gymnasium interface (`minatar.gym.BaseEnv`). Each game
// is one file beside this one (`Breakout.swift`, …) holding its rules; this file holds what they share: the
// observation, sticky actions, the action sets, the seam random numbers come through, drawing and snapshots.

/// MinAtar's six actions, in the package's `action_map` order (`n l u r d f`).
public enum MinAtarAction: Int, Sendable, CaseIterable {
    case noop = 0, left, up, right, down, fire
}

/// Where a game takes its random numbers from: the two calls the package makes on numpy's `RandomState`. rlbench
/// plays from its seeded generator (`SeededGenerator`); the parity tests replay the draws the package made
/// (`RecordedDraws`), so that sticky actions and spawns are the recorded ones.
public protocol MinAtarRandomSource {
    /// numpy's `rand()`: uniform in [0, 1).
    mutating func uniform() -> Double
    /// numpy's `randint(low, high)`: uniform in `low..<high`.
    mutating func integer(_ low: Int, _ high: Int) -> Int
}

extension SeededGenerator: MinAtarRandomSource {
    public mutating func uniform() -> Double { nextDouble() }
    public mutating func integer(_ low: Int, _ high: Int) -> Int { low + nextInt(below: high - low) }
}

/// The rules of one MinAtar game (the package's `minatar.environments.<game>.Env`). A game is a class: Seaquest's
/// rules remove objects from lists while walking them, and follow Python's list semantics to the letter.
public protocol MinAtarGame: AnyObject, SendableMetatype {
    /// The game's name in ids (`Breakout` in `MinAtar/Breakout-v1`).
    static var name: String { get }
    /// The observation's channels, in order (the package's `channels` dictionary).
    static var channels: [String] { get }
    /// The package's `minimal_action_set`: the actions of the `-v1` ids.
    static var minimalActions: [MinAtarAction] { get }
    /// The most frames a game lasts, when it ends itself after a while (Freeway); nil otherwise.
    static var longestEpisode: Int? { get }
    /// Whether the game ramps up its difficulty (the package's `ramping`; games without a ramp ignore it).
    init(ramping: Bool)
    /// Starts a new game (the package's `reset`).
    func reset<R: MinAtarRandomSource>(using random: inout R)
    /// Plays one frame (the package's `act`): the reward and whether the game is over.
    func act<R: MinAtarRandomSource>(_ action: MinAtarAction, using random: inout R) -> (reward: Double, terminal: Bool)
    /// Sets the cells of the current state (the package's `state()`); `frame` starts all zero.
    func draw(_ frame: MinAtarFrame)
    /// The whole state as whole numbers (for snapshots), and back.
    var state: [Int] { get }
    func setState(_ words: [Int]) throws
}

/// The 10 × 10 × channels observation being written: height, width, channel (HWC, the package's layout), row-major.
public struct MinAtarFrame {
    public static let size = 10
    let values: UnsafeMutableBufferPointer<Float>
    let channels: Int

    /// Marks channel `channel` at row `y`, column `x`.
    @inline(__always)
    func set(_ y: Int, _ x: Int, _ channel: Int) { values[(y * Self.size + x) * channels + channel] = 1 }
}

/// A MinAtar game as a Gymnasium environment, exactly as `gymnasium.make("MinAtar/<Game>-v1")` of the `minatar`
/// package: observations `Box(0, 1, (10, 10, channels))` in HWC order (the package's are bool; here Float32 0 or 1),
/// the minimal action set (`-v1`) or all six actions (`-v0`), no time limit (Freeway ends itself after 2,500 frames).
///
/// Sticky actions: each step draws `uniform()` first, and with probability `sticky_action_prob` (0.1) repeats the
/// previous action instead of the one given. As in the package, the previous action carries over from one episode to
/// the next; only a `reset` with a seed (a fresh generator) starts it over at no-op, as a fresh `gym.make` does.
public final class MinAtarEnvironment<Game: MinAtarGame>: EpisodicEnvironment, Environment {
    public let game: Game
    public let stickyActionProbability: Double
    /// The actions the action space's indices stand for.
    public let actionSet: [MinAtarAction]
    /// The action played last (what a sticky step repeats).
    public private(set) var lastAction = MinAtarAction.noop
    /// When set, the random numbers come from these recorded draws instead of the generator (the parity tests).
    public var recordedDraws: RecordedDraws?

    public init(minimalActionSet: Bool = true, stickyActionProbability: Double = 0.1, difficultyRamping: Bool = true) {
        game = Game(ramping: difficultyRamping)
        self.stickyActionProbability = stickyActionProbability
        actionSet = minimalActionSet ? Game.minimalActions : MinAtarAction.allCases
        super.init(name: "MinAtar/\(Game.name)")
    }

    public var channels: Int { Game.channels.count }
    public var observationSpace: Space { .box(low: 0, high: 1, shape: [MinAtarFrame.size, MinAtarFrame.size, channels]) }
    public var actionSpace: Space { .discrete(actionSet.count) }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        if seed != nil { lastAction = .noop }
        if let draws = recordedDraws {
            var source = draws
            game.reset(using: &source)
        } else {
            game.reset(using: &rng)
        }
        write(observation)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        let index = try discreteAction(action, count: actionSet.count)
        let result: (reward: Double, terminal: Bool)
        if let draws = recordedDraws {
            var source = draws
            result = play(actionSet[index], using: &source)
        } else {
            result = play(actionSet[index], using: &rng)
        }
        endEpisode(if: result.terminal)
        write(observation)
        return StepOutcome(reward: result.reward, terminated: result.terminal, truncated: false)
    }

    /// The package's `Environment.act`: the sticky-action draw, then the game's frame.
    private func play<R: MinAtarRandomSource>(_ action: MinAtarAction, using random: inout R) -> (Double, Bool) {
        var action = action
        if random.uniform() < stickyActionProbability { action = lastAction }
        lastAction = action
        return game.act(action, using: &random)
    }

    /// Writes the observation of the current state.
    func write(_ observation: UnsafeMutableBufferPointer<Float>) {
        for i in observation.indices { observation[i] = 0 }
        game.draw(MinAtarFrame(values: observation, channels: channels))
    }

    /// The current observation.
    public var currentObservation: [Float] { observation(observationSpace.flatCount, write) }

    /// The package's `render_mode="rgb_array"`: each cell in the colour of the highest channel set there (seaborn's
    /// cubehelix palette of `channels` colours), black where none is, drawn `cellSize` pixels square.
    public func render() -> RGBImage { render(cellSize: 32) }

    public func render(cellSize: Int) -> RGBImage {
        let palette = MinAtarPalette.colours(channels)
        let values = currentObservation
        let n = MinAtarFrame.size
        var image = RGBImage(width: n * cellSize, height: n * cellSize, fill: RGB(0, 0, 0))
        for y in 0..<n {
            for x in 0..<n {
                guard let top = (0..<channels).last(where: { values[(y * n + x) * channels + $0] != 0 }) else { continue }
                image.fillRect(x: x * cellSize, y: y * cellSize, width: cellSize, height: cellSize, color: palette[top])
            }
        }
        return image
    }
}

extension MinAtarGame {
    public static var longestEpisode: Int? { nil }
}

extension MinAtarEnvironment: ReplayableEnvironment {
    /// The previous action, then the game's state.
    var recordedState: [Double] { [Double(lastAction.rawValue)] + game.state.map(Double.init) }

    func setRecordedState(_ values: [Double], float32: Bool) throws -> [Float] {
        let words = values.compactMap { Int(exactly: $0) }
        guard words.count == values.count, let first = words.first, let action = MinAtarAction(rawValue: first) else {
            throw EnvironmentError.invalidState("a MinAtar state is whole numbers, the previous action (0–5) first; got \(values.prefix(4))…")
        }
        try game.setState(Array(words.dropFirst()))
        lastAction = action
        beginEpisode(seed: nil)
        return currentObservation
    }
}

/// seaborn's `color_palette("cubehelix", n)` (what the package's `display_state` and `rgb_array` draw with), as bytes,
/// for the channel counts of the five games.
enum MinAtarPalette {
    static func colours(_ channels: Int) -> [RGB] {
        let table: [Int: [(UInt8, UInt8, UInt8)]] = [
            4: [(22, 61, 78), (84, 121, 47), (208, 126, 147), (193, 202, 243)],
            6: [(26, 36, 65), (27, 97, 69), (105, 123, 48), (200, 123, 124), (205, 162, 224), (198, 225, 241)],
            7: [(27, 30, 59), (22, 83, 76), (68, 119, 49), (161, 121, 74), (212, 132, 169), (198, 180, 238), (203, 232, 240)],
            10: [(25, 18, 43), (23, 52, 76), (24, 91, 72), (60, 118, 50), (126, 122, 54), (188, 121, 103), (212, 134, 175),
                 (202, 169, 231), (194, 210, 243), (214, 240, 239)],
        ]
        return table[channels]!.map { RGB($0.0, $0.1, $0.2) }
    }
}

/// Reads a game's snapshot words in order; anything missing or out of range is an error naming the game.
struct MinAtarStateReader {
    private var words: ArraySlice<Int>
    let game: String

    init(_ words: [Int], game: String) { self.words = words[...]; self.game = game }

    mutating func int(_ range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let w = words.popFirst() else { throw EnvironmentError.invalidState("\(game): the state ends early") }
        guard range.contains(w) else { throw EnvironmentError.invalidState("\(game): state value \(w) is outside \(range)") }
        return w
    }

    mutating func bool() throws -> Bool { try int(0...1) == 1 }

    /// A 10 × 10 map of flags.
    mutating func grid() throws -> [Bool] { try (0..<100).map { _ in try bool() } }

    func finish() throws {
        guard words.isEmpty else { throw EnvironmentError.invalidState("\(game): \(words.count) state values too many") }
    }
}

/// Python's floor division (`//`), which rounds towards −∞.
@inline(__always)
func floorDivide(_ a: Int, _ b: Int) -> Int {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
