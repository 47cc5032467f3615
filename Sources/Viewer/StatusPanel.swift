import Foundation
import Imaging

/// What the viewer's side panel reports about a run. Every field is optional; only the ones set are shown.
public struct ViewerStatus: Sendable, Equatable {
    /// A heading, e.g. "PPO CartPole-v1".
    public var title: String?
    public var step: Int?
    public var totalSteps: Int?
    public var episode: Int?
    public var lastReturn: Double?
    public var meanReturn: Double?
    public var stepsPerSecond: Double?
    /// Further lines shown as given (the font has digits, A–Z and `-.,:/%+()=_`).
    public var notes: [String]
    /// Episode returns in order; drawn as a small learning curve when there are at least two.
    public var returns: [Double]

    public init(title: String? = nil, step: Int? = nil, totalSteps: Int? = nil, episode: Int? = nil,
                lastReturn: Double? = nil, meanReturn: Double? = nil, stepsPerSecond: Double? = nil,
                notes: [String] = [], returns: [Double] = []) {
        self.title = title; self.step = step; self.totalSteps = totalSteps; self.episode = episode
        self.lastReturn = lastReturn; self.meanReturn = meanReturn; self.stepsPerSecond = stepsPerSecond
        self.notes = notes; self.returns = returns
    }

    /// The text lines the panel shows, in order.
    public var lines: [String] {
        var out: [String] = []
        if let title { out.append(title) }
        if let step {
            out.append(totalSteps.map { "STEP \(step)/\($0)" } ?? "STEP \(step)")
        }
        if let episode { out.append("EPISODE \(episode)") }
        if let lastReturn { out.append("RETURN \(Self.format(lastReturn))") }
        if let meanReturn { out.append("MEAN RETURN \(Self.format(meanReturn))") }
        if let stepsPerSecond { out.append("STEPS/S \(String(format: "%.0f", stepsPerSecond))") }
        out += notes
        return out
    }

    /// A return or other reward figure in a few characters, in the panel font's characters.
    public static func format(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "NAN" : (value > 0 ? "INF" : "-INF") }
        return abs(value) < 10_000 ? String(format: "%.1f", value) : String(format: "%.3g", value).uppercased()
    }
}

/// Lays out a frame with a side panel of status text, viewer indicators and a learning curve.
public enum StatusPanel {
    /// The frame with the panel on its right; the frame unchanged when there is nothing to report. The frame
    /// keeps its pixels exactly (top-left at (0, 0) when it is the taller part, vertically centred otherwise).
    public static func compose(frame: RGBImage, status: ViewerStatus?, indicators: [String] = []) -> RGBImage {
        let lines = (status?.lines ?? []) + indicators
        let returns = status?.returns ?? []
        guard !lines.isEmpty || returns.count >= 2 else { return frame }
        let textScale = frame.height >= 320 ? 2 : 1
        let margin = 8 * textScale, lineHeight = 11 * textScale
        let width = margin * 2 + maxCharacters * 6 * textScale
        let curveHeight = returns.count >= 2 ? 60 * textScale : 0
        let textHeight = margin + lines.count * lineHeight
        let height = max(frame.height, textHeight + (curveHeight > 0 ? curveHeight + lineHeight + margin : 0) + margin)

        var out = RGBImage(width: frame.width + width, height: height, fill: .black)
        out.copy(frame, x: 0, y: (height - frame.height) / 2)
        let left = frame.width
        out.fillRect(x: left, y: 0, width: width, height: height, color: background)
        out.fillRect(x: left, y: 0, width: textScale, height: height, color: divider)
        for (index, line) in lines.enumerated() {
            let isIndicator = index >= lines.count - indicators.count
            out.drawText(String(line.prefix(maxCharacters)), x: left + margin, y: margin + index * lineHeight,
                         color: isIndicator ? indicatorColor : textColor, scale: textScale)
        }
        if curveHeight > 0 {
            let top = height - margin - curveHeight
            let finite = returns.filter(\.isFinite)
            if let lo = finite.min(), let hi = finite.max() {
                out.drawText("RETURNS \(ViewerStatus.format(lo)) TO \(ViewerStatus.format(hi))",
                             x: left + margin, y: top - lineHeight, color: labelColor, scale: textScale)
            }
            let curve = Sparkline(values: returns).render(width: width - 2 * margin, height: curveHeight)
            out.copy(curve, x: left + margin, y: top)
        }
        return out
    }

    /// Characters per panel line (longer lines are cut).
    public static let maxCharacters = 26

    static let background = RGB(24, 26, 32)
    static let divider = RGB(70, 74, 86)
    static let textColor = RGB(232, 232, 232)
    static let indicatorColor = RGB(255, 204, 64)
    static let labelColor = RGB(150, 156, 170)
}

/// A small learning curve: each column shows the spread (min to max) of the values that fall in it, and a line
/// follows their moving average.
public struct Sparkline: Sendable {
    public var values: [Double]
    /// Values averaged for the line; nil: a fifth of the values, at most 100.
    public var smoothingWindow: Int?

    public init(values: [Double], smoothingWindow: Int? = nil) {
        self.values = values; self.smoothingWindow = smoothingWindow
    }

    public static let background = RGB(36, 40, 50)
    public static let spreadColor = RGB(70, 110, 160)
    public static let averageColor = RGB(120, 220, 140)

    /// The curve drawn into a new `width`×`height` image (non-finite values are skipped).
    public func render(width: Int, height: Int) -> RGBImage {
        var image = RGBImage(width: max(1, width), height: max(1, height), fill: Self.background)
        let finite = values.filter(\.isFinite)
        guard finite.count >= 2, width >= 2, height >= 2 else { return image }
        var lo = finite.min()!, hi = finite.max()!
        if hi <= lo { lo -= 1; hi += 1 }
        func y(_ value: Double) -> Double { 1 + (hi - value) / (hi - lo) * Double(height - 3) }

        let n = finite.count
        let window = max(1, smoothingWindow ?? min(100, max(1, n / 5)))
        var prefix = [Double](repeating: 0, count: n + 1)
        for i in 0..<n { prefix[i + 1] = prefix[i] + finite[i] }
        func average(endingAt i: Int) -> Double {
            let start = max(0, i + 1 - window)
            return (prefix[i + 1] - prefix[start]) / Double(i + 1 - start)
        }

        // Columns cover equal shares of the values; with fewer values than columns each value spans several.
        var previous: (x: Double, y: Double)?
        for column in 0..<width {
            let first = column * n / width, last = max(first, (column + 1) * n / width - 1)
            var bucketLo = finite[first], bucketHi = finite[first]
            for i in first...last { bucketLo = min(bucketLo, finite[i]); bucketHi = max(bucketHi, finite[i]) }
            let top = Int(y(bucketHi).rounded(.down)), bottom = Int(y(bucketLo).rounded(.up))
            image.fillRect(x: column, y: top, width: 1, height: max(1, bottom - top), color: Self.spreadColor)
            let point = (x: Double(column) + 0.5, y: y(average(endingAt: last)))
            if let previous {
                image.drawLine(x0: previous.x, y0: previous.y, x1: point.x, y1: point.y, width: 1.5,
                               color: Self.averageColor)
            }
            previous = point
        }
        return image
    }
}
