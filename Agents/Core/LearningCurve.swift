import Imaging

/// The learning-curve picture every run writes: episode returns against environment steps, with a
/// 100-episode moving average.
enum LearningCurve {
    static func draw(steps: [Double], returns: [Double], title: String) -> RGBImage {
        var average: [Double] = []
        var window: [Double] = []
        var sum = 0.0
        for r in returns {
            window.append(r); sum += r
            if window.count > 100 { sum -= window.removeFirst() }
            average.append(sum / Double(window.count))
        }
        return LinePlot(title: title, xLabel: "environment steps", yLabel: "episode return", series: [
            .init(label: "episode return", x: steps, y: returns, color: RGB(170, 190, 230), lineWidth: 1),
            .init(label: "mean of last 100", x: steps, y: average, color: RGB(200, 40, 40), lineWidth: 2.5),
        ]).render()
    }
}
