/// MinAtar Freeway (`minatar/environments/freeway.py`): a chicken crosses eight lanes of cars from the bottom row to
/// the top (+1, then back to the bottom and the cars' speeds are drawn again); a car that hits it sends it back to
/// the bottom. It can move up or down once every 3 frames. Each car moves every 1 to 5 frames, shown by which of the
/// five speed channels holds its trail. The game ends after 2,500 frames. No difficulty ramp.
public final class Freeway: MinAtarGame {
    public static let name = "Freeway"
    public static let channels = ["chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5"]
    public static let minimalActions: [MinAtarAction] = [.noop, .up, .down]
    static let playerSpeed = 3, timeLimit = 2500
    /// The timer runs from 2,500 and the game ends when it goes below 0: 2,501 frames.
    public static let longestEpisode: Int? = timeLimit + 1

    struct Car { var x: Int, y: Int, timer: Int, speed: Int }

    var cars: [Car] = []
    /// The chicken's row (its column is always 4).
    var row = 9
    var moveTimer = 0, terminateTimer = 0
    var terminal = false

    public init(ramping: Bool) {}

    /// Draws the eight cars' speeds (1–5) and directions (`sign(rand() − 0.5)`): all speeds first, then all
    /// directions, as the package's vector draws do; `initialize` also puts every car at the left edge.
    private func randomizeCars<R: MinAtarRandomSource>(initialize: Bool, using random: inout R) {
        let speeds = (0..<8).map { _ in random.integer(1, 6) }
        let directions = (0..<8).map { _ -> Int in
            let d = random.uniform() - 0.5
            return d > 0 ? 1 : d < 0 ? -1 : 0
        }
        if initialize { cars = (0..<8).map { Car(x: 0, y: $0 + 1, timer: 0, speed: 0) } }
        for i in 0..<8 {
            cars[i].speed = speeds[i] * directions[i]
            cars[i].timer = abs(cars[i].speed)
        }
    }

    public func reset<R: MinAtarRandomSource>(using random: inout R) {
        randomizeCars(initialize: true, using: &random)
        row = 9
        moveTimer = Self.playerSpeed
        terminateTimer = Self.timeLimit
        terminal = false
    }

    public func act<R: MinAtarRandomSource>(_ action: MinAtarAction, using random: inout R) -> (reward: Double, terminal: Bool) {
        var reward = 0.0
        if terminal { return (reward, terminal) }
        if action == .up && moveTimer == 0 {
            moveTimer = Self.playerSpeed
            row = max(0, row - 1)
        } else if action == .down && moveTimer == 0 {
            moveTimer = Self.playerSpeed
            row = min(9, row + 1)
        }
        if row == 0 {
            reward += 1
            randomizeCars(initialize: false, using: &random)
            row = 9
        }
        for i in cars.indices {
            if cars[i].x == 4 && cars[i].y == row { row = 9 }
            if cars[i].timer == 0 {
                cars[i].timer = abs(cars[i].speed)
                cars[i].x += cars[i].speed > 0 ? 1 : -1
                if cars[i].x < 0 { cars[i].x = 9 } else if cars[i].x > 9 { cars[i].x = 0 }
                if cars[i].x == 4 && cars[i].y == row { row = 9 }
            } else {
                cars[i].timer -= 1
            }
        }
        if moveTimer > 0 { moveTimer -= 1 }
        terminateTimer -= 1
        if terminateTimer < 0 { terminal = true }
        return (reward, terminal)
    }

    public func draw(_ frame: MinAtarFrame) {
        frame.set(row, 4, 0)
        for car in cars {
            frame.set(car.y, car.x, 1)
            var back = car.speed > 0 ? car.x - 1 : car.x + 1
            if back < 0 { back = 9 } else if back > 9 { back = 0 }
            // speed1…speed5 are channels 2…6 (a speed of 0, from a direction draw of exactly 0.5, has no trail).
            if (1...5).contains(abs(car.speed)) { frame.set(car.y, back, 1 + abs(car.speed)) }
        }
    }

    public var state: [Int] {
        [row, moveTimer, terminateTimer, terminal ? 1 : 0] + cars.flatMap { [$0.x, $0.y, $0.timer, $0.speed] }
    }

    public func setState(_ words: [Int]) throws {
        var r = MinAtarStateReader(words, game: Self.name)
        row = try r.int(0...9); moveTimer = try r.int(0...Self.playerSpeed); terminateTimer = try r.int(-1...Self.timeLimit)
        terminal = try r.bool()
        cars = try (0..<8).map { _ in
            Car(x: try r.int(0...9), y: try r.int(1...8), timer: try r.int(0...5), speed: try r.int(-5...5))
        }
        try r.finish()
    }
}
