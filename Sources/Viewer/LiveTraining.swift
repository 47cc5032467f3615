import Agents
import Environments
import Foundation
import Imaging
import RLCore
import Synchronization

/// `rlbench run --view`: trains on a background thread while a window on the calling thread (the main thread)
/// shows live episodes of a separate display environment, played by a copy of the policy that follows the
/// training run's snapshots, at a watchable frame rate. Training never waits for the window and the window never
/// waits for training: they share only `LatestValue` mailboxes.
///
/// Without a display the reason is printed in one line and training runs headless. Closing the window lets
/// training continue headless (and says so).
public enum LiveTraining {
    /// How the live view looks.
    public struct Options: Sendable {
        /// Frames per second of the display episode; nil: the environment's own `renderFPS`.
        public var fps: Double?
        /// Window magnification of the frame.
        public var scale: Double = 1
        /// Where `S` saves screenshots.
        public var screenshotDirectory: URL
        /// Seed of the display environment's episodes.
        public var seed: UInt64 = 2_000_000
        public init(fps: Double? = nil, screenshotDirectory: URL) {
            self.fps = fps; self.screenshotDirectory = screenshotDirectory
        }
    }

    /// Runs `training` to its end with a live view; returns its result or rethrows its error.
    /// `log` receives the viewer's one-line messages (no display, window closed, screenshots).
    public static func run(_ training: TrainingRun, options: Options,
                           log: @escaping (String) -> Void) throws -> RunResult {
        let run = training.options
        let factory = EnvironmentFactory(id: run.environment, options: run.environmentOptions)
        let snapshots = LatestValue<Data>()
        let progress = LatestValue<TrainingProgress>()
        let player = EpisodePlayer(environment: try factory.make(),
                                   agent: try type(of: training.agent).init(environment: factory,
                                                                            hyperParameters: training.hyperParameters,
                                                                            seed: run.seed),
                                   seed: options.seed, snapshots: snapshots)
        let title = "\(training.descriptor.name) \(run.environment)".uppercased()
        let firstFrame = try player.nextFrame()
        let window: ViewerWindow
        do {
            let size = StatusPanel.compose(frame: firstFrame, status: sampleStatus(title: title),
                                           indicators: LiveViewLoop.sampleIndicators)
            window = try ViewerWindow(title: "rlbench — \(training.descriptor.name) on \(run.environment)",
                                      width: size.width, height: size.height, scale: options.scale)
        } catch let error as ViewerError {
            log("viewer: \(error); training headless")
            return try training.run()
        }

        training.onPolicySnapshot = { snapshots.publish($0) }
        training.onProgress = { progress.publish($0) }
        let outcome = Mutex<Result<RunResult, any Error>?>(nil)
        let finished = Atomic<Bool>(false)
        let trainingDone = DispatchSemaphore(value: 0)
        // The training thread is the only user of `training` from here on; this thread only waits for the result.
        let handOver = UncheckedSendable(training)
        // The window's thread needs a core of its own: training keeps to the other while the window is up (its
        // results are the same either way) and takes both again once the window is closed.
        let trainedInParallel = ForkJoin.isParallel
        ForkJoin.isParallel = false
        defer { ForkJoin.isParallel = trainedInParallel }
        let trainer = Thread {
            let result = Result(catching: { try handOver.value.run() })
            outcome.withLock { $0 = result }
            finished.store(true, ordering: .releasing)
            trainingDone.signal()
        }
        trainer.stackSize = 64 << 20
        trainer.start()

        let loop = LiveViewLoop(window: window, fps: options.fps ?? Double(player.environment.spec?.renderFPS ?? 30),
                                screenshotDirectory: options.screenshotDirectory)
        loop.onScreenshot = { log("viewer: screenshot saved to \($0.path)") }
        let status = LatestValue<ViewerStatus>()
        var seenProgress: UInt64 = 0
        var latest: TrainingProgress?
        var shown: ViewerStatus?
        let end: LiveViewEnd?
        do {
            end = try loop.run(source: player.frameSource, status: status, while: {
                if let newer = progress.takeIfNewer(than: &seenProgress) { latest = newer }
                let current = liveStatus(title: title, training: latest, player: player)
                if current != shown {
                    status.publish(current)
                    shown = current
                }
                return !finished.load(ordering: .acquiring)
            })
        } catch {
            // The view failed (SDL, or the display policy); training is unaffected.
            end = nil
            window.close()
            log("viewer: \(error); training continues headless")
        }
        ForkJoin.isParallel = trainedInParallel
        switch end {
        case .windowClosed?: log("viewer: window closed; training continues headless")
        case .finished?: window.close()
        case nil: break
        }
        trainingDone.wait()
        return try outcome.withLock { $0! }.get()
    }

    /// The panel: the training run's figures and curve, then what the display episode shows.
    static func liveStatus(title: String, training: TrainingProgress?, player: EpisodePlayer) -> ViewerStatus {
        var notes = ["VIEW EPISODE \(player.episode)", "VIEW RETURN \(ViewerStatus.format(player.episodeReturn))"]
        if let step = player.policyStep { notes.append("POLICY AT STEP \(step)") }
        return ViewerStatus(title: title, step: training?.step ?? 0, totalSteps: training?.totalSteps,
                            episode: training?.episodes ?? 0, lastReturn: training?.lastReturn,
                            meanReturn: training?.meanReturn, stepsPerSecond: training?.stepsPerSecond ?? 0,
                            notes: notes, returns: training?.returns ?? [])
    }

    /// A status with every line and the curve filled, for sizing the window.
    static func sampleStatus(title: String) -> ViewerStatus {
        ViewerStatus(title: title, step: 0, totalSteps: 0, episode: 0, lastReturn: 0, meanReturn: 0,
                     stepsPerSecond: 0, notes: ["VIEW EPISODE 0", "VIEW RETURN 0", "POLICY AT STEP 0"],
                     returns: [0, 1])
    }
}

/// Hands a value to another thread when the code guarantees only one thread uses it at a time.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
