/// MinAtar Asterix (`minatar/environments/asterix.py`): the player moves in rows 1–8 while enemies and gold
/// (one in three) cross the screen, one row each; gold gives +1, an enemy ends the game. Objects spawn every
/// `spawnSpeed` frames and move every `moveSpeed` frames; the trail channel gives their direction. With ramping,
/// every 100 frames the spawn interval shrinks by one and, every second time, the move interval too.
public final class Asterix: MinAtarGame {
    public static let name = "Asterix"
    public static let channels = ["player", "enemy", "trail", "gold"]
    public static let minimalActions: [MinAtarAction] = [.noop, .left, .up, .right, .down]
    static let rampInterval = 100, initialSpawnSpeed = 10, initialMoveInterval = 5

    struct Entity: Equatable { var x: Int, y: Int, movesRight: Bool, isGold: Bool }

    let ramping: Bool
    var playerX = 5, playerY = 5
    /// One slot per row 1–8.
    var entities = [Entity?](repeating: nil, count: 8)
    var spawnSpeed = 0, spawnTimer = 0, moveSpeed = 0, moveTimer = 0, rampTimer = 0, rampIndex = 0
    var terminal = false

    public init(ramping: Bool) { self.ramping = ramping }

    public func reset<R: MinAtarRandomSource>(using random: inout R) {
        (playerX, playerY) = (5, 5)
        entities = [Entity?](repeating: nil, count: 8)
        spawnSpeed = Self.initialSpawnSpeed; spawnTimer = spawnSpeed
        moveSpeed = Self.initialMoveInterval; moveTimer = moveSpeed
        rampTimer = Self.rampInterval; rampIndex = 0
        terminal = false
    }

    public func act<R: MinAtarRandomSource>(_ action: MinAtarAction, using random: inout R) -> (reward: Double, terminal: Bool) {
        var reward = 0.0
        if terminal { return (reward, terminal) }
        if spawnTimer == 0 {
            spawnEntity(using: &random)
            spawnTimer = spawnSpeed
        }
        switch action {
        case .left: playerX = max(0, playerX - 1)
        case .right: playerX = min(9, playerX + 1)
        case .up: playerY = max(1, playerY - 1)
        case .down: playerY = min(8, playerY + 1)
        default: break
        }
        /// Gold under the player is collected, an enemy ends the game.
        func collide(_ i: Int) {
            guard let e = entities[i], e.x == playerX, e.y == playerY else { return }
            if e.isGold { entities[i] = nil; reward += 1 } else { terminal = true }
        }
        for i in entities.indices { collide(i) }
        if moveTimer == 0 {
            moveTimer = moveSpeed
            for i in entities.indices where entities[i] != nil {
                entities[i]!.x += entities[i]!.movesRight ? 1 : -1
                if entities[i]!.x < 0 || entities[i]!.x > 9 { entities[i] = nil } else { collide(i) }
            }
        }
        spawnTimer -= 1
        moveTimer -= 1
        if ramping && (spawnSpeed > 1 || moveSpeed > 1) {
            if rampTimer >= 0 {
                rampTimer -= 1
            } else {
                if moveSpeed > 1 && rampIndex % 2 == 1 { moveSpeed -= 1 }
                if spawnSpeed > 1 { spawnSpeed -= 1 }
                rampIndex += 1
                rampTimer = Self.rampInterval
            }
        }
        return (reward, terminal)
    }

    /// A new enemy or gold at the left or right edge of a random free row (nothing when every row is taken; the two
    /// draws for side and kind are made either way).
    private func spawnEntity<R: MinAtarRandomSource>(using random: inout R) {
        let movesRight = random.uniform() < 1.0 / 2.0
        let isGold = random.uniform() < 1.0 / 3.0
        let free = entities.indices.filter { entities[$0] == nil }
        guard !free.isEmpty else { return }
        let slot = free[random.integer(0, free.count)]
        entities[slot] = Entity(x: movesRight ? 0 : 9, y: slot + 1, movesRight: movesRight, isGold: isGold)
    }

    public func draw(_ frame: MinAtarFrame) {
        frame.set(playerY, playerX, 0)
        for case let e? in entities {
            frame.set(e.y, e.x, e.isGold ? 3 : 1)
            let back = e.movesRight ? e.x - 1 : e.x + 1
            if (0...9).contains(back) { frame.set(e.y, back, 2) }
        }
    }

    public var state: [Int] {
        [playerX, playerY, spawnSpeed, spawnTimer, moveSpeed, moveTimer, rampTimer, rampIndex, terminal ? 1 : 0]
            + entities.flatMap { e in e.map { [1, $0.x, $0.y, $0.movesRight ? 1 : 0, $0.isGold ? 1 : 0] } ?? [0, 0, 0, 0, 0] }
    }

    public func setState(_ words: [Int]) throws {
        var r = MinAtarStateReader(words, game: Self.name)
        playerX = try r.int(0...9); playerY = try r.int(1...8)
        spawnSpeed = try r.int(1...Self.initialSpawnSpeed); spawnTimer = try r.int(0...Self.initialSpawnSpeed)
        moveSpeed = try r.int(1...Self.initialMoveInterval); moveTimer = try r.int(-1...Self.initialMoveInterval)
        rampTimer = try r.int(-1...Self.rampInterval); rampIndex = try r.int(0...Int(Int32.max)); terminal = try r.bool()
        entities = try (0..<8).map { _ in
            let present = try r.bool()
            let e = Entity(x: try r.int(0...9), y: try r.int(0...8), movesRight: try r.bool(), isGold: try r.bool())
            return present ? e : nil
        }
        try r.finish()
    }
}
