import Imaging

/// What a grid drawing shows in each cell on top of the map: a value (heat map) and/or an arrow (greedy action).
public struct GridOverlay: Sendable {
    /// One value per cell (e.g. max_a Q(s, a) or V(s)); drawn as a blue (low) to red (high) tint.
    public var values: [Double]?
    /// One optional action per cell, in the environment's action order; drawn as an arrow.
    public var arrows: [Int?]?
    public init(values: [Double]? = nil, arrows: [Int?]? = nil) { self.values = values; self.arrows = arrows }
}

/// The kinds of tile a grid drawing knows.
enum Tile { case floor, wall, start, goal, hole, lava, cliff }

/// Draws a grid of `rows × columns` cells of `cellSize` pixels: tiles, the overlay, and the agent.
/// `arrowVectors[a]` is the (dx, dy) screen direction of action `a`.
func drawGrid(rows: Int, columns: Int, cellSize: Int = 64, tile: (Int) -> Tile, agent: Int, overlay: GridOverlay?,
              arrowVectors: [(Double, Double)]) -> RGBImage {
    var img = RGBImage(width: columns * cellSize, height: rows * cellSize, fill: RGB(255, 255, 255))
    let colours: [Tile: RGB] = [.floor: RGB(204, 230, 255), .wall: RGB(60, 60, 60), .start: RGB(180, 220, 180),
                                .goal: RGB(255, 215, 0), .hole: RGB(30, 60, 120), .lava: RGB(220, 80, 20), .cliff: RGB(110, 70, 40)]
    let values = overlay?.values
    let (lo, hi) = values.map { v in (v.min() ?? 0, v.max() ?? 1) } ?? (0, 1)
    for s in 0..<(rows * columns) {
        let x = (s % columns) * cellSize, y = (s / columns) * cellSize
        let t = tile(s)
        img.fillRect(x: x, y: y, width: cellSize, height: cellSize, color: colours[t]!)
        if let values, s < values.count, t != .wall {
            let f = hi > lo ? (values[s] - lo) / (hi - lo) : 0.5
            img.blendRect(x: x, y: y, width: cellSize, height: cellSize, color: RGB(UInt8(255 * f), 40, UInt8(255 * (1 - f))), alpha: 0.45)
        }
        img.strokeRect(x: x, y: y, width: cellSize, height: cellSize, color: RGB(150, 150, 150))
        if t == .hole { img.fillCircle(cx: Double(x + cellSize / 2), cy: Double(y + cellSize / 2), radius: Double(cellSize) * 0.3, color: RGB(10, 20, 60)) }
        if t == .goal {
            img.fillPolygon([(Double(x) + 0.5 * Double(cellSize), Double(y) + 0.15 * Double(cellSize)),
                             (Double(x) + 0.85 * Double(cellSize), Double(y) + 0.5 * Double(cellSize)),
                             (Double(x) + 0.5 * Double(cellSize), Double(y) + 0.85 * Double(cellSize)),
                             (Double(x) + 0.15 * Double(cellSize), Double(y) + 0.5 * Double(cellSize))], color: RGB(200, 120, 0))
        }
        if let arrows = overlay?.arrows, s < arrows.count, let a = arrows[s], a >= 0, a < arrowVectors.count,
           ![.wall, .hole, .lava, .cliff, .goal].contains(t) {  // no action is taken from these
            let cx = Double(x) + Double(cellSize) / 2, cy = Double(y) + Double(cellSize) / 2, r = Double(cellSize) * 0.32
            let (dx, dy) = arrowVectors[a]
            img.drawArrow(x0: cx - dx * r, y0: cy - dy * r, x1: cx + dx * r, y1: cy + dy * r, width: 3, color: .black)
        }
    }
    let ax = Double((agent % columns) * cellSize + cellSize / 2), ay = Double((agent / columns) * cellSize + cellSize / 2)
    img.fillCircle(cx: ax, cy: ay, radius: Double(cellSize) * 0.28, color: RGB(220, 30, 30))
    img.fillCircle(cx: ax, cy: ay, radius: Double(cellSize) * 0.12, color: .white)
    return img
}

/// Left, down, right, up (FrozenLake and GridWorld) as screen directions.
let leftDownRightUp: [(Double, Double)] = [(-1, 0), (0, 1), (1, 0), (0, -1)]

/// Grid environments can draw a per-cell value heat map and greedy-action arrows.
public protocol GridRenderable: Environment {
    func render(overlay: GridOverlay?) -> RGBImage
}
