/// MinAtar Breakout (`minatar/environments/breakout.py`): a paddle on the bottom row bounces a ball that travels
/// along diagonals and breaks three rows of bricks (+1 each; a new set of three rows when all are gone). The game
/// ends when the ball reaches the bottom row beside the paddle. The trail channel shows where the ball was a frame
/// ago, which gives its direction. No difficulty ramp.
public final class Breakout: MinAtarGame {
    public static let name = "Breakout"
    public static let channels = ["paddle", "ball", "trail", "brick"]
    public static let minimalActions: [MinAtarAction] = [.noop, .left, .right]

    var ballX = 0, ballY = 0
    /// 0: up-left, 1: up-right, 2: down-right, 3: down-left.
    var ballDirection = 0
    var paddle = 0
    var lastX = 0, lastY = 0
    /// Whether the ball hit a brick last frame (a ball does not break two bricks in a row).
    var strike = false
    var terminal = false
    /// The bricks, row-major.
    var bricks = [Bool](repeating: false, count: 100)

    public init(ramping: Bool) {}

    public func reset<R: MinAtarRandomSource>(using random: inout R) {
        ballY = 3
        (ballX, ballDirection) = random.integer(0, 2) == 0 ? (0, 2) : (9, 3)
        paddle = 4
        bricks = (0..<100).map { (10...39).contains($0) }
        strike = false
        (lastX, lastY) = (ballX, ballY)
        terminal = false
    }

    public func act<R: MinAtarRandomSource>(_ action: MinAtarAction, using random: inout R) -> (reward: Double, terminal: Bool) {
        var reward = 0.0
        if terminal { return (reward, terminal) }
        if action == .left { paddle = max(0, paddle - 1) } else if action == .right { paddle = min(9, paddle + 1) }

        (lastX, lastY) = (ballX, ballY)
        var newX = ballX + (ballDirection == 1 || ballDirection == 2 ? 1 : -1)
        var newY = ballY + (ballDirection < 2 ? -1 : 1)
        var strikeToggle = false
        if newX < 0 || newX > 9 {
            newX = min(max(newX, 0), 9)
            ballDirection = [1, 0, 3, 2][ballDirection]
        }
        if newY < 0 {
            newY = 0
            ballDirection = [3, 2, 1, 0][ballDirection]
        } else if bricks[newY * 10 + newX] {
            strikeToggle = true
            if !strike {
                reward += 1
                strike = true
                bricks[newY * 10 + newX] = false
                newY = lastY
                ballDirection = [3, 2, 1, 0][ballDirection]
            }
        } else if newY == 9 {
            if !bricks.contains(true) { for i in 10..<40 { bricks[i] = true } }
            if ballX == paddle {
                ballDirection = [3, 2, 1, 0][ballDirection]
                newY = lastY
            } else if newX == paddle {
                ballDirection = [2, 3, 0, 1][ballDirection]
                newY = lastY
            } else {
                terminal = true
            }
        }
        if !strikeToggle { strike = false }
        (ballX, ballY) = (newX, newY)
        return (reward, terminal)
    }

    public func draw(_ frame: MinAtarFrame) {
        frame.set(ballY, ballX, 1)
        frame.set(9, paddle, 0)
        frame.set(lastY, lastX, 2)
        for i in bricks.indices where bricks[i] { frame.set(i / 10, i % 10, 3) }
    }

    public var state: [Int] {
        [ballX, ballY, ballDirection, paddle, lastX, lastY, strike ? 1 : 0, terminal ? 1 : 0] + bricks.map { $0 ? 1 : 0 }
    }

    public func setState(_ words: [Int]) throws {
        var r = MinAtarStateReader(words, game: Self.name)
        ballX = try r.int(0...9); ballY = try r.int(0...9); ballDirection = try r.int(0...3); paddle = try r.int(0...9)
        lastX = try r.int(0...9); lastY = try r.int(0...9); strike = try r.bool(); terminal = try r.bool()
        bricks = try r.grid()
        try r.finish()
    }
}
