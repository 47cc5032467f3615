import Imaging
import SeededRandom

/// CliffWalking-v1 as Gymnasium 1.x: a 4×12 grid, start at the bottom-left, goal at the bottom-right, the cells
/// between them a cliff. Actions 0–3 = up, right, down, left. Every move costs −1; stepping into the cliff costs
/// −100 and returns the agent to the start (not terminated). Reaching the goal terminates. Slippery
/// (`CliffWalkingSlippery-v1`, or `is_slippery`): the intended direction and the two perpendicular ones each with
/// probability 1/3.
public final class CliffWalking: EpisodicEnvironment, Environment {
    public static let rows = 4, columns = 12, start = 36, goal = 47

    public private(set) var position = CliffWalking.start
    public let isSlippery: Bool

    public init(isSlippery: Bool = false) {
        self.isSlippery = isSlippery
        super.init(name: isSlippery ? "CliffWalkingSlippery-v1" : "CliffWalking-v1")
    }

    public var observationSpace: Space { .discrete(Self.rows * Self.columns) }
    public var actionSpace: Space { .discrete(4) }

    public static func isCliff(_ s: Int) -> Bool { s / columns == 3 && s % columns >= 1 && s % columns <= 10 }

    public func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        beginEpisode(seed: seed)
        position = Self.start
        observation[0] = Float(position)
    }

    public func setState(_ index: Int) throws {
        guard index >= 0 && index < Self.rows * Self.columns else { throw EnvironmentError.invalidState("state \(index) outside the grid") }
        position = index
        beginEpisode(seed: nil)
    }

    public func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        try checkRunning()
        let intended = try discreteAction(action, count: 4)
        let a = isSlippery ? (intended + 3 + slip(&rng, successRate: 1.0 / 3.0)) % 4 : intended
        var r = position / Self.columns, c = position % Self.columns
        switch a {
        case 0: r = max(r - 1, 0)
        case 1: c = min(c + 1, Self.columns - 1)
        case 2: r = min(r + 1, Self.rows - 1)
        default: c = max(c - 1, 0)
        }
        let next = r * Self.columns + c
        if Self.isCliff(next) {
            position = Self.start
            observation[0] = Float(position)
            return StepOutcome(reward: -100, terminated: false, truncated: false)
        }
        position = next
        observation[0] = Float(position)
        let terminated = position == Self.goal
        endEpisode(if: terminated)
        return StepOutcome(reward: -1, terminated: terminated, truncated: false)
    }
}

extension CliffWalking: GridReplayable {}

extension CliffWalking: GridRenderable {
    public func render() -> RGBImage { render(overlay: nil) }
    public func render(overlay: GridOverlay?) -> RGBImage {
        drawGrid(rows: Self.rows, columns: Self.columns, cellSize: 60, tile: { s in
            s == Self.start ? .start : s == Self.goal ? .goal : Self.isCliff(s) ? .cliff : .floor
        }, agent: position, overlay: overlay, arrowVectors: [(0, -1), (1, 0), (0, 1), (-1, 0)])
    }
}
