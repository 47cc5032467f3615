import Foundation

/// A line chart of one or more series with axes, tick labels, a title and a legend.
public struct LinePlot {
    public struct Series {
        public var label: String
        public var x: [Double]
        public var y: [Double]
        public var color: RGB
        /// 0 draws no line (points only, with `markers`).
        public var lineWidth: Double
        /// A shaded band around the line (a confidence interval): its lower and upper value at each x.
        public var band: (low: [Double], high: [Double])?
        /// A dot at each point (a scatter plot when `lineWidth` is 0).
        public var markers: Bool
        public init(label: String, x: [Double], y: [Double], color: RGB, lineWidth: Double = 1.5,
                    band: (low: [Double], high: [Double])? = nil, markers: Bool = false) {
            self.label = label; self.x = x; self.y = y; self.color = color; self.lineWidth = lineWidth
            self.band = band; self.markers = markers
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    /// "Nice" tick values covering [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var t = ceil(lo / step) * step, out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if abs(v) >= 10_000 { return String(format: "%.0fk", v / 1000) }
        if v == v.rounded() { return String(format: "%.0f", v) }
        return String(format: "%.2g", v)
    }

    /// Draws the chart into a new image.
    public func render(width: Int = 800, height: Int = 500) -> RGBImage {
        var img = RGBImage(width: width, height: height, fill: .white)
        let left = 70, right = 20, top = 56, bottom = 50
        let plotW = width - left - right, plotH = height - top - bottom
        let xs = series.flatMap(\.x)
        let ys = series.flatMap { $0.y + ($0.band.map { $0.low + $0.high } ?? []) }.filter(\.isFinite)
        var (x0, x1) = (xs.min() ?? 0, xs.max() ?? 1), (y0, y1) = (ys.min() ?? 0, ys.max() ?? 1)
        if x1 <= x0 { x1 = x0 + 1 }
        if y1 <= y0 { y0 -= 1; y1 += 1 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { Double(left) + (x - x0) / (x1 - x0) * Double(plotW) }
        func py(_ y: Double) -> Double { Double(top) + (1 - (y - y0) / (y1 - y0)) * Double(plotH) }
        let grey = RGB(225, 225, 225), dark = RGB(60, 60, 60)
        for t in Self.ticks(y0, y1) {
            let y = Int(py(t))
            img.fillRect(x: left, y: y, width: plotW, height: 1, color: grey)
            let text = Self.label(t)
            img.drawText(text, x: left - 6 - RGBImage.textSize(text).width, y: y - 3, color: dark)
        }
        for t in Self.ticks(x0, x1) {
            let x = Int(px(t))
            img.fillRect(x: x, y: top, width: 1, height: plotH, color: grey)
            let text = Self.label(t)
            img.drawText(text, x: x - RGBImage.textSize(text).width / 2, y: top + plotH + 8, color: dark)
        }
        img.strokeRect(x: left, y: top, width: plotW + 1, height: plotH + 1, color: dark)
        // Bands first, each a polygon along its upper edge and back along its lower one, in a pale tint of its line.
        for s in series {
            guard let band = s.band else { continue }
            let tint = RGB(UInt8((Int(s.color.r) + 3 * 255) / 4), UInt8((Int(s.color.g) + 3 * 255) / 4), UInt8((Int(s.color.b) + 3 * 255) / 4))
            let points = zip(s.x, zip(band.low, band.high)).filter { $0.1.0.isFinite && $0.1.1.isFinite }
            guard points.count > 1 else { continue }
            img.fillPolygon(points.map { (px($0.0), py($0.1.1)) } + points.reversed().map { (px($0.0), py($0.1.0)) }, color: tint)
        }
        for s in series {
            if s.markers {
                for (x, y) in zip(s.x, s.y) where y.isFinite { img.fillCircle(cx: px(x), cy: py(y), radius: 3, color: s.color) }
            }
            guard s.lineWidth > 0 else { continue }
            var previous: (Double, Double)?
            for (x, y) in zip(s.x, s.y) where y.isFinite {
                let p = (px(x), py(y))
                if let q = previous { img.drawLine(x0: q.0, y0: q.1, x1: p.0, y1: p.1, width: s.lineWidth, color: s.color) }
                previous = p
            }
        }
        img.drawText(title, x: left, y: 12, color: .black, scale: 2)
        img.drawText(xLabel, x: left + plotW / 2 - RGBImage.textSize(xLabel).width / 2, y: height - 20, color: dark)
        // The axis label and the legend share the row between the title and the plot, clear of both and of the data.
        img.drawText(yLabel, x: 8, y: top - 16, color: dark)
        var legendX = left + plotW - 10
        for s in series.reversed() {
            let w = RGBImage.textSize(s.label).width
            legendX -= w + 24
            img.fillRect(x: legendX, y: top - 15, width: 14, height: 4, color: s.color)
            img.drawText(s.label, x: legendX + 18, y: top - 16, color: dark)
        }
        return img
    }
}
