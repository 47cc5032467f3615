import Imaging
import Testing

/// The learning-curve chart every run writes: its text must stay readable and its legend off the data.
@Suite struct LinePlotTests {
    let red = RGB(200, 30, 30)

    /// A chart like a run's learning curve: returns that climb to their maximum and stay there.
    func chart() -> RGBImage {
        let x = (0..<200).map(Double.init), y = x.map { min($0 * 5, 500) }
        return LinePlot(title: "PPO ON CARTPOLE-V1 (SEED 0)", xLabel: "ENVIRONMENT STEPS", yLabel: "EPISODE RETURN",
                        series: [.init(label: "MEAN OF LAST 100", x: x, y: y, color: red)]).render()
    }

    /// Rows with any pixel that is not white, from the top down to (not including) row `end`.
    func inkedRows(_ image: RGBImage, above end: Int) -> [Int] {
        (0..<end).filter { y in (0..<image.width).contains { image[$0, y] != .white } }
    }

    /// The top edge of the plot's frame: the first row drawn dark across more than half the image.
    func frameTop(_ image: RGBImage) -> Int? {
        (0..<image.height).first { y in (0..<image.width).count { image[$0, y] == RGB(60, 60, 60) } > image.width / 2 }
    }

    @Test func titleAndAxisLabelAreSeparateLinesAboveThePlot() throws {
        let image = chart()
        let top = try #require(frameTop(image))
        // Split the inked rows above the frame into bands of consecutive rows: the title, then the axis label and
        // the legend.
        var bands: [[Int]] = []
        for y in inkedRows(image, above: top) {
            if let last = bands.last?.last, y == last + 1 { bands[bands.count - 1].append(y) } else { bands.append([y]) }
        }
        #expect(bands.count == 2, "bands of text above the plot: \(bands.map { ($0.first!, $0.last!) })")
        if bands.count == 2 {
            #expect(bands[1].first! - bands[0].last! > 3, "title and axis label nearly touch")
            #expect(top - bands[1].last! > 3, "axis label touches the plot")
        }
    }

    @Test func legendSitsOutsideThePlot() throws {
        let image = chart()
        let top = try #require(frameTop(image))
        let swatchRows = (0..<top).filter { y in (0..<image.width).contains { image[$0, y] == red } }
        #expect(!swatchRows.isEmpty, "the legend's swatch is not above the plot")
    }

    /// A band (the report's confidence interval) is shaded in a pale tint of its line between its low and high
    /// values, and only there; markers without a line leave dots and no segments.
    @Test func bandIsShadedBetweenItsEdges() throws {
        let x = (0..<50).map(Double.init)
        let image = LinePlot(title: "BAND", xLabel: "X", yLabel: "Y", series: [
            .init(label: "IQM", x: x, y: x.map { _ in 5 }, color: red, lineWidth: 2, band: (x.map { _ in 3 }, x.map { _ in 7 })),
            .init(label: "BOUNDS", x: [0, 49], y: [0, 10], color: RGB(0, 0, 200), lineWidth: 0, markers: true),
        ]).render()
        let tint = RGB(241, 198, 198)  // (200 + 3·255) / 4, (30 + 3·255) / 4, rounded down
        // The y axis spans 0–10 (padded by 5%): rows of value 6 and 4 lie inside the band, 8 and 2 outside it.
        let top = 56.0, height = Double(image.height - 56 - 50), low = -0.5, high = 10.5
        func row(_ value: Double) -> Int { Int(top + (1 - (value - low) / (high - low)) * height) }
        let column = image.width / 2
        #expect(image[column, row(6)] == tint && image[column, row(4)] == tint)
        #expect(image[column, row(8)] != tint && image[column, row(2)] != tint)
        #expect(image[column, row(5)] == red, "the line is drawn over its band")
        // Markers only: no segment between the two dots, so the middle of the diagonal stays unpainted.
        let blue = (0..<image.height).filter { image[column, $0] == RGB(0, 0, 200) }
        #expect(blue.isEmpty, "a series with lineWidth 0 draws no line")
    }
}
