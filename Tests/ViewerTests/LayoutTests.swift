import Foundation
import Imaging
import Testing
import Viewer

/// The parts of the viewer that need no window: layout, panel, curve, key map, mailbox.
struct LayoutTests {
    @Test func letterboxKeepsAspectAndCentres() {
        #expect(ViewerWindow.letterbox(content: (600, 400), area: (600, 400)) == (0, 0, 600, 400))
        #expect(ViewerWindow.letterbox(content: (600, 400), area: (1200, 800)) == (0, 0, 1200, 800))
        #expect(ViewerWindow.letterbox(content: (50, 50), area: (200, 100)) == (50, 0, 100, 100))
        #expect(ViewerWindow.letterbox(content: (600, 400), area: (600, 600)) == (0, 100, 600, 400))
        #expect(ViewerWindow.letterbox(content: (3, 1), area: (10, 10)) == (0, 3, 10, 3))  // odd margins round towards the top
        #expect(ViewerWindow.letterbox(content: (0, 5), area: (10, 10)) == (0, 0, 0, 0))
    }

    @Test func keyMap() {
        // SDL key codes of printable keys are their ASCII codes; Escape is 27.
        #expect(ViewerEvent.forKey(32) == .togglePause)
        #expect(ViewerEvent.forKey(32, isRepeat: true) == nil)
        #expect(ViewerEvent.forKey(Int32(UInt8(ascii: "+"))) == .faster)
        #expect(ViewerEvent.forKey(Int32(UInt8(ascii: "=")), isRepeat: true) == .faster)
        #expect(ViewerEvent.forKey(Int32(UInt8(ascii: "-")), isRepeat: true) == .slower)
        #expect(ViewerEvent.forKey(Int32(UInt8(ascii: "r"))) == .restart)
        #expect(ViewerEvent.forKey(Int32(UInt8(ascii: "s"))) == .screenshot)
        #expect(ViewerEvent.forKey(Int32(UInt8(ascii: "q"))) == .quit)
        #expect(ViewerEvent.forKey(27) == .quit)
        #expect(ViewerEvent.forKey(Int32(UInt8(ascii: "a"))) == nil)
    }

    @Test func panelKeepsTheFrameAndReportsTheRun() {
        let frame = TestPattern.image(width: 100, height: 80)
        #expect(StatusPanel.compose(frame: frame, status: nil) == frame)
        #expect(StatusPanel.compose(frame: frame, status: ViewerStatus()) == frame)

        let status = ViewerStatus(step: 500, totalSteps: 1000, episode: 12, lastReturn: 21, meanReturn: 17.25,
                                  stepsPerSecond: 950.4, notes: ["EPS 0.1"], returns: [1, 5, 3, 9, 12, 8, 21])
        #expect(status.lines == ["STEP 500/1000", "EPISODE 12", "RETURN 21.0", "MEAN RETURN 17.2", "STEPS/S 950",
                                 "EPS 0.1"])
        let composed = StatusPanel.compose(frame: frame, status: status, indicators: ["PAUSED"])
        #expect(composed.width > frame.width)
        #expect(composed.height >= frame.height)
        let top = (composed.height - frame.height) / 2
        var frameRegion = RGBImage(width: frame.width, height: frame.height)
        for y in 0..<frame.height { for x in 0..<frame.width { frameRegion[x, y] = composed[x, y + top] } }
        #expect(frameRegion == frame, "the frame must appear unchanged")
        // The panel carries text and the indicator colour, and the curve's moving average.
        let panelPixels = Set((0..<composed.height).flatMap { y in (frame.width..<composed.width).map { composed[$0, y] } })
        #expect(panelPixels.contains(RGB(232, 232, 232)))
        #expect(panelPixels.contains(RGB(255, 204, 64)))
        #expect(panelPixels.contains(Sparkline.averageColor))

        // Tall panels on small frames: the frame is centred and the rest is black.
        let tiny = RGBImage(width: 8, height: 8, fill: RGB(1, 2, 3))
        let around = StatusPanel.compose(frame: tiny, status: status)
        #expect(around.height > 8)
        #expect(around[4, (around.height - 8) / 2 + 4] == RGB(1, 2, 3))
        #expect(around[4, 0] == .black)
    }

    @Test func returnFormatting() {
        #expect(ViewerStatus(lastReturn: -3.14159).lines == ["RETURN -3.1"])
        #expect(ViewerStatus(meanReturn: 123_456).lines == ["MEAN RETURN 1.23E+05"])
        #expect(ViewerStatus(lastReturn: .nan).lines == ["RETURN NAN"])
    }

    @Test func sparklineFollowsTheValues() {
        let rising = Sparkline(values: (0..<500).map(Double.init), smoothingWindow: 1).render(width: 50, height: 20)
        // With no smoothing, the average line of a rising series is high on the right and low on the left.
        func averageRows(column: Int) -> [Int] {
            (0..<20).filter { rising[column, $0] == Sparkline.averageColor }
        }
        let left = averageRows(column: 2), right = averageRows(column: 47)
        #expect(!left.isEmpty && !right.isEmpty)
        #expect(left.min()! > right.max()!)

        let flat = Sparkline(values: [3, 3, 3]).render(width: 30, height: 10)
        #expect(flat.pixels.contains(Sparkline.averageColor.g))
        let empty = Sparkline(values: [.nan, 1]).render(width: 30, height: 10)
        #expect(empty == RGBImage(width: 30, height: 10, fill: Sparkline.background))
        // Fewer values than columns and more values than columns both fill every column.
        for n in [2, 7, 1000] {
            let image = Sparkline(values: (0..<n).map { sin(Double($0)) }).render(width: 40, height: 12)
            for x in 0..<40 {
                #expect((0..<12).contains { image[x, $0] != Sparkline.background }, "n=\(n) column \(x) is empty")
            }
        }
    }

    @Test func gridRejectsBadRequests() {
        #expect { try ViewerWindow.grid([], columns: 2) } throws: { "\($0)".contains("at least one image") }
        #expect { try ViewerWindow.grid([RGBImage(width: 2, height: 2)], columns: 0) } throws: { "\($0)".contains("0 columns") }
        // Images of different sizes are centred in equal cells.
        let grid = try? ViewerWindow.grid([RGBImage(width: 4, height: 4, fill: .white),
                                           RGBImage(width: 2, height: 2, fill: RGB(255, 0, 0))],
                                          columns: 2, spacing: 1, background: .black)
        #expect(grid?.width == 11 && grid?.height == 6)
        #expect(grid?[1, 1] == .white)
        #expect(grid?[6 + 1, 1 + 1] == RGB(255, 0, 0))
        #expect(grid?[6, 1] == .black)
    }

    @Test func testPatternHasDistinctBars() {
        let image = TestPattern.image(width: 160, height: 120)
        let barColors = (0..<8).map { image[$0 * 20 + 10, 30] }
        #expect(barColors == TestPattern.barColors)
        #expect(Set(barColors).count == 8)
        #expect(TestPattern.image(width: 160, height: 120, frame: 40) != image, "the pattern must animate")
    }

    @Test func latestValueKeepsOnlyTheNewestAcrossThreads() async {
        let mailbox = LatestValue<[Int]>()
        #expect(mailbox.latest == nil && mailbox.version == 0)
        var seen: UInt64 = 0
        #expect(mailbox.takeIfNewer(than: &seen) == nil)

        let count = 20_000
        let producer = Thread {
            for i in 1...count { mailbox.publish([i, i]) }
        }
        producer.start()
        // The consumer only ever sees whole values, in publishing order.
        var last = 0
        while last < count {
            if let value = mailbox.takeIfNewer(than: &seen) {
                #expect(value[0] == value[1] && value[0] > last)
                last = value[0]
            }
        }
        #expect(mailbox.latest == [count, count])
        #expect(mailbox.version == UInt64(count))
        #expect(mailbox.takeIfNewer(than: &seen) == nil)
    }
}
