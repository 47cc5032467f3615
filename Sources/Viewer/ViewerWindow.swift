import CSDL2
import Foundation
import Imaging

/// An SDL2 window that shows `RGBImage`s, scaled to fit and letterboxed with black bars.
///
/// Use a window only from the thread that opened it (SDL wants the window's owner to pump its events; for rlbench
/// that is the main thread), and call `pollEvents()` every frame. Opening throws `ViewerError.noDisplay` when no
/// display is available — print the reason and continue headless.
///
/// ```swift
/// let window = try ViewerWindow(title: "CartPole-v1", width: 600, height: 400, scale: 1.5)
/// try window.show(frame)
/// for event in window.pollEvents() where event == .quit { window.close() }
/// ```
public final class ViewerWindow {
    /// The window title.
    public let title: String
    /// SDL's id of the window (keyboard and window events carry it).
    public let windowID: UInt32
    /// The image currently shown (what `show` was last given), or nil before the first `show`.
    public private(set) var currentImage: RGBImage?

    private var window: OpaquePointer?
    private var renderer: OpaquePointer?
    private var texture: OpaquePointer?
    private var textureSize = (width: 0, height: 0)

    /// Opens a window sized for content of `width`×`height` image pixels magnified by `scale`.
    ///
    /// - Parameters:
    ///   - resizable: whether the person may resize the window (content is rescaled and letterboxed).
    ///   - hidden: create the window unmapped (for tests that only read pixels back).
    public init(title: String = "rlbench", width: Int, height: Int, scale: Double = 1,
                resizable: Bool = true, hidden: Bool = false) throws {
        guard width > 0, height > 0, scale > 0, scale.isFinite else {
            throw ViewerError.invalidArgument("window content \(width)x\(height) at scale \(scale)")
        }
        let windowWidth = max(1, Int((Double(width) * scale).rounded()))
        let windowHeight = max(1, Int((Double(height) * scale).rounded()))
        self.title = title
        try SDLVideo.acquire()
        var flags = SDL_WINDOW_SHOWN.rawValue
        if resizable { flags |= SDL_WINDOW_RESIZABLE.rawValue }
        if hidden { flags = (flags & ~SDL_WINDOW_SHOWN.rawValue) | SDL_WINDOW_HIDDEN.rawValue }
        let centered = Int32(bitPattern: 0x2FFF_0000) // SDL_WINDOWPOS_CENTERED (a C macro Swift cannot import)
        guard let window = SDL_CreateWindow(title, centered, centered, Int32(windowWidth), Int32(windowHeight), flags)
        else {
            let message = SDLVideo.lastError()
            SDLVideo.release()
            throw ViewerError.noDisplay("SDL could not create a window (\(message))")
        }
        // Prefer the default (accelerated) renderer; fall back to SDL's software renderer.
        guard let renderer = SDL_CreateRenderer(window, -1, 0)
            ?? SDL_CreateRenderer(window, -1, SDL_RENDERER_SOFTWARE.rawValue)
        else {
            let message = SDLVideo.lastError()
            SDL_DestroyWindow(window)
            SDLVideo.release()
            throw ViewerError.noDisplay("SDL could not create a renderer (\(message))")
        }
        self.window = window
        self.renderer = renderer
        self.windowID = SDL_GetWindowID(window)
        SDL_SetRenderDrawColor(renderer, 0, 0, 0, 255)
        SDL_RenderClear(renderer)
        SDL_RenderPresent(renderer)
    }

    deinit { close() }

    /// Whether the window is still open (not yet `close()`d).
    public var isOpen: Bool { window != nil }

    /// The size of the drawable area in pixels (may differ from the requested size after resizing or on
    /// high-density screens).
    public var outputSize: (width: Int, height: Int) {
        guard let renderer else { return (0, 0) }
        var w: Int32 = 0, h: Int32 = 0
        SDL_GetRendererOutputSize(renderer, &w, &h)
        return (Int(w), Int(h))
    }

    /// The name of the SDL renderer in use ("opengl", "software", ...).
    public var rendererName: String {
        guard let renderer else { return "closed" }
        var info = SDL_RendererInfo()
        guard SDL_GetRendererInfo(renderer, &info) == 0, let name = info.name else { return "unknown" }
        return String(cString: name)
    }

    /// Shows `image`, scaled to fit the window and letterboxed.
    public func show(_ image: RGBImage) throws {
        currentImage = image
        try draw(image)
        SDL_RenderPresent(renderer)
    }

    /// Shows `images` tiled in a grid of `columns` columns (samples from a generative model, several
    /// environments...), separated by `spacing` pixels of `background`.
    public func showGrid(_ images: [RGBImage], columns: Int, spacing: Int = 2, background: RGB = RGB(40, 40, 40)) throws {
        try show(ViewerWindow.grid(images, columns: columns, spacing: spacing, background: background))
    }

    /// Tiles `images` row by row into one image: cells as large as the largest image, each image centred in its
    /// cell, `spacing` pixels between cells and around the border.
    public static func grid(_ images: [RGBImage], columns: Int, spacing: Int = 2,
                            background: RGB = RGB(40, 40, 40)) throws -> RGBImage {
        guard !images.isEmpty else { throw ViewerError.invalidArgument("a grid needs at least one image") }
        guard columns > 0, spacing >= 0 else {
            throw ViewerError.invalidArgument("grid with \(columns) columns and spacing \(spacing)")
        }
        let cellWidth = images.map(\.width).max()!, cellHeight = images.map(\.height).max()!
        let columnCount = min(columns, images.count)
        let rowCount = (images.count + columnCount - 1) / columnCount
        var out = RGBImage(width: columnCount * (cellWidth + spacing) + spacing,
                           height: rowCount * (cellHeight + spacing) + spacing, fill: background)
        for (index, image) in images.enumerated() {
            let column = index % columnCount, row = index / columnCount
            out.copy(image, x: spacing + column * (cellWidth + spacing) + (cellWidth - image.width) / 2,
                     y: spacing + row * (cellHeight + spacing) + (cellHeight - image.height) / 2)
        }
        return out
    }

    /// Events since the last call, mapped to `ViewerEvent`s (keys, window close). Call this every frame: it also
    /// lets the window repaint after being resized or uncovered.
    public func pollEvents() -> [ViewerEvent] {
        guard window != nil else { return [] }
        var events: [ViewerEvent] = []
        var event = SDL_Event()
        var needsRedraw = false
        while SDL_PollEvent(&event) != 0 {
            if event.type == SDL_WINDOWEVENT.rawValue && event.window.windowID == windowID {
                let kind = UInt32(event.window.event)
                if kind == SDL_WINDOWEVENT_SIZE_CHANGED.rawValue || kind == SDL_WINDOWEVENT_EXPOSED.rawValue {
                    needsRedraw = true
                }
            }
            if let mapped = ViewerEvent(event, windowID: windowID) { events.append(mapped) }
        }
        if needsRedraw, let image = currentImage, (try? draw(image)) != nil { SDL_RenderPresent(renderer) }
        return events
    }

    /// What the window shows, read back by SDL (`SDL_RenderReadPixels`) at the window's pixel size, letterbox
    /// bars included.
    public func readPixels() throws -> RGBImage {
        guard let renderer else { throw ViewerError.closed }
        // The back buffer's contents are undefined after a present; draw the current frame again and read it.
        if let image = currentImage {
            try draw(image)
        } else {
            SDL_SetRenderDrawColor(renderer, 0, 0, 0, 255)
            SDL_RenderClear(renderer)
        }
        let (width, height) = outputSize
        guard width > 0, height > 0 else { throw ViewerError.sdl(operation: "read-back", message: "empty window") }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let status = pixels.withUnsafeMutableBytes {
            SDL_RenderReadPixels(renderer, nil, SDL_PIXELFORMAT_RGB24.rawValue, $0.baseAddress, Int32(width * 3))
        }
        guard status == 0 else { throw ViewerError.sdl(operation: "SDL_RenderReadPixels", message: SDLVideo.lastError()) }
        SDL_RenderPresent(renderer)
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Saves what the window shows (see `readPixels()`) as a PNG in `directory`, written atomically, and returns
    /// the file's location. Names are `rlbench-<date>-<time>.png`, never overwriting an existing file.
    @discardableResult
    public func saveScreenshot(in directory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        throws -> URL {
        let image = try readPixels()
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd-HHmmss-SSS"
        let stem = "rlbench-\(formatter.string(from: Date()))"
        var url = directory.appendingPathComponent("\(stem).png")
        var counter = 1
        while FileManager.default.fileExists(atPath: url.path) {
            counter += 1
            url = directory.appendingPathComponent("\(stem)-\(counter).png")
        }
        try image.writePNG(to: url)
        return url
    }

    /// Destroys the window; SDL shuts down when the last window closes. Safe to call twice.
    public func close() {
        guard let window else { return }
        if let texture { SDL_DestroyTexture(texture) }
        if let renderer { SDL_DestroyRenderer(renderer) }
        SDL_DestroyWindow(window)
        texture = nil
        renderer = nil
        self.window = nil
        SDLVideo.release()
    }

    /// Where content of `content` size goes inside an area of `area` size: as large as fits with its aspect
    /// ratio kept, centred (the rest are letterbox bars).
    public static func letterbox(content: (width: Int, height: Int), area: (width: Int, height: Int))
        -> (x: Int, y: Int, width: Int, height: Int) {
        guard content.width > 0, content.height > 0, area.width > 0, area.height > 0 else { return (0, 0, 0, 0) }
        // Compare cross products in integers so exact fits (scale 1, 2, ...) are exact.
        let width: Int, height: Int
        if area.width * content.height <= area.height * content.width {
            width = area.width
            height = max(1, area.width * content.height / content.width)
        } else {
            height = area.height
            width = max(1, area.height * content.width / content.height)
        }
        return ((area.width - width) / 2, (area.height - height) / 2, width, height)
    }

    /// Uploads `image` and draws it letterboxed into the back buffer.
    private func draw(_ image: RGBImage) throws {
        guard let renderer else { throw ViewerError.closed }
        if texture == nil || textureSize != (image.width, image.height) {
            if let texture { SDL_DestroyTexture(texture) }
            texture = SDL_CreateTexture(renderer, SDL_PIXELFORMAT_RGB24.rawValue,
                                        Int32(SDL_TEXTUREACCESS_STREAMING.rawValue),
                                        Int32(image.width), Int32(image.height))
            guard texture != nil else {
                throw ViewerError.sdl(operation: "SDL_CreateTexture(\(image.width)x\(image.height))",
                                      message: SDLVideo.lastError())
            }
            textureSize = (image.width, image.height)
        }
        let uploaded = image.pixels.withUnsafeBytes {
            SDL_UpdateTexture(texture, nil, $0.baseAddress, Int32(image.width * 3))
        }
        guard uploaded == 0 else { throw ViewerError.sdl(operation: "SDL_UpdateTexture", message: SDLVideo.lastError()) }
        let area = outputSize
        let box = ViewerWindow.letterbox(content: (image.width, image.height), area: area)
        // Magnify crisply (pixel art, grids); minify smoothly.
        SDL_SetTextureScaleMode(texture, box.width >= image.width ? SDL_ScaleModeNearest : SDL_ScaleModeLinear)
        SDL_SetRenderDrawColor(renderer, 0, 0, 0, 255)
        SDL_RenderClear(renderer)
        var destination = SDL_Rect(x: Int32(box.x), y: Int32(box.y), w: Int32(box.width), h: Int32(box.height))
        guard SDL_RenderCopy(renderer, texture, nil, &destination) == 0 else {
            throw ViewerError.sdl(operation: "SDL_RenderCopy", message: SDLVideo.lastError())
        }
    }
}

extension RGBImage {
    /// Copies `source` with its top-left corner at (x, y), clipped to this image, a row at a time.
    mutating func copy(_ source: RGBImage, x: Int, y: Int) {
        let x0 = max(0, x), x1 = min(width, x + source.width)
        let y0 = max(0, y), y1 = min(height, y + source.height)
        guard x0 < x1, y0 < y1 else { return }
        let rowBytes = (x1 - x0) * 3
        let destinationWidth = width
        source.pixels.withUnsafeBufferPointer { from in
            pixels.withUnsafeMutableBufferPointer { to in
                for row in y0..<y1 {
                    let fromStart = ((row - y) * source.width + (x0 - x)) * 3
                    let toStart = (row * destinationWidth + x0) * 3
                    UnsafeMutableRawPointer(to.baseAddress! + toStart)
                        .copyMemory(from: from.baseAddress! + fromStart, byteCount: rowBytes)
                }
            }
        }
    }
}
