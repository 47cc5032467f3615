import Foundation

/// Point estimates with their intervals, rliable's way: one panel per statistic, one row per entry, a bar from
/// the interval's low to its high end and a tick at the estimate.
public struct IntervalPlot {
    public struct Panel {
        public var title: String
        /// Per row: the estimate and the interval.
        public var values: [(estimate: Double, low: Double, high: Double)]
        public init(title: String, values: [(estimate: Double, low: Double, high: Double)]) {
            self.title = title; self.values = values
        }
    }

    public var title: String
    /// One label per row (an agent), with its colour.
    public var rows: [(label: String, color: RGB)]
    public var panels: [Panel]

    public init(title: String, rows: [(label: String, color: RGB)], panels: [Panel]) {
        self.title = title; self.rows = rows; self.panels = panels
    }

    public func render(panelWidth: Int = 220, rowHeight: Int = 28) -> RGBImage {
        let labelWidth = (rows.map { RGBImage.textSize($0.label).width }.max() ?? 0) + 16
        let top = 56, bottom = 34, gap = 16
        let width = labelWidth + panels.count * (panelWidth + gap) + 8
        let height = top + rows.count * rowHeight + bottom
        var img = RGBImage(width: width, height: height, fill: .white)
        let grey = RGB(225, 225, 225), dark = RGB(60, 60, 60)
        img.drawText(title, x: 8, y: 12, color: .black, scale: 2)
        for (i, row) in rows.enumerated() {
            img.drawText(row.label, x: 8, y: top + i * rowHeight + rowHeight / 2 - 3, color: dark)
        }
        for (p, panel) in panels.enumerated() {
            let left = labelWidth + p * (panelWidth + gap)
            let lows = panel.values.map(\.low).filter(\.isFinite), highs = panel.values.map(\.high).filter(\.isFinite)
            var x0 = lows.min() ?? 0, x1 = highs.max() ?? 1
            if x1 <= x0 { x0 -= 0.5; x1 += 0.5 }
            let pad = (x1 - x0) * 0.08
            x0 -= pad; x1 += pad
            func px(_ x: Double) -> Double { Double(left) + (x - x0) / (x1 - x0) * Double(panelWidth) }
            img.drawText(panel.title, x: left + panelWidth / 2 - RGBImage.textSize(panel.title).width / 2, y: top - 18, color: dark)
            let plotHeight = rows.count * rowHeight
            for t in LinePlot.ticks(x0, x1, count: 3) {
                let x = Int(px(t))
                img.fillRect(x: x, y: top, width: 1, height: plotHeight, color: grey)
                let text = LinePlot.label(t)
                img.drawText(text, x: x - RGBImage.textSize(text).width / 2, y: top + plotHeight + 8, color: dark)
            }
            img.strokeRect(x: left, y: top, width: panelWidth + 1, height: plotHeight + 1, color: dark)
            for (i, value) in panel.values.enumerated() where i < rows.count && value.low.isFinite && value.high.isFinite {
                let y = top + i * rowHeight + rowHeight / 4
                let a = Int(px(value.low)), b = max(Int(px(value.high)), a + 2)
                img.fillRect(x: a, y: y, width: b - a, height: rowHeight / 2, color: rows[i].color)
                if value.estimate.isFinite {
                    img.fillRect(x: Int(px(value.estimate)) - 1, y: y - 2, width: 3, height: rowHeight / 2 + 4, color: .black)
                }
            }
        }
        return img
    }
}
