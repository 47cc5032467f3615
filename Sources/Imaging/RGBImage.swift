/// An 8-bit RGB image in memory: row-major, three bytes per pixel, no padding.
///
/// The one picture type of rlbench: environments render into it, PNG and GIF encoders and
/// the SDL viewer read it, sample grids and learning curves are drawn into it.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, R, G, B for each pixel, rows top to bottom.
    public var pixels: [UInt8]

    /// An image filled with one colour.
    public init(width: Int, height: Int, fill: RGB = .white) {
        precondition(width > 0 && height > 0, "image size must be positive, got \(width)x\(height)")
        self.width = width
        self.height = height
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: p.count, by: 3) { p[i] = fill.r; p[i + 1] = fill.g; p[i + 2] = fill.b }
        self.pixels = p
    }

    /// Wraps existing pixel bytes; `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height * 3,
                     "pixel buffer of \(pixels.count) bytes does not fit \(width)x\(height) RGB")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The colour at (x, y); (0, 0) is the top-left corner.
    public subscript(x: Int, y: Int) -> RGB {
        get {
            let i = (y * width + x) * 3
            return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            let i = (y * width + x) * 3
            pixels[i] = newValue.r; pixels[i + 1] = newValue.g; pixels[i + 2] = newValue.b
        }
    }
}

/// An 8-bit RGB colour.
public struct RGB: Sendable, Hashable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }

    public static let white = RGB(255, 255, 255)
    public static let black = RGB(0, 0, 0)
}
