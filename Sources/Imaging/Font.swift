/// A tiny built-in 5×7 bitmap font for numbers and short labels (digits, A–Z, a few symbols; lowercase letters
/// are drawn as uppercase). Enough for plot ticks and viewer overlays without a font library.
enum BitmapFont {
    static let width = 5, height = 7
    /// Each glyph: 7 rows of 5 bits, most significant bit on the left.
    static let glyphs: [Character: [UInt8]] = [
        "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31],
        "3": [31, 2, 4, 2, 1, 17, 14], "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14],
        "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8], "8": [14, 17, 17, 14, 17, 17, 14],
        "9": [14, 17, 17, 15, 1, 2, 12], "-": [0, 0, 0, 31, 0, 0, 0], ".": [0, 0, 0, 0, 0, 12, 12],
        ",": [0, 0, 0, 0, 12, 4, 8], ":": [0, 12, 12, 0, 12, 12, 0], "/": [1, 1, 2, 4, 8, 16, 16],
        "%": [24, 25, 2, 4, 8, 19, 3], "+": [0, 4, 4, 31, 4, 4, 0], "(": [2, 4, 8, 8, 8, 4, 2], ")": [8, 4, 2, 2, 2, 4, 8],
        "=": [0, 0, 31, 0, 31, 0, 0], "_": [0, 0, 0, 0, 0, 0, 31], " ": [0, 0, 0, 0, 0, 0, 0],
        "A": [14, 17, 17, 31, 17, 17, 17], "B": [30, 17, 17, 30, 17, 17, 30], "C": [14, 17, 16, 16, 16, 17, 14],
        "D": [28, 18, 17, 17, 17, 18, 28], "E": [31, 16, 16, 30, 16, 16, 31], "F": [31, 16, 16, 30, 16, 16, 16],
        "G": [14, 17, 16, 23, 17, 17, 15], "H": [17, 17, 17, 31, 17, 17, 17], "I": [14, 4, 4, 4, 4, 4, 14],
        "J": [7, 2, 2, 2, 2, 18, 12], "K": [17, 18, 20, 24, 20, 18, 17], "L": [16, 16, 16, 16, 16, 16, 31],
        "M": [17, 27, 21, 21, 17, 17, 17], "N": [17, 17, 25, 21, 19, 17, 17], "O": [14, 17, 17, 17, 17, 17, 14],
        "P": [30, 17, 17, 30, 16, 16, 16], "Q": [14, 17, 17, 17, 21, 18, 13], "R": [30, 17, 17, 30, 20, 18, 17],
        "S": [15, 16, 16, 14, 1, 1, 30], "T": [31, 4, 4, 4, 4, 4, 4], "U": [17, 17, 17, 17, 17, 17, 14],
        "V": [17, 17, 17, 17, 17, 10, 4], "W": [17, 17, 17, 21, 21, 21, 10], "X": [17, 17, 10, 4, 10, 17, 17],
        "Y": [17, 17, 10, 4, 4, 4, 4], "Z": [31, 1, 2, 4, 8, 16, 31],
    ]
}

extension RGBImage {
    /// The pixel size of `text` drawn at `scale`.
    public static func textSize(_ text: String, scale: Int = 1) -> (width: Int, height: Int) {
        (text.count * (BitmapFont.width + 1) * scale, BitmapFont.height * scale)
    }

    /// Draws `text` with its top-left corner at (x, y), each font pixel `scale`×`scale`.
    public mutating func drawText(_ text: String, x: Int, y: Int, color: RGB, scale: Int = 1) {
        var cursor = x
        for ch in text {
            let glyph = BitmapFont.glyphs[Character(ch.uppercased())] ?? BitmapFont.glyphs["_"]!
            for (row, bits) in glyph.enumerated() {
                for col in 0..<BitmapFont.width where bits & (1 << (BitmapFont.width - 1 - col)) != 0 {
                    fillRect(x: cursor + col * scale, y: y + row * scale, width: scale, height: scale, color: color)
                }
            }
            cursor += (BitmapFont.width + 1) * scale
        }
    }
}
