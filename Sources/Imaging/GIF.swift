import Foundation
import Support

/// Animated GIF (GIF89a) encoding: one global palette, LZW-compressed frames, looping forever.
public enum GIF {
    /// The GIF file bytes for `frames` (all the same size), each shown for `delayCentiseconds`.
    public static func encode(_ frames: [RGBImage], delayCentiseconds: Int) -> Data {
        precondition(!frames.isEmpty, "a GIF needs at least one frame")
        let width = frames[0].width, height = frames[0].height
        precondition(frames.allSatisfy { $0.width == width && $0.height == height }, "GIF frames must all have the same size")
        let (palette, indexOf) = makePalette(frames)

        var out = Data("GIF89a".utf8)
        func u16(_ v: Int) { out.append(UInt8(v & 0xFF)); out.append(UInt8((v >> 8) & 0xFF)) }
        u16(width); u16(height)
        out.append(0xF7) // global colour table, 8 bits of colour resolution, 256 entries
        out.append(0); out.append(0)
        for i in 0..<256 {
            let c = i < palette.count ? palette[i] : RGB.black
            out.append(c.r); out.append(c.g); out.append(c.b)
        }
        // NETSCAPE2.0 application extension: loop forever.
        out.append(contentsOf: [0x21, 0xFF, 0x0B] + Array("NETSCAPE2.0".utf8) + [0x03, 0x01, 0x00, 0x00, 0x00])
        for frame in frames {
            out.append(contentsOf: [0x21, 0xF9, 0x04, 0x00]) // graphics control: no transparency
            u16(max(0, min(delayCentiseconds, 65535)))
            out.append(contentsOf: [0x00, 0x00])
            out.append(0x2C); u16(0); u16(0); u16(width); u16(height); out.append(0x00)
            var indices = [UInt8](repeating: 0, count: width * height)
            for p in 0..<(width * height) {
                indices[p] = indexOf(RGB(frame.pixels[p * 3], frame.pixels[p * 3 + 1], frame.pixels[p * 3 + 2]))
            }
            out.append(8) // LZW minimum code size
            let compressed = lzw(indices, minimumCodeSize: 8)
            var offset = 0
            while offset < compressed.count {
                let n = min(255, compressed.count - offset)
                out.append(UInt8(n))
                out.append(contentsOf: compressed[offset..<(offset + n)])
                offset += n
            }
            out.append(0)
        }
        out.append(0x3B)
        return out
    }

    /// Writes the animation atomically.
    public static func write(_ frames: [RGBImage], delayCentiseconds: Int, to url: URL) throws {
        try AtomicFile.write(encode(frames, delayCentiseconds: delayCentiseconds), to: url)
    }

    /// The exact colours when there are at most 256, otherwise a 6×7×6 colour cube with nearest-colour mapping.
    static func makePalette(_ frames: [RGBImage]) -> ([RGB], (RGB) -> UInt8) {
        var seen: [RGB: UInt8] = [:]
        var palette: [RGB] = []
        outer: for frame in frames {
            for p in stride(from: 0, to: frame.pixels.count, by: 3) {
                let c = RGB(frame.pixels[p], frame.pixels[p + 1], frame.pixels[p + 2])
                if seen[c] == nil {
                    if palette.count == 256 { palette.removeAll(); break outer }
                    seen[c] = UInt8(palette.count)
                    palette.append(c)
                }
            }
        }
        if !palette.isEmpty { return (palette, { seen[$0]! }) }
        var cube: [RGB] = []
        for r in 0..<6 { for g in 0..<7 { for b in 0..<6 {
            cube.append(RGB(UInt8(r * 255 / 5), UInt8(g * 255 / 6), UInt8(b * 255 / 5)))
        } } }
        return (cube, { c in
            let r = (Int(c.r) * 5 + 127) / 255, g = (Int(c.g) * 6 + 127) / 255, b = (Int(c.b) * 5 + 127) / 255
            return UInt8((r * 7 + g) * 6 + b)
        })
    }

    /// GIF's variable-length LZW (codes up to 12 bits, packed least significant bit first).
    static func lzw(_ indices: [UInt8], minimumCodeSize: Int) -> [UInt8] {
        let clear = 1 << minimumCodeSize, end = clear + 1
        var codeSize = minimumCodeSize + 1, nextCode = clear + 2
        var table: [Int: Int] = [:]
        var out: [UInt8] = []
        var buffer = 0, bits = 0
        func emit(_ code: Int) {
            buffer |= code << bits
            bits += codeSize
            while bits >= 8 { out.append(UInt8(buffer & 0xFF)); buffer >>= 8; bits -= 8 }
        }
        emit(clear)
        guard var prefix = indices.first.map(Int.init) else { emit(end); return out }
        for k in indices.dropFirst() {
            let key = prefix << 8 | Int(k)
            if let code = table[key] { prefix = code; continue }
            emit(prefix)
            if nextCode < 4096 {
                table[key] = nextCode
                nextCode += 1
                if nextCode > (1 << codeSize) && codeSize < 12 { codeSize += 1 }
            } else {
                emit(clear)
                table.removeAll(keepingCapacity: true)
                codeSize = minimumCodeSize + 1
                nextCode = clear + 2
            }
            prefix = Int(k)
        }
        emit(prefix)
        emit(end)
        if bits > 0 { out.append(UInt8(buffer & 0xFF)) }
        return out
    }
}
