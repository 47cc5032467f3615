import Foundation
import Imaging

/// A picture for checking a display by eye and by read-back: eight colour bars, a grey ramp, a one-pixel
/// checkerboard, a white frame, a label and a disc that moves with `frame`.
public enum TestPattern {
    /// The distinct bar colours, left to right.
    public static let barColors: [RGB] = [
        RGB(255, 255, 255), RGB(255, 255, 0), RGB(0, 255, 255), RGB(0, 255, 0),
        RGB(255, 0, 255), RGB(255, 0, 0), RGB(0, 0, 255), RGB(0, 0, 0),
    ]

    /// The pattern at `width`×`height` (at least 16×16), animation step `frame`.
    public static func image(width: Int, height: Int, frame: Int = 0) -> RGBImage {
        var image = RGBImage(width: max(16, width), height: max(16, height), fill: RGB(16, 16, 16))
        let w = image.width, h = image.height
        let barHeight = h / 2
        for (index, color) in barColors.enumerated() {
            let x0 = index * w / barColors.count, x1 = (index + 1) * w / barColors.count
            image.fillRect(x: x0, y: 0, width: x1 - x0, height: barHeight, color: color)
        }
        let rampTop = barHeight, rampHeight = max(1, h / 8)
        for x in 0..<w {
            let level = UInt8(x * 255 / max(1, w - 1))
            image.fillRect(x: x, y: rampTop, width: 1, height: rampHeight, color: RGB(level, level, level))
        }
        let checkerTop = rampTop + rampHeight, checkerSize = min(w / 4, h - checkerTop)
        for y in checkerTop..<(checkerTop + checkerSize) {
            for x in 0..<checkerSize where (x + y) % 2 == 0 { image[x, y] = .white }
        }
        image.strokeRect(x: 0, y: 0, width: w, height: h, color: .white)
        let textScale = h >= 200 ? 2 : 1
        image.drawText("RLBENCH \(frame)", x: checkerSize + 6, y: checkerTop + 4, color: RGB(255, 160, 0), scale: textScale)
        let radius = Double(min(w, h)) / 10
        let phase = Double(frame) * 0.05
        let cx = Double(w) * (0.55 + 0.35 * sin(phase) * 0.5 + 0.2)
        let cy = Double(checkerTop) + Double(h - checkerTop) * (0.55 + 0.25 * cos(phase * 1.3))
        image.fillCircle(cx: min(cx, Double(w) - radius - 1), cy: cy, radius: radius, color: RGB(230, 60, 60))
        return image
    }
}
