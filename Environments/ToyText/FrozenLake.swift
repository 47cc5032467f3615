import Foundation
import Imaging
import SeededRandom

/// FrozenLake-v1 as Gymnasium 1.x: cross a frozen lake from S to G without falling into a hole H.
/// Actions 0–3 = left, down, right, up; a move off the grid stays in place. Slippery (the default): the intended
/// direction with probability `successRate` (1/3), each perpendicular one with half the rest. Rewards follow
/// `rewardSchedule` (goal, hole, frozen; 1, 0, 0) by the cell moved to; G and H terminate.
/// The observation is the state index row·ncol + col.
public final class FrozenLake: EpisodicEnvironment, Environment {
    /// Gymnasium's built-in maps.
    public static let maps: [String: [String]] = [
        "4x4": ["SFFF", "FHFH", "FFFH", "HFFG"],
        "8x8": ["SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"],
    ]

    public let map: [[Character]]
    public let rows: Int, columns: Int
    public let isSlippery: Bool
    /// Gymnasium's `success_rate`: the chance that a slippery move goes the intended way.
    public let successRate: Double
    /// Gymnasium's `reward_schedule`: the rewards for moving onto G, onto H and onto any other cell.
    public let rewardSchedule: (goal: Double, hole: Double, frozen: Double)
    public private(set) var position = 0
    public private(set) var lastAction: Int?

    /// A lake from `map` rows (characters S, F, H, G; exactly one S).
    public init(map: [String] = FrozenLake.maps["4x4"]!, isSlippery: Bool = true, successRate: Double = 1.0 / 3.0,
                rewardSchedule: (goal: Double, hole: Double, frozen: Double) = (1, 0, 0)) throws {
        guard (0...1).contains(successRate) else {
            throw EnvironmentError.invalidOption("success_rate must be in [0, 1], got \(successRate)")
        }
        let grid = map.map(Array.init)
        guard !grid.isEmpty, let width = grid.first?.count, width > 0, grid.allSatisfy({ $0.count == width }) else {
            throw EnvironmentError.invalidMap("FrozenLake map rows must be non-empty and of equal length")
        }
        guard grid.joined().allSatisfy({ "SFHG".contains($0) }) else {
            throw EnvironmentError.invalidMap("FrozenLake maps use only the letters S, F, H and G")
        }
        guard grid.joined().filter({ $0 == "S" }).count == 1 else { throw EnvironmentError.invalidMap("FrozenLake map needs exactly one S") }
        self.map = grid
        rows = grid.count
        columns = width
        self.isSlippery = isSlippery
        self.successRate = successRate
        self.rewardSchedule = rewardSchedule
        super.init(name: "FrozenLake-v1")
    }

    public var observationSpace: Space { .discrete(rows * columns) }
    public var actionSpace: Space { .discrete(4) }

    func tile(_ s: Int) -> Character { map[s / columns][s % columns] }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        position = map.joined().firstIndex(of: "S").map { map.joined().distance(from: map.joined().startIndex, to: $0) } ?? 0
        lastAction = nil
        observation[0] = Float(position)
    }

    /// Puts the agent on state `index` and starts an episode from there (for replaying recordings).
    public func setState(_ index: Int) throws {
        guard index >= 0 && index < rows * columns else { throw EnvironmentError.invalidState("state \(index) outside the map") }
        position = index
        beginEpisode(seed: nil)
    }

    /// The state reached by moving in direction `a` (0 left, 1 down, 2 right, 3 up) from `s`.
    func move(_ s: Int, _ a: Int) -> Int {
        var r = s / columns, c = s % columns
        switch a {
        case 0: c = max(c - 1, 0)
        case 1: r = min(r + 1, rows - 1)
        case 2: c = min(c + 1, columns - 1)
        default: r = max(r - 1, 0)
        }
        return r * columns + c
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        let a = try discreteAction(action, count: 4)
        let direction = isSlippery ? (a + 3 + slip(&rng, successRate: successRate)) % 4 : a
        position = move(position, direction)
        lastAction = a
        observation[0] = Float(position)
        let t = tile(position)
        let terminated = t == "G" || t == "H"
        endEpisode(if: terminated)
        let reward = t == "G" ? rewardSchedule.goal : t == "H" ? rewardSchedule.hole : rewardSchedule.frozen
        return StepOutcome(reward: reward, terminated: terminated, truncated: false)
    }
}

extension FrozenLake: GridReplayable {}

/// Which of the three directions of a slippery move is taken: 0 the one before the intended one (counter-clockwise),
/// 1 the intended one (with probability `successRate`), 2 the one after, the two others each with half the rest. With
/// equal chances (1/3, Gymnasium's default) one uniform draw of three, otherwise one uniform number in [0, 1).
/// (Slippery CliffWalking moves by the same rule.)
func slip(_ rng: inout SeededGenerator, successRate: Double) -> Int {
    if successRate == 1.0 / 3.0 { return rng.nextInt(below: 3) }
    let u = rng.nextDouble(), fail = (1 - successRate) / 2
    return u < fail ? 0 : u < fail + successRate ? 1 : 2
}

extension FrozenLake: GridRenderable {
    public func render() -> RGBImage { render(overlay: nil) }
    public func render(overlay: GridOverlay?) -> RGBImage {
        drawGrid(rows: rows, columns: columns, tile: { s in
            switch self.tile(s) { case "H": .hole; case "G": .goal; case "S": .start; default: .floor }
        }, agent: position, overlay: overlay, arrowVectors: leftDownRightUp)
    }
}
