import Foundation
import Imaging

/// Pictures of samples: a grid of images, or a scatter of 2-D points over the modes they should cover.
public enum SampleImages {
    /// Rows of samples `[n, channels·height·width]` with values in [0, 1] (clamped) as a grid of `columns` images,
    /// each scaled up `scale` times, separated by a 2-pixel grey gutter. One channel is drawn grey, three as RGB.
    public static func grid(_ samples: [Float], sampleShape: [Int], columns: Int, scale: Int = 2) -> RGBImage {
        let (c, h, w) = (sampleShape[0], sampleShape[1], sampleShape[2])
        let size = c * h * w
        let n = samples.count / size
        let cols = max(1, min(columns, n)), rows = (n + cols - 1) / cols
        let gap = 2
        var image = RGBImage(width: cols * (w * scale + gap) + gap, height: rows * (h * scale + gap) + gap, fill: RGB(96, 96, 96))
        func byte(_ v: Float) -> UInt8 { UInt8((min(max(v, 0), 1) * 255).rounded()) }
        for k in 0..<n {
            let x0 = gap + (k % cols) * (w * scale + gap), y0 = gap + (k / cols) * (h * scale + gap)
            for y in 0..<h {
                for x in 0..<w {
                    let i = k * size + y * w + x
                    let color = c >= 3 ? RGB(byte(samples[i]), byte(samples[i + h * w]), byte(samples[i + 2 * h * w]))
                        : RGB(byte(samples[i]), byte(samples[i]), byte(samples[i]))
                    image.fillRect(x: x0 + x * scale, y: y0 + y * scale, width: scale, height: scale, color: color)
                }
            }
        }
        return image
    }

    /// 2-D points `[x0, y0, x1, y1, …]` as dots over the true modes (red rings), on a square of ±`extent`.
    public static func scatter(_ points: [Float], modes: [(x: Double, y: Double)], extent: Double, size: Int = 480) -> RGBImage {
        var image = RGBImage(width: size, height: size, fill: .white)
        func px(_ v: Double) -> Double { (v + extent) / (2 * extent) * Double(size) }
        image.drawLine(x0: px(0), y0: 0, x1: px(0), y1: Double(size), width: 1, color: RGB(220, 220, 220))
        image.drawLine(x0: 0, y0: px(0), x1: Double(size), y1: px(0), width: 1, color: RGB(220, 220, 220))
        for i in stride(from: 0, to: points.count - 1, by: 2) {
            image.fillCircle(cx: px(Double(points[i])), cy: px(-Double(points[i + 1])), radius: 1.2, color: RGB(30, 80, 200))
        }
        for m in modes {
            image.strokeCircle(cx: px(m.x), cy: px(-m.y), radius: 6, color: RGB(210, 40, 40), thickness: 1.5)
        }
        return image
    }
}
