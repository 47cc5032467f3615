import Foundation
import Generative
import Imaging
import RLCore
import Synchronization

/// `rlbench run <model> --view`: trains on a background thread while a window on the main thread shows the
/// fixed-noise samples of the latest epoch beside the loss curves, updated after every epoch. Q or closing the window
/// lets training continue headless; S saves a screenshot into the run folder. Without a display the reason is
/// printed and training runs headless.
public enum LiveSamples {
    /// What the window shows after an epoch: the sample picture and the curves so far.
    struct Frame: Sendable {
        var samples: RGBImage
        var curves: RGBImage
    }

    public static func run(_ training: GenerativeRun, log: @escaping (String) -> Void) throws -> [String: Double] {
        let blank = training.picture(training.model.generate(noise: training.fixedNoise.noise,
                                                             labels: training.fixedNoise.labels).data)
        let curvesSize = (width: 560, height: max(blank.height, 360))
        let blankCurves = RGBImage(width: curvesSize.width, height: curvesSize.height)
        let layout = try ViewerWindow.grid([blank, blankCurves], columns: 2)
        let window: ViewerWindow
        do {
            window = try ViewerWindow(title: "rlbench — \(training.descriptor.name) on \(training.options.data)",
                                      width: layout.width, height: layout.height)
        } catch let error as ViewerError {
            log("viewer: \(error); training headless")
            return try training.run()
        }
        let latest = LatestValue<Frame>()
        let descriptor = training.descriptor
        training.onEpoch = { samples, epoch, history in
            let plot = GenerativeRun.lossPlot(descriptor.losses, history, title: "epoch \(epoch)")
            latest.publish(Frame(samples: training.picture(samples),
                                 curves: plot.render(width: curvesSize.width, height: curvesSize.height)))
        }
        let outcome = Mutex<Result<[String: Double], any Error>?>(nil)
        let finished = Atomic<Bool>(false)
        let handOver = UncheckedSendable(training)
        let trainer = Thread {
            let result = Result(catching: { try handOver.value.run() })
            outcome.withLock { $0 = result }
            finished.store(true, ordering: .releasing)
        }
        trainer.stackSize = 64 << 20
        trainer.start()

        var seen: UInt64 = 0
        var frame = Frame(samples: blank, curves: blankCurves)
        var open = true
        while !finished.load(ordering: .acquiring) {
            if open {
                if let newer = latest.takeIfNewer(than: &seen) { frame = newer }
                for event in window.pollEvents() {
                    switch event {
                    case .quit:
                        window.close(); open = false
                        log("viewer: window closed; training continues headless")
                    case .screenshot:
                        if let file = try? window.saveScreenshot(in: training.options.outputDirectory) {
                            log("viewer: screenshot saved to \(file.path)")
                        }
                    default: break
                    }
                }
                if open { try? window.showGrid([frame.samples, frame.curves], columns: 2) }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        if open { window.close() }
        while outcome.withLock({ $0 == nil }) { Thread.sleep(forTimeInterval: 0.01) }
        return try outcome.withLock { $0! }.get()
    }
}
