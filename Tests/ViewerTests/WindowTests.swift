import CSDL2
import Environments
import Foundation
import Imaging
import Testing
import TestSupport
import Viewer

/// Real windows on a (virtual) display, checked as a person would see them: SDL's own read-back of the window
/// against the picture rendered in memory. SDL's state is process-wide, so these never run in parallel.
@Suite(.serialized, .xvfbDisplay)
struct WindowTests {
    @Test func showsAFrameExactlyAtScaleOne() throws {
        let pattern = TestPattern.image(width: 160, height: 120, frame: 7)
        let window = try ViewerWindow(title: "scale 1", width: 160, height: 120)
        defer { window.close() }
        try window.show(pattern)
        #expect(window.outputSize == (160, 120))
        let shown = try window.readPixels()
        #expect(shown.width == 160 && shown.height == 120)
        #expect(mismatches(shown, pattern) == 0, "renderer \(window.rendererName)")
    }

    @Test func magnifiesWithoutBlurringAtScaleTwo() throws {
        let pattern = TestPattern.image(width: 96, height: 64, frame: 3)
        let window = try ViewerWindow(title: "scale 2", width: 96, height: 64, scale: 2)
        defer { window.close() }
        try window.show(pattern)
        let shown = try window.readPixels()
        #expect(shown.width == 192 && shown.height == 128)
        #expect(mismatches(shown, pattern.scaled(by: 2)) == 0, "renderer \(window.rendererName)")
    }

    @Test func letterboxesAFrameOfAnotherShape() throws {
        var square = RGBImage(width: 50, height: 50, fill: RGB(0, 128, 255))
        square.fillRect(x: 0, y: 0, width: 25, height: 25, color: RGB(255, 64, 0))
        let window = try ViewerWindow(title: "letterbox", width: 200, height: 100)
        defer { window.close() }
        try window.show(square)
        var expected = RGBImage(width: 200, height: 100, fill: .black)
        expected.blit(square.scaled(by: 2), x: 50, y: 0)
        #expect(mismatches(try window.readPixels(), expected) == 0)
    }

    @Test func showsTheStatusPanelAsComposed() throws {
        let frame = TestPattern.image(width: 120, height: 90)
        let status = ViewerStatus(title: "PPO CARTPOLE-V1", step: 12_000, totalSteps: 50_000, episode: 87,
                                  lastReturn: 212, meanReturn: 143.5, stepsPerSecond: 4100,
                                  returns: (0..<87).map { Double($0 * 2 % 37) + Double($0) })
        let composed = StatusPanel.compose(frame: frame, status: status, indicators: ["PAUSED"])
        let window = try ViewerWindow(title: "panel", width: composed.width, height: composed.height)
        defer { window.close() }
        try window.show(composed)
        #expect(mismatches(try window.readPixels(), composed) == 0)
    }

    @Test(arguments: ["CartPole-v1", "Acrobot-v1", "FrozenLake-v1"])
    func showsAnEnvironmentFrameExactlyAsRenderedInMemory(id: String) throws {
        // A known state: reset with a fixed seed and a few fixed actions.
        let env = try Registry.make(id)
        env.reset(seed: 11)
        for action in [1, 0, 1] { _ = try env.step(.discrete(action)) }
        let frame = env.render()
        let window = try ViewerWindow(title: id, width: frame.width, height: frame.height)
        defer { window.close() }
        try window.show(frame)
        #expect(mismatches(try window.readPixels(), frame) == 0, "renderer \(window.rendererName)")
    }

    @Test func showsAGridOfSamples() throws {
        let colors = [RGB(255, 0, 0), RGB(0, 255, 0), RGB(0, 0, 255), RGB(255, 255, 0), RGB(0, 255, 255)]
        let samples = colors.map { RGBImage(width: 20, height: 12, fill: $0) }
        let grid = try ViewerWindow.grid(samples, columns: 3, spacing: 2)
        #expect(grid.width == 3 * 22 + 2 && grid.height == 2 * 14 + 2)
        let window = try ViewerWindow(title: "grid", width: grid.width, height: grid.height)
        defer { window.close() }
        try window.showGrid(samples, columns: 3, spacing: 2)
        let shown = try window.readPixels()
        #expect(mismatches(shown, grid) == 0)
        #expect(shown[2 + 22 + 10, 2 + 6] == colors[1])   // row 0, column 1
        #expect(shown[2 + 22 + 10, 2 + 14 + 6] == colors[4])  // row 1, column 1
        #expect(shown[2 + 44 + 10, 2 + 14 + 6] == RGB(40, 40, 40))  // empty cell
    }

    @Test func mapsKeysAndCloseToViewerEvents() throws {
        let window = try ViewerWindow(title: "keys", width: 64, height: 48)
        defer { window.close() }
        _ = window.pollEvents()  // whatever the window manager sent on creation
        for (key, isRepeat) in [(SDLK_SPACE, false), (SDLK_SPACE, true), (SDLK_EQUALS, false), (SDLK_PLUS, true),
                                (SDLK_MINUS, false), (SDLK_x, false), (SDLK_r, false), (SDLK_s, false),
                                (SDLK_q, false), (SDLK_ESCAPE, false)] {
            var event = SDL_Event()
            event.key.type = SDL_KEYDOWN.rawValue
            event.key.windowID = window.windowID
            event.key.state = UInt8(SDL_PRESSED)
            event.key.repeat = isRepeat ? 1 : 0
            event.key.keysym.sym = Int32(key.rawValue)
            #expect(SDL_PushEvent(&event) == 1)
        }
        var close = SDL_Event()
        close.window.type = SDL_WINDOWEVENT.rawValue
        close.window.windowID = window.windowID
        close.window.event = UInt8(SDL_WINDOWEVENT_CLOSE.rawValue)
        #expect(SDL_PushEvent(&close) == 1)

        let events = window.pollEvents()
        #expect(events == [.togglePause, .faster, .faster, .slower, .restart, .screenshot, .quit, .quit, .quit])
        #expect(window.pollEvents().isEmpty)
    }

    @Test func screenshotIsAValidPNGOfTheWindow() throws {
        let directory = Scratch.directory("screenshots")
        let pattern = TestPattern.image(width: 80, height: 60, frame: 1)
        let window = try ViewerWindow(title: "screenshot", width: 80, height: 60, scale: 1.5)
        defer { window.close() }
        try window.show(pattern)
        let first = try window.saveScreenshot(in: directory)
        let second = try window.saveScreenshot(in: directory)
        #expect(first != second)
        #expect(first.pathExtension == "png" && first.deletingLastPathComponent().path == directory.path)
        let decoded = try PNG.decode(Data(contentsOf: first))
        #expect(decoded == (try window.readPixels()))
        #expect(decoded.width == 120 && decoded.height == 90)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    @Test func liveLoopHonoursPauseRestartSpeedAndClose() throws {
        let window = try ViewerWindow(title: "live", width: 64, height: 48)
        _ = window.pollEvents()
        var produced = 0, restarts = 0
        let source = FrameSource(nextFrame: {
            produced += 1
            return TestPattern.image(width: 64, height: 48, frame: produced)
        }, restart: { restarts += 1 })
        let status = LatestValue(ViewerStatus(step: 1, episode: 1))
        let loop = LiveViewLoop(window: window, fps: 100)
        // What the source had produced when each key took effect (keys pushed by the script below are handled on
        // the loop's next pass, which may show one more frame first when it is due).
        var seen: [ViewerEvent] = []
        var producedAtPause = -1, producedAtRestart = -1, producedAtResume = -1
        var composedWhilePaused: RGBImage?, indicatorsWhilePaused: [String] = []
        loop.onEvent = { event in
            seen.append(event)
            switch event {
            case .togglePause where loop.isPaused: producedAtPause = produced
            case .togglePause: producedAtResume = produced
            case .restart:
                producedAtRestart = produced
                composedWhilePaused = window.currentImage
                indicatorsWhilePaused = loop.indicators
            default: break
            }
        }

        // A person's session, keyed on frames shown: pause, restart while paused, resume, speed up, slow down, quit.
        var script: [(atFrame: Int, key: SDL_KeyCode)] = [
            (3, SDLK_SPACE), (8, SDLK_r), (12, SDLK_SPACE), (14, SDLK_PLUS), (15, SDLK_MINUS), (15, SDLK_MINUS),
            (18, SDLK_q),
        ]
        let end = try loop.run(source: source, status: status, while: {
            while let next = script.first, loop.framesShown >= next.atFrame {
                pushKey(next.key, window: window)
                script.removeFirst()
            }
            return loop.framesShown < 200  // safety net: the script must end the loop long before this
        })
        #expect(end == .windowClosed)
        #expect(!window.isOpen)
        #expect(seen == [.togglePause, .restart, .togglePause, .faster, .slower, .slower, .quit])
        #expect(restarts == 1)
        #expect(producedAtPause >= 3 && producedAtRestart == producedAtPause, "the source must not advance while paused")
        #expect(producedAtResume == producedAtPause + 1, "a restart while paused shows the new episode's first frame")
        #expect(produced > producedAtResume)
        #expect(abs(loop.fps - 100 / 1.5) < 1e-9)  // ×1.5, ÷1.5, ÷1.5
        // What was on screen while paused: the frame with the status panel and the PAUSED indicator.
        let paused = try #require(composedWhilePaused)
        #expect(indicatorsWhilePaused.first == "PAUSED")
        let expected = StatusPanel.compose(frame: TestPattern.image(width: 64, height: 48, frame: producedAtPause),
                                           status: ViewerStatus(step: 1, episode: 1), indicators: indicatorsWhilePaused)
        #expect(paused.width > 64 && paused == expected)
    }

    @Test func liveLoopFinishesWhenTheCallerStopsIt() throws {
        let window = try ViewerWindow(title: "finish", width: 32, height: 32)
        defer { window.close() }
        let loop = LiveViewLoop(window: window, fps: 240)
        let start = ContinuousClock.now
        let end = try loop.run(source: FrameSource(nextFrame: { TestPattern.image(width: 32, height: 32) }),
                               while: { loop.framesShown < 24 })
        #expect(end == .finished)
        #expect(window.isOpen)
        #expect(loop.framesShown == 24)
        // 24 frames at 240 fps take about 0.1 s; pacing must neither skip the waits nor stall.
        let elapsed = (ContinuousClock.now - start) / .seconds(1)
        #expect(elapsed > 0.08 && elapsed < 1.5, "took \(elapsed) s")
    }

    @Test func noDisplayIsAClearErrorNotACrash() throws {
        let saved = ProcessInfo.processInfo.environment["DISPLAY"]
        defer { if let saved { setenv("DISPLAY", saved, 1) } else { unsetenv("DISPLAY") } }

        let unused = (1000..<1100).first { !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\($0)") }!
        setenv("DISPLAY", ":\(unused)", 1)
        #expect {
            try ViewerWindow(title: "nowhere", width: 10, height: 10)
        } throws: { error in
            guard case let .noDisplay(reason) = error as? ViewerError else { return false }
            return !reason.isEmpty
        }

        unsetenv("DISPLAY")
        let savedWayland = ProcessInfo.processInfo.environment["WAYLAND_DISPLAY"]
        unsetenv("WAYLAND_DISPLAY")
        defer { if let savedWayland { setenv("WAYLAND_DISPLAY", savedWayland, 1) } }
        #expect(throws: ViewerError.noDisplay("neither DISPLAY nor WAYLAND_DISPLAY is set")) {
            try ViewerWindow(title: "nowhere", width: 10, height: 10)
        }

        // SDL starts cleanly again once a display is back.
        if let saved { setenv("DISPLAY", saved, 1) }
        let window = try ViewerWindow(title: "back", width: 16, height: 16)
        try window.show(RGBImage(width: 16, height: 16, fill: RGB(9, 99, 199)))
        #expect(try window.readPixels()[8, 8] == RGB(9, 99, 199))
        window.close()
    }
}

/// Pixels that differ between two images of the same size (all of them when the sizes differ).
func mismatches(_ a: RGBImage, _ b: RGBImage) -> Int {
    guard a.width == b.width, a.height == b.height else { return max(a.pixels.count, b.pixels.count) / 3 }
    var count = 0
    for i in stride(from: 0, to: a.pixels.count, by: 3)
    where a.pixels[i] != b.pixels[i] || a.pixels[i + 1] != b.pixels[i + 1] || a.pixels[i + 2] != b.pixels[i + 2] {
        count += 1
    }
    return count
}

/// Posts a key press to SDL's queue as if typed in `window`.
func pushKey(_ key: SDL_KeyCode, window: ViewerWindow) {
    var event = SDL_Event()
    event.key.type = SDL_KEYDOWN.rawValue
    event.key.windowID = window.windowID
    event.key.state = UInt8(SDL_PRESSED)
    event.key.keysym.sym = Int32(key.rawValue)
    SDL_PushEvent(&event)
}
