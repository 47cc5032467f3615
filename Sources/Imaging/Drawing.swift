import Foundation

/// Drawing primitives on `RGBImage`. Coordinates are in pixels, (0, 0) at the top-left; everything is clipped to
/// the image, so shapes partly or wholly off the image are fine.
extension RGBImage {
    /// Fills the whole image.
    public mutating func fill(_ color: RGB) {
        for i in stride(from: 0, to: pixels.count, by: 3) { pixels[i] = color.r; pixels[i + 1] = color.g; pixels[i + 2] = color.b }
    }

    /// Fills the axis-aligned rectangle with top-left (x, y).
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, color: RGB) {
        let x0 = max(x, 0), y0 = max(y, 0), x1 = min(x + w, width), y1 = min(y + h, height)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            var i = (yy * width + x0) * 3
            for _ in x0..<x1 { pixels[i] = color.r; pixels[i + 1] = color.g; pixels[i + 2] = color.b; i += 3 }
        }
    }

    /// Blends `color` over the rectangle with opacity `alpha` in [0, 1] (heat maps, overlays).
    public mutating func blendRect(x: Int, y: Int, width w: Int, height h: Int, color: RGB, alpha: Double) {
        let a = max(0, min(1, alpha))
        let x0 = max(x, 0), y0 = max(y, 0), x1 = min(x + w, width), y1 = min(y + h, height)
        guard x0 < x1, y0 < y1 else { return }
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 { UInt8((Double(old) * (1 - a) + Double(new) * a).rounded()) }
        for yy in y0..<y1 {
            for xx in x0..<x1 {
                let i = (yy * width + xx) * 3
                pixels[i] = mix(pixels[i], color.r); pixels[i + 1] = mix(pixels[i + 1], color.g); pixels[i + 2] = mix(pixels[i + 2], color.b)
            }
        }
    }

    /// Draws the outline of a rectangle, `thickness` pixels wide, inside its bounds.
    public mutating func strokeRect(x: Int, y: Int, width w: Int, height h: Int, color: RGB, thickness t: Int = 1) {
        fillRect(x: x, y: y, width: w, height: t, color: color)
        fillRect(x: x, y: y + h - t, width: w, height: t, color: color)
        fillRect(x: x, y: y, width: t, height: h, color: color)
        fillRect(x: x + w - t, y: y, width: t, height: h, color: color)
    }

    /// Fills a polygon (even-odd rule) given by its vertices; a pixel is inside when its centre is.
    public mutating func fillPolygon(_ points: [(x: Double, y: Double)], color: RGB) {
        guard points.count >= 3 else { return }
        let minY = max(0, Int(points.map(\.y).min()!.rounded(.down)))
        let maxY = min(height - 1, Int(points.map(\.y).max()!.rounded(.up)))
        guard minY <= maxY else { return }
        var crossings: [Double] = []
        for yy in minY...maxY {
            let cy = Double(yy) + 0.5
            crossings.removeAll(keepingCapacity: true)
            for i in 0..<points.count {
                let a = points[i], b = points[(i + 1) % points.count]
                if (a.y <= cy) != (b.y <= cy) {
                    crossings.append(a.x + (cy - a.y) / (b.y - a.y) * (b.x - a.x))
                }
            }
            crossings.sort()
            var k = 0
            while k + 1 < crossings.count {
                let x0 = max(0, Int((crossings[k] - 0.5).rounded(.up)))
                let x1 = min(width - 1, Int((crossings[k + 1] - 0.5).rounded(.down)))
                if x0 <= x1 {
                    var i = (yy * width + x0) * 3
                    for _ in x0...x1 { pixels[i] = color.r; pixels[i + 1] = color.g; pixels[i + 2] = color.b; i += 3 }
                }
                k += 2
            }
        }
    }

    /// Fills a disc.
    public mutating func fillCircle(cx: Double, cy: Double, radius r: Double, color: RGB) {
        guard let (rows, columns) = pixelsCovering(cx: cx, cy: cy, radius: r) else { return }
        for yy in rows {
            for xx in columns {
                let dx = Double(xx) + 0.5 - cx, dy = Double(yy) + 0.5 - cy
                if dx * dx + dy * dy <= r * r { self[xx, yy] = color }
            }
        }
    }

    /// The rows and columns of the image's pixels that the circle's bounding box touches; nil when it is off the image.
    private func pixelsCovering(cx: Double, cy: Double, radius r: Double) -> (ClosedRange<Int>, ClosedRange<Int>)? {
        let y0 = max(0, Int((cy - r).rounded(.down))), y1 = min(height - 1, Int((cy + r).rounded(.up)))
        let x0 = max(0, Int((cx - r).rounded(.down))), x1 = min(width - 1, Int((cx + r).rounded(.up)))
        guard y0 <= y1, x0 <= x1 else { return nil }
        return (y0...y1, x0...x1)
    }

    /// Draws a circle's outline `thickness` pixels wide.
    public mutating func strokeCircle(cx: Double, cy: Double, radius r: Double, color: RGB, thickness: Double = 1) {
        guard let (rows, columns) = pixelsCovering(cx: cx, cy: cy, radius: r) else { return }
        for yy in rows {
            for xx in columns {
                let dx = Double(xx) + 0.5 - cx, dy = Double(yy) + 0.5 - cy
                let d = (dx * dx + dy * dy).squareRoot()
                if d <= r && d >= r - thickness { self[xx, yy] = color }
            }
        }
    }

    /// Draws a straight segment `width` pixels thick (a filled quadrilateral).
    public mutating func drawLine(x0: Double, y0: Double, x1: Double, y1: Double, width w: Double = 1, color: RGB) {
        let dx = x1 - x0, dy = y1 - y0
        let length = (dx * dx + dy * dy).squareRoot()
        guard length > 0 else { fillCircle(cx: x0, cy: y0, radius: w / 2, color: color); return }
        let nx = -dy / length * w / 2, ny = dx / length * w / 2
        fillPolygon([(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)], color: color)
    }

    /// Draws an arrow from (x0, y0) to (x1, y1) with a triangular head.
    public mutating func drawArrow(x0: Double, y0: Double, x1: Double, y1: Double, width w: Double = 2, color: RGB) {
        let dx = x1 - x0, dy = y1 - y0
        let length = (dx * dx + dy * dy).squareRoot()
        guard length > 0 else { return }
        let ux = dx / length, uy = dy / length
        let head = min(length * 0.45, w * 4)
        drawLine(x0: x0, y0: y0, x1: x1 - ux * head, y1: y1 - uy * head, width: w, color: color)
        fillPolygon([(x1, y1), (x1 - ux * head - uy * head * 0.6, y1 - uy * head + ux * head * 0.6),
                     (x1 - ux * head + uy * head * 0.6, y1 - uy * head - ux * head * 0.6)], color: color)
    }

    /// Copies `other` with its top-left corner at (x, y).
    public mutating func blit(_ other: RGBImage, x: Int, y: Int) {
        for yy in 0..<other.height where y + yy >= 0 && y + yy < height {
            for xx in 0..<other.width where x + xx >= 0 && x + xx < width {
                self[x + xx, y + yy] = other[xx, yy]
            }
        }
    }

    /// A copy scaled by an integer factor (nearest neighbour).
    public func scaled(by factor: Int) -> RGBImage {
        precondition(factor >= 1, "scale factor must be at least 1")
        var out = RGBImage(width: width * factor, height: height * factor)
        for y in 0..<out.height { for x in 0..<out.width { out[x, y] = self[x / factor, y / factor] } }
        return out
    }

    /// The image upside down (for drawings made in y-up coordinates).
    public func flippedVertically() -> RGBImage {
        var out = self
        let row = width * 3
        for y in 0..<height {
            out.pixels.replaceSubrange((y * row)..<((y + 1) * row), with: pixels[((height - 1 - y) * row)..<((height - y) * row)])
        }
        return out
    }
}
