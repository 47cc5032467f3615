import Foundation
import Support
import Imaging

/// A grid world read from a plain-text map, so a new world takes a minute to write.
///
/// The file has optional `key: value` header lines, then the grid (one line per row, all the same length):
///
///     # A small world: comments start with '#' followed by a space.
///     step_reward: -0.04      # reward for every move (default 0)
///     slip: 0.2               # probability of sliding to one of the two perpendicular directions (default 0)
///     goal_reward: 1          # reward for entering G (default 1)
///     hole_reward: 0          # reward for entering H (default 0)
///     lava_reward: -1         # reward for entering L (default -1)
///     goal $: 5               # another goal tile `$` worth 5
///     ##########
///     #S.....#G#
///     #..##..#.#
///     #...H....#
///     ##########
///
/// Tiles: `#` wall (cannot be entered), `S` start (exactly one), `.` floor, `G` goal, `H` hole, `L` lava, plus any
/// goal tiles declared in the header. Goals, holes and lava end the episode. Moves off the grid or into a wall
/// stay in place. Actions 0–3 = left, down, right, up (FrozenLake's order); the observation is row·columns + col.
/// `Environments/Maps/README.md` documents the format beside the maps shipped with rlbench.
public final class GridWorld: EpisodicEnvironment, Environment {
    public let rows: Int, columns: Int
    public let tiles: [Character]
    public let stepReward: Double
    public let slip: Double
    /// Terminal tiles and the reward for entering them.
    public let terminalRewards: [Character: Double]
    public let start: Int
    public private(set) var position: Int

    /// Parses a map; errors name the line and the problem. A map is at most `Limits.mapBytes` long and
    /// `Limits.mapCells` cells large.
    public init(text: String, name: String = "GridWorld") throws {
        guard text.utf8.count <= Limits.mapBytes else {
            throw EnvironmentError.invalidMap("the map has \(text.utf8.count) bytes, more than the limit of \(Limits.mapBytes)")
        }
        var stepReward = 0.0, slip = 0.0
        var terminal: [Character: Double] = ["G": 1, "H": 0, "L": -1]
        var grid: [[Character]] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = number + 1
            var line = String(raw)
            // Comments start with "# " (grid rows never contain spaces, so walls are not mistaken for comments).
            if let comment = line.range(of: "# ") { line = String(line[..<comment.lowerBound]) }
            line = line.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if let colon = line.firstIndex(of: ":") {
                guard grid.isEmpty else { throw EnvironmentError.invalidMap("line \(lineNumber): header line '\(line)' after the grid") }
                let key = line[..<colon].trimmingCharacters(in: .whitespaces)
                let valueText = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                guard let value = Double(valueText), value.isFinite else {
                    throw EnvironmentError.invalidMap("line \(lineNumber): '\(valueText)' is not a number")
                }
                switch key {
                case "step_reward": stepReward = value
                case "slip":
                    guard (0...1).contains(value) else { throw EnvironmentError.invalidMap("line \(lineNumber): slip must be in [0, 1]") }
                    slip = value
                case "goal_reward": terminal["G"] = value
                case "hole_reward": terminal["H"] = value
                case "lava_reward": terminal["L"] = value
                default:
                    let parts = key.split(separator: " ")
                    guard parts.count == 2, parts[0] == "goal", parts[1].count == 1, let c = parts[1].first, !"#S.".contains(c) else {
                        throw EnvironmentError.invalidMap("line \(lineNumber): unknown key '\(key)' (known: step_reward, slip, goal_reward, hole_reward, lava_reward, goal <tile>)")
                    }
                    terminal[c] = value
                }
                continue
            }
            let row = Array(line)
            for c in row where !("#S.".contains(c) || terminal[c] != nil) {
                throw EnvironmentError.invalidMap("line \(lineNumber): unknown tile '\(c)'")
            }
            if let first = grid.first, first.count != row.count {
                throw EnvironmentError.invalidMap("line \(lineNumber): row of \(row.count) tiles, expected \(first.count)")
            }
            guard (grid.count + 1) * row.count <= Limits.mapCells else {
                throw EnvironmentError.invalidMap("line \(lineNumber): the map has more than \(Limits.mapCells) cells "
                                                  + "(\(grid.count + 1) rows of \(row.count)), the limit")
            }
            grid.append(row)
        }
        guard !grid.isEmpty else { throw EnvironmentError.invalidMap("the map has no grid rows") }
        let flat = grid.flatMap { $0 }
        let starts = flat.indices.filter { flat[$0] == "S" }
        guard starts.count == 1 else { throw EnvironmentError.invalidMap("the map needs exactly one S, found \(starts.count)") }
        rows = grid.count
        columns = grid[0].count
        tiles = flat
        self.stepReward = stepReward
        self.slip = slip
        terminalRewards = terminal
        start = starts[0]
        position = starts[0]
        super.init(name: name)
    }

    /// Reads a map file.
    public convenience init(contentsOf url: URL) throws {
        let text: String
        do { text = try Files.text(url, maxBytes: Limits.mapBytes) } catch {
            throw EnvironmentError.invalidMap("cannot read \(url.path): \(error.localizedDescription)")
        }
        try self.init(text: text, name: "GridWorld(\(url.lastPathComponent))")
    }

    /// The example map shipped with rlbench (also in `examples/maps/four_rooms.txt`).
    /// The built-in example, `Environments/Maps/four_rooms.txt` (shipped with rlbench): four rooms, a slippery
    /// floor, one lava cell and a goal. `GridWorld-v0` without a `map` option uses it.
    public static var exampleMap: String { shippedMap(named: "four_rooms")! }

    /// The names of the maps shipped in `Environments/Maps` (without `.txt`).
    public static var shippedMapNames: [String] {
        guard let folder = Bundle.module.url(forResource: "Maps", withExtension: nil),
              let files = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return files.filter { $0.hasSuffix(".txt") }.map { String($0.dropLast(4)) }.sorted()
    }

    /// The text of a shipped map, or nil when there is none of that name.
    public static func shippedMap(named name: String) -> String? {
        guard let url = Bundle.module.url(forResource: name, withExtension: "txt", subdirectory: "Maps") else { return nil }
        return try? String(contentsOf: url, encoding: .utf8)
    }

    public var observationSpace: Space { .discrete(rows * columns) }
    public var actionSpace: Space { .discrete(4) }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        position = start
        observation[0] = Float(position)
    }

    public func setState(_ index: Int) throws {
        guard index >= 0 && index < tiles.count && tiles[index] != "#" else { throw EnvironmentError.invalidState("state \(index) is not a free cell") }
        position = index
        beginEpisode(seed: nil)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        var a = try discreteAction(action, count: 4)
        if slip > 0, rng.nextDouble() < slip { a = (a + (rng.nextDouble() < 0.5 ? 1 : 3)) % 4 }
        var r = position / columns, c = position % columns
        switch a {
        case 0: c -= 1
        case 1: r += 1
        case 2: c += 1
        default: r -= 1
        }
        if r >= 0, r < rows, c >= 0, c < columns, tiles[r * columns + c] != "#" { position = r * columns + c }
        observation[0] = Float(position)
        if let reward = terminalRewards[tiles[position]] {
            endEpisode(if: true)
            return StepOutcome(reward: stepReward + reward, terminated: true, truncated: false)
        }
        return StepOutcome(reward: stepReward, terminated: false, truncated: false)
    }
}

extension GridWorld: GridReplayable {}

extension GridWorld: GridRenderable {
    public func render() -> RGBImage { render(overlay: nil) }
    public func render(overlay: GridOverlay?) -> RGBImage {
        drawGrid(rows: rows, columns: columns, cellSize: max(16, min(64, 640 / max(rows, columns))), tile: { s in
            switch self.tiles[s] {
            case "#": .wall
            case "S": .start
            case "H": .hole
            case "L": .lava
            case ".": .floor
            default: .goal
            }
        }, agent: position, overlay: overlay, arrowVectors: leftDownRightUp)
    }
}
