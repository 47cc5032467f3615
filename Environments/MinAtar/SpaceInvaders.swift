/// MinAtar Space Invaders (`minatar/environments/space_invaders.py`): a cannon on the bottom row shoots (every 5
/// frames at most) at a block of 4 × 6 aliens that moves sideways and one row down at each edge, faster as fewer are
/// left; +1 per alien hit. The alien nearest the cannon shoots every 10 frames. The game ends when an alien or an
/// alien's bullet reaches the cannon or the aliens reach the bottom. A cleared wave is replaced; with ramping each
/// new wave moves faster (the move interval goes from 12 down to 6). The left and right channels repeat the alien
/// map for the current direction. No random draws besides the sticky actions.
public final class SpaceInvaders: MinAtarGame {
    public static let name = "SpaceInvaders"
    public static let channels = ["cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet"]
    public static let minimalActions: [MinAtarAction] = [.noop, .left, .right, .fire]
    static let shotCoolDown = 5, enemyMoveInterval = 12, enemyShotInterval = 10

    let ramping: Bool
    var cannon = 5
    /// Row-major 10 × 10 maps.
    var aliens = [Bool](repeating: false, count: 100)
    var friendlyBullets = [Bool](repeating: false, count: 100)
    var enemyBullets = [Bool](repeating: false, count: 100)
    var alienDirection = -1
    var moveInterval = 0, alienMoveTimer = 0, alienShotTimer = 0, rampIndex = 0, shotTimer = 0
    var terminal = false

    public init(ramping: Bool) { self.ramping = ramping }

    /// The starting block: rows 0–3, columns 2–7.
    static let wave = (0..<100).map { $0 / 10 < 4 && (2...7).contains($0 % 10) }

    public func reset<R: MinAtarRandomSource>(using random: inout R) {
        cannon = 5
        friendlyBullets = [Bool](repeating: false, count: 100)
        enemyBullets = friendlyBullets
        aliens = Self.wave
        alienDirection = -1
        moveInterval = Self.enemyMoveInterval
        alienMoveTimer = moveInterval
        alienShotTimer = Self.enemyShotInterval
        rampIndex = 0
        shotTimer = 0
        terminal = false
    }

    /// numpy's `roll` of a row-major 10 × 10 map by `rows` down and `columns` right, wrapping around.
    static func rolled(_ map: [Bool], rows: Int = 0, columns: Int = 0) -> [Bool] {
        (0..<100).map { i in map[((i / 10 - rows + 10) % 10) * 10 + (i % 10 - columns + 10) % 10] }
    }

    public func act<R: MinAtarRandomSource>(_ action: MinAtarAction, using random: inout R) -> (reward: Double, terminal: Bool) {
        var reward = 0.0
        if terminal { return (reward, terminal) }
        if action == .fire && shotTimer == 0 {
            friendlyBullets[90 + cannon] = true
            shotTimer = Self.shotCoolDown
        } else if action == .left {
            cannon = max(0, cannon - 1)
        } else if action == .right {
            cannon = min(9, cannon + 1)
        }
        // Bullets move one row: the player's up (the top row leaves), the aliens' down (the bottom row leaves).
        friendlyBullets = Self.rolled(friendlyBullets, rows: -1)
        for x in 0..<10 { friendlyBullets[90 + x] = false }
        enemyBullets = Self.rolled(enemyBullets, rows: 1)
        for x in 0..<10 { enemyBullets[x] = false }
        if enemyBullets[90 + cannon] { terminal = true }

        if aliens[90 + cannon] { terminal = true }
        if alienMoveTimer == 0 {
            alienMoveTimer = min(aliens.count(where: { $0 }), moveInterval)
            let atLeft = (0..<10).contains { aliens[$0 * 10] }, atRight = (0..<10).contains { aliens[$0 * 10 + 9] }
            if (atLeft && alienDirection < 0) || (atRight && alienDirection > 0) {
                alienDirection = -alienDirection
                if aliens[90..<100].contains(true) { terminal = true }
                aliens = Self.rolled(aliens, rows: 1)
            } else {
                aliens = Self.rolled(aliens, columns: alienDirection)
            }
            if aliens[90 + cannon] { terminal = true }
        }
        if alienShotTimer == 0 {
            alienShotTimer = Self.enemyShotInterval
            if let nearest = nearestAlien() { enemyBullets[nearest.y * 10 + nearest.x] = true }
        }
        for i in 0..<100 where aliens[i] && friendlyBullets[i] {
            reward += 1
            aliens[i] = false
            friendlyBullets[i] = false
        }
        if shotTimer > 0 { shotTimer -= 1 }
        alienMoveTimer -= 1
        alienShotTimer -= 1
        if !aliens.contains(true) {
            if moveInterval > 6 && ramping {
                moveInterval -= 1
                rampIndex += 1
            }
            for i in 0..<100 where Self.wave[i] { aliens[i] = true }
        }
        return (reward, terminal)
    }

    /// The lowest alien of the column nearest the cannon that has one (ties: the column further left).
    private func nearestAlien() -> (y: Int, x: Int)? {
        let columns = (0..<10).sorted { abs($0 - cannon) < abs($1 - cannon) || (abs($0 - cannon) == abs($1 - cannon) && $0 < $1) }
        for x in columns {
            if let y = (0..<10).last(where: { aliens[$0 * 10 + x] }) { return (y, x) }
        }
        return nil
    }

    public func draw(_ frame: MinAtarFrame) {
        frame.set(9, cannon, 0)
        for i in 0..<100 {
            if aliens[i] {
                frame.set(i / 10, i % 10, 1)
                frame.set(i / 10, i % 10, alienDirection < 0 ? 2 : 3)
            }
            if friendlyBullets[i] { frame.set(i / 10, i % 10, 4) }
            if enemyBullets[i] { frame.set(i / 10, i % 10, 5) }
        }
    }

    public var state: [Int] {
        [cannon, alienDirection, moveInterval, alienMoveTimer, alienShotTimer, rampIndex, shotTimer, terminal ? 1 : 0]
            + (aliens + friendlyBullets + enemyBullets).map { $0 ? 1 : 0 }
    }

    public func setState(_ words: [Int]) throws {
        var r = MinAtarStateReader(words, game: Self.name)
        cannon = try r.int(0...9); alienDirection = try r.int(-1...1)
        moveInterval = try r.int(6...Self.enemyMoveInterval); alienMoveTimer = try r.int(-1...Self.enemyMoveInterval)
        alienShotTimer = try r.int(-1...Self.enemyShotInterval); rampIndex = try r.int(0...6)
        shotTimer = try r.int(0...Self.shotCoolDown); terminal = try r.bool()
        aliens = try r.grid(); friendlyBullets = try r.grid(); enemyBullets = try r.grid()
        try r.finish()
        guard alienDirection != 0 else { throw EnvironmentError.invalidState("SpaceInvaders: the aliens' direction is −1 or 1") }
    }
}
