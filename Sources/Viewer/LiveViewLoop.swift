import Foundation
import Imaging

/// Where a live view gets its frames: `nextFrame` advances whatever is being shown by one step (e.g. a display
/// environment stepped with the newest policy snapshot) and returns its picture; `restart` begins a new episode
/// (the next `nextFrame` shows its first frame). Both run on the window's thread.
public struct FrameSource {
    public var nextFrame: () throws -> RGBImage
    public var restart: () throws -> Void

    public init(nextFrame: @escaping () throws -> RGBImage, restart: @escaping () throws -> Void = {}) {
        self.nextFrame = nextFrame
        self.restart = restart
    }
}

/// Why `LiveViewLoop.run` returned.
public enum LiveViewEnd: Sendable, Equatable {
    /// The person closed the window (or pressed Q/Escape); it has been closed. A caller that was training keeps
    /// training headless and says so.
    case windowClosed
    /// `shouldContinue` returned false (training finished); the window is still open.
    case finished
}

/// Drives a `ViewerWindow` at a target frame rate on the thread that owns it: pumps events, advances the frame
/// source unless paused, shows the frame with a status panel (from a `LatestValue` the training thread
/// publishes into), and acts on the keys — pause, faster/slower, restart, screenshot, quit.
///
/// The loop never waits on the training thread and the training thread never waits on the window: they share
/// only `LatestValue` mailboxes.
///
/// ```swift
/// let window = try ViewerWindow(title: "rlbench", width: 600, height: 400)
/// let loop = LiveViewLoop(window: window, fps: 30)
/// let end = try loop.run(source: FrameSource(nextFrame: { ... }, restart: { ... }), status: status,
///                        while: { !trainingDone.load(ordering: .relaxed) })
/// if end == .windowClosed { print("viewer closed; training continues headless") }
/// ```
public final class LiveViewLoop {
    public let window: ViewerWindow
    /// Target frames per second; `+`/`-` multiply/divide it by `speedFactor`, within `fpsRange`.
    public var fps: Double
    /// Whether the source is held (space toggles); the panel keeps updating while paused.
    public var isPaused = false
    /// Where screenshots (`S`) go.
    public var screenshotDirectory: URL
    /// Called with each screenshot's location; prints it by default.
    public var onScreenshot: (URL) -> Void = { print("screenshot saved to \($0.path)") }
    /// Called with every event after the loop has acted on it (for callers that want more than the defaults).
    public var onEvent: (ViewerEvent) -> Void = { _ in }
    /// How many frames the loop has shown since `run` started.
    public private(set) var framesShown = 0
    /// The latest frame from the source (without the panel).
    public private(set) var currentFrame: RGBImage?

    public static let speedFactor = 1.5
    public static let fpsRange: ClosedRange<Double> = 0.5...240

    private var cachedPanel: (status: ViewerStatus?, indicators: [String], frame: RGBImage, image: RGBImage)?

    public init(window: ViewerWindow, fps: Double = 30,
                screenshotDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) {
        self.window = window
        self.fps = min(max(fps, Self.fpsRange.lowerBound), Self.fpsRange.upperBound)
        self.screenshotDirectory = screenshotDirectory
    }

    /// Runs until the person closes the window (`.windowClosed`, the window is closed) or `shouldContinue`
    /// returns false (`.finished`, the window stays open). Errors from the source or from SDL end the loop
    /// and are rethrown.
    public func run(source: FrameSource, status: LatestValue<ViewerStatus>? = nil,
                    while shouldContinue: () -> Bool = { true }) throws -> LiveViewEnd {
        guard window.isOpen else { throw ViewerError.closed }
        framesShown = 0
        let clock = ContinuousClock()
        var deadline = clock.now
        var needsFrame = true
        // A screenshot is taken once a frame is on screen (an `S` typed as the window opens would save a blank one).
        var screenshotRequested = false
        // Each pass handles the events, asks whether to go on, then either shows the next frame (when due) or
        // sleeps a little, so keys are answered within ~10 ms even at the slowest speed.
        while true {
            for event in window.pollEvents() {
                switch event {
                case .quit:
                    window.close()
                    onEvent(event)
                    return .windowClosed
                case .togglePause: isPaused.toggle()
                case .faster: fps = min(fps * Self.speedFactor, Self.fpsRange.upperBound)
                case .slower: fps = max(fps / Self.speedFactor, Self.fpsRange.lowerBound)
                case .restart:
                    try source.restart()
                    needsFrame = true
                case .screenshot: screenshotRequested = true
                }
                onEvent(event)
            }
            guard shouldContinue() else { return .finished }

            let now = clock.now
            if now >= deadline || needsFrame {
                if !isPaused || needsFrame {
                    currentFrame = try source.nextFrame()
                    needsFrame = false
                }
                try window.show(composed(status: status?.latest))
                framesShown += 1
                let interval = Duration.seconds(1 / fps)
                deadline += interval
                if deadline <= now { deadline = now + interval }  // fell behind: carry on, don't rush to catch up
            } else {
                Thread.sleep(forTimeInterval: min(0.01, (deadline - now).seconds))
            }
            if screenshotRequested && framesShown > 0 {
                onScreenshot(try window.saveScreenshot(in: screenshotDirectory))
                screenshotRequested = false
            }
        }
    }

    /// The lines the loop adds to the panel: run state, speed and the keys.
    public var indicators: [String] { Self.indicators(paused: isPaused, fps: fps) }

    /// The indicator lines for a state (`sampleIndicators`: a typical set, for sizing a window).
    static func indicators(paused: Bool, fps: Double) -> [String] {
        [paused ? "PAUSED" : "RUNNING", String(format: "SPEED %.3g FPS", fps),
         "SPACE PAUSE  +/- SPEED", "R RESTART S SHOT Q QUIT"]
    }
    static let sampleIndicators = indicators(paused: false, fps: 30)

    /// The current frame with the status panel; the panel is redrawn only when something in it changed.
    private func composed(status: ViewerStatus?) -> RGBImage {
        guard let frame = currentFrame else { return RGBImage(width: 1, height: 1, fill: .black) }
        let indicators = self.indicators
        if let cache = cachedPanel, cache.status == status, cache.indicators == indicators,
           cache.frame.width == frame.width, cache.frame.height == frame.height {
            var image = cache.image
            image.copy(frame, x: 0, y: (image.height - frame.height) / 2)
            return image
        }
        let image = StatusPanel.compose(frame: frame, status: status, indicators: indicators)
        cachedPanel = (status, indicators, frame, image)
        return image
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
