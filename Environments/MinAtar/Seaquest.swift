/// MinAtar Seaquest (`minatar/environments/seaquest.py`): a submarine shoots enemy fish and subs (+1 each), rescues
/// divers (up to 6), and must surface before its oxygen (200 frames) runs out. Surfacing with 6 divers gives a bonus
/// of the remaining oxygen (in tenths) and ramps up the difficulty (faster spawns and moves); surfacing with fewer
/// costs one diver and also ramps; surfacing with none, running out of oxygen, or touching an enemy or an enemy sub's
/// bullet ends the game. The oxygen and diver gauges are on the bottom row; the trail channel gives the direction of
/// fish, subs and divers.
///
/// The package keeps each object as a Python list and walks its lists backwards while removing objects from them by
/// value (`list.remove`); the rules here do the same, with objects as references, so that even the rare cases (two
/// equal objects, an enemy sub that shoots in the frame it leaves the screen) play out as in the package.
public final class Seaquest: MinAtarGame {
    public static let name = "Seaquest"
    public static let channels = ["sub_front", "sub_back", "friendly_bullet", "trail", "enemy_bullet", "enemy_fish",
                                  "enemy_sub", "oxygen_guage", "diver_guage", "diver"]
    public static let minimalActions: [MinAtarAction] = MinAtarAction.allCases
    static let maxOxygen = 200, initialSpawnSpeed = 20, diverSpawnSpeed = 30, initialMoveInterval = 5
    static let shotCoolDown = 5, enemyShotInterval = 10, diverMoveInterval = 5

    /// A bullet `[x, y, right]`, fish or diver `[x, y, right, timer]` or enemy sub `[x, y, right, timer, shot timer]`
    /// (the fields a kind does not have stay 0). Equal when all fields are, as Python lists are.
    final class Piece: Equatable {
        var x: Int, y: Int, movesRight: Bool, moveTimer: Int, shotTimer: Int
        init(x: Int, y: Int, movesRight: Bool, moveTimer: Int = 0, shotTimer: Int = 0) {
            (self.x, self.y, self.movesRight, self.moveTimer, self.shotTimer) = (x, y, movesRight, moveTimer, shotTimer)
        }
        static func == (a: Piece, b: Piece) -> Bool {
            (a.x, a.y, a.movesRight, a.moveTimer, a.shotTimer) == (b.x, b.y, b.movesRight, b.moveTimer, b.shotTimer)
        }
        func at(_ x: Int, _ y: Int) -> Bool { self.x == x && self.y == y }
        func sameCell(_ other: Piece) -> Bool { at(other.x, other.y) }
        /// One cell along its direction; whether it left the screen.
        func advance() -> Bool {
            x += movesRight ? 1 : -1
            return x < 0 || x > 9
        }
    }

    let ramping: Bool
    var oxygen = 0, diverCount = 0
    var subX = 5, subY = 0
    /// The sub faces right.
    var subFacesRight = false
    var friendlyBullets: [Piece] = [], enemyBullets: [Piece] = [], fish: [Piece] = [], subs: [Piece] = [], divers: [Piece] = []
    var spawnSpeed = 0, spawnTimer = 0, diverSpawnTimer = 0, moveSpeed = 0, rampIndex = 0, shotTimer = 0
    /// The sub is at the surface (and has been since it last came up).
    var surface = true
    var terminal = false

    public init(ramping: Bool) { self.ramping = ramping }

    public func reset<R: MinAtarRandomSource>(using random: inout R) {
        oxygen = Self.maxOxygen; diverCount = 0
        (subX, subY, subFacesRight) = (5, 0, false)
        friendlyBullets = []; enemyBullets = []; fish = []; subs = []; divers = []
        spawnSpeed = Self.initialSpawnSpeed; spawnTimer = spawnSpeed; diverSpawnTimer = Self.diverSpawnSpeed
        moveSpeed = Self.initialMoveInterval; rampIndex = 0; shotTimer = 0
        surface = true; terminal = false
    }

    /// Python's `for item in reversed(list)` over a list the body may shrink: the index goes down by one per item
    /// and the walk stops as soon as it is not below the list's length.
    private func forEachReversed(_ list: ReferenceWritableKeyPath<Seaquest, [Piece]>, _ body: (Piece) -> Void) {
        var i = self[keyPath: list].count - 1
        while i >= 0 && i < self[keyPath: list].count {
            let item = self[keyPath: list][i]
            i -= 1
            body(item)
        }
    }

    /// Python's `list.remove(item)`: removes the first element equal to `item`.
    private func remove(_ item: Piece, from list: ReferenceWritableKeyPath<Seaquest, [Piece]>) {
        if let i = self[keyPath: list].firstIndex(of: item) { self[keyPath: list].remove(at: i) }
    }

    public func act<R: MinAtarRandomSource>(_ action: MinAtarAction, using random: inout R) -> (reward: Double, terminal: Bool) {
        var reward = 0
        if terminal { return (0, terminal) }
        if spawnTimer == 0 {
            spawnEnemy(using: &random)
            spawnTimer = spawnSpeed
        }
        if diverSpawnTimer == 0 {
            spawnDiver(using: &random)
            diverSpawnTimer = Self.diverSpawnSpeed
        }
        switch action {
        case .fire where shotTimer == 0:
            friendlyBullets.append(Piece(x: subX, y: subY, movesRight: subFacesRight))
            shotTimer = Self.shotCoolDown
        case .left: subX = max(0, subX - 1); subFacesRight = false
        case .right: subX = min(9, subX + 1); subFacesRight = true
        case .up: subY = max(0, subY - 1)
        case .down: subY = min(8, subY + 1)
        default: break
        }

        // The sub's bullets: a hit removes the first fish, else the first enemy sub, in the bullet's cell.
        forEachReversed(\.friendlyBullets) { bullet in
            if bullet.advance() { remove(bullet, from: \.friendlyBullets); return }
            let targets: [ReferenceWritableKeyPath<Seaquest, [Piece]>] = [\.fish, \.subs]
            for target in targets {
                if let hit = self[keyPath: target].first(where: { bullet.sameCell($0) }) {
                    remove(hit, from: target)
                    remove(bullet, from: \.friendlyBullets)
                    reward += 1
                    return
                }
            }
        }

        // Divers: picked up (while fewer than 6 are aboard) when the sub is in their cell.
        forEachReversed(\.divers) { diver in
            if diver.at(subX, subY) && diverCount < 6 {
                remove(diver, from: \.divers)
                diverCount += 1
            } else if diver.moveTimer == 0 {
                diver.moveTimer = Self.diverMoveInterval
                if diver.advance() {
                    remove(diver, from: \.divers)
                } else if diver.at(subX, subY) && diverCount < 6 {
                    remove(diver, from: \.divers)
                    diverCount += 1
                }
            } else {
                diver.moveTimer -= 1
            }
        }

        // Enemy subs move, may run into the sub or a bullet, and shoot every 10 frames (even in the frame they leave).
        forEachReversed(\.subs) { enemy in
            reward += moveEnemy(enemy, of: \.subs)
            if enemy.shotTimer == 0 {
                enemy.shotTimer = Self.enemyShotInterval
                enemyBullets.append(Piece(x: enemy.x, y: enemy.y, movesRight: enemy.movesRight))
            } else {
                enemy.shotTimer -= 1
            }
        }

        forEachReversed(\.enemyBullets) { bullet in
            if bullet.at(subX, subY) { terminal = true }
            if bullet.advance() {
                remove(bullet, from: \.enemyBullets)
            } else if bullet.at(subX, subY) {
                terminal = true
            }
        }

        forEachReversed(\.fish) { enemy in reward += moveEnemy(enemy, of: \.fish) }

        if spawnTimer > 0 { spawnTimer -= 1 }
        if diverSpawnTimer > 0 { diverSpawnTimer -= 1 }
        if shotTimer > 0 { shotTimer -= 1 }
        if oxygen <= 0 { terminal = true }
        if subY > 0 {
            oxygen -= 1
            surface = false
        } else if !surface {
            if diverCount == 0 { terminal = true } else { reward += surfaceWithDivers() }
        }
        return (Double(reward), terminal)
    }

    /// An enemy's frame (fish and subs alike): touching the sub ends the game, before and after it moves (every
    /// `moveSpeed` + 1 frames); leaving the screen removes it, and so does a bullet of the sub's in its new cell (with
    /// the bullet). Returns the reward (1 for a hit).
    private func moveEnemy(_ enemy: Piece, of list: ReferenceWritableKeyPath<Seaquest, [Piece]>) -> Int {
        if enemy.at(subX, subY) { terminal = true }
        guard enemy.moveTimer == 0 else {
            enemy.moveTimer -= 1
            return 0
        }
        enemy.moveTimer = moveSpeed
        if enemy.advance() {
            remove(enemy, from: list)
        } else if enemy.at(subX, subY) {
            terminal = true
        } else if let bullet = friendlyBullets.first(where: { enemy.sameCell($0) }) {
            remove(enemy, from: list)
            remove(bullet, from: \.friendlyBullets)
            return 1
        }
        return 0
    }

    /// Coming up with divers: with 6, a bonus of the oxygen left in tenths (and, as in the package, the count drops to
    /// −1, not 0); with fewer, one diver is spent. Full oxygen, and the difficulty ramps.
    private func surfaceWithDivers() -> Int {
        surface = true
        var reward = 0
        if diverCount == 6 {
            diverCount = 0
            reward = floorDivide(oxygen * 10, Self.maxOxygen)
        }
        oxygen = Self.maxOxygen
        diverCount -= 1
        if ramping && (spawnSpeed > 1 || moveSpeed > 2) {
            if moveSpeed > 2 && rampIndex % 2 == 1 { moveSpeed -= 1 }
            if spawnSpeed > 1 { spawnSpeed -= 1 }
            rampIndex += 1
        }
        return reward
    }

    /// A fish or (one in three) an enemy sub at the left or right edge of a random row 1–8, unless something in that
    /// row moves the other way.
    private func spawnEnemy<R: MinAtarRandomSource>(using random: inout R) {
        let movesRight = random.uniform() < 1.0 / 2.0
        let isSub = random.uniform() < 1.0 / 3.0
        let y = random.integer(1, 9)
        if (subs + fish).contains(where: { $0.y == y && $0.movesRight != movesRight }) { return }
        let x = movesRight ? 0 : 9
        if isSub {
            subs.append(Piece(x: x, y: y, movesRight: movesRight, moveTimer: moveSpeed, shotTimer: Self.enemyShotInterval))
        } else {
            fish.append(Piece(x: x, y: y, movesRight: movesRight, moveTimer: moveSpeed))
        }
    }

    private func spawnDiver<R: MinAtarRandomSource>(using random: inout R) {
        let movesRight = random.uniform() < 1.0 / 2.0
        let y = random.integer(1, 9)
        divers.append(Piece(x: movesRight ? 0 : 9, y: y, movesRight: movesRight, moveTimer: Self.diverMoveInterval))
    }

    public func draw(_ frame: MinAtarFrame) {
        frame.set(subY, subX, 0)
        // numpy wraps a column of −1 to 9 (the sub never faces right in column 0, nor left in column 9).
        let back = subFacesRight ? subX - 1 : subX + 1
        frame.set(subY, (back + 10) % 10, 1)
        for x in 0..<floorDivide(max(0, oxygen) * 10, Self.maxOxygen) { frame.set(9, x, 7) }
        for x in max(0, 9 - diverCount)..<max(9, max(0, 9 - diverCount)) { frame.set(9, x, 8) }
        for b in friendlyBullets { frame.set(b.y, b.x, 2) }
        for b in enemyBullets { frame.set(b.y, b.x, 4) }
        for (list, channel) in [(fish, 5), (subs, 6), (divers, 9)] {
            for p in list {
                frame.set(p.y, p.x, channel)
                let back = p.movesRight ? p.x - 1 : p.x + 1
                if (0...9).contains(back) { frame.set(p.y, back, 3) }
            }
        }
    }

    public var state: [Int] {
        var words = [oxygen, diverCount, subX, subY, subFacesRight ? 1 : 0, spawnSpeed, spawnTimer, diverSpawnTimer,
                     moveSpeed, rampIndex, shotTimer, surface ? 1 : 0, terminal ? 1 : 0]
        for list in [friendlyBullets, enemyBullets, fish, subs, divers] {
            words.append(list.count)
            for p in list { words += [p.x, p.y, p.movesRight ? 1 : 0, p.moveTimer, p.shotTimer] }
        }
        return words
    }

    public func setState(_ words: [Int]) throws {
        var r = MinAtarStateReader(words, game: Self.name)
        oxygen = try r.int(-1...Self.maxOxygen); diverCount = try r.int(Int(Int32.min)...6)
        subX = try r.int(0...9); subY = try r.int(0...8); subFacesRight = try r.bool()
        spawnSpeed = try r.int(1...Self.initialSpawnSpeed); spawnTimer = try r.int(0...Self.initialSpawnSpeed)
        diverSpawnTimer = try r.int(0...Self.diverSpawnSpeed); moveSpeed = try r.int(1...Self.initialMoveInterval)
        rampIndex = try r.int(0...Int(Int32.max)); shotTimer = try r.int(0...Self.shotCoolDown)
        surface = try r.bool(); terminal = try r.bool()
        func pieces() throws -> [Piece] {
            try (0..<r.int(0...10_000)).map { _ in
                Piece(x: try r.int(0...9), y: try r.int(0...9), movesRight: try r.bool(), moveTimer: try r.int(0...Self.diverSpawnSpeed),
                      shotTimer: try r.int(0...Self.enemyShotInterval))
            }
        }
        friendlyBullets = try pieces(); enemyBullets = try pieces(); fish = try pieces(); subs = try pieces(); divers = try pieces()
        try r.finish()
    }
}
