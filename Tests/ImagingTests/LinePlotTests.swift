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
}
