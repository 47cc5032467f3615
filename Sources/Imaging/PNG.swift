import CZlib
import Foundation
import Support

/// PNG encoding (8-bit RGB, zlib deflate, CRC-32 from zlib) and decoding of 8-bit RGB/RGBA non-interlaced files.
public enum PNG {
    /// The PNG file bytes of `image`.
    public static func encode(_ image: RGBImage) -> Data {
        var raw = [UInt8]()
        raw.reserveCapacity((image.width * 3 + 1) * image.height)
        for y in 0..<image.height {
            raw.append(0) // filter type None
            raw.append(contentsOf: image.pixels[(y * image.width * 3)..<((y + 1) * image.width * 3)])
        }
        var compressedSize = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
        let status = compress2(&compressed, &compressedSize, raw, uLong(raw.count), 6)
        precondition(status == Z_OK, "zlib compress2 failed with \(status)")
        compressed.removeSubrange(Int(compressedSize)...)

        var data = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = [UInt8]()
        header += bigEndian(UInt32(image.width)) + bigEndian(UInt32(image.height))
        header += [8, 2, 0, 0, 0] // bit depth 8, colour type RGB, deflate, no filter method, no interlace
        appendChunk(&data, "IHDR", header)
        appendChunk(&data, "IDAT", compressed)
        appendChunk(&data, "IEND", [])
        return data
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func appendChunk(_ data: inout Data, _ type: String, _ body: [UInt8]) {
        let typeBytes = Array(type.utf8)
        data.append(contentsOf: bigEndian(UInt32(body.count)))
        data.append(contentsOf: typeBytes)
        data.append(contentsOf: body)
        var crc = crc32(0, typeBytes, uInt(typeBytes.count))
        crc = body.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt(body.count)) }
        data.append(contentsOf: bigEndian(UInt32(crc)))
    }

    /// Decodes an 8-bit RGB or RGBA, non-interlaced PNG (alpha is dropped).
    public static func decode(_ data: Data) throws -> RGBImage {
        let bytes = [UInt8](data)
        guard bytes.count > 8, bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            throw ImageError.badPNG("missing PNG signature")
        }
        var offset = 8
        var width = 0, height = 0, channels = 0
        var idat = [UInt8]()
        while offset + 8 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard offset + 12 + length <= bytes.count else { throw ImageError.badPNG("truncated \(type) chunk") }
            let body = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            switch type {
            case "IHDR":
                width = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])
                height = Int(body[4]) << 24 | Int(body[5]) << 16 | Int(body[6]) << 8 | Int(body[7])
                guard body[8] == 8, body[12] == 0, body[9] == 2 || body[9] == 6 else {
                    throw ImageError.badPNG("only 8-bit, non-interlaced RGB/RGBA is supported")
                }
                channels = body[9] == 2 ? 3 : 4
            case "IDAT": idat += body
            default: break
            }
            offset += 12 + length
        }
        guard width > 0, height > 0 else { throw ImageError.badPNG("no IHDR chunk") }
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        var rawSize = uLong(raw.count)
        guard uncompress(&raw, &rawSize, idat, uLong(idat.count)) == Z_OK, rawSize == uLong(raw.count) else {
            throw ImageError.badPNG("image data does not inflate to \(width)x\(height)")
        }
        var out = [UInt8](repeating: 0, count: stride * height)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let v = raw[y * (stride + 1) + 1 + x]
                let a = x >= channels ? Int(out[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(out[(y - 1) * stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(out[(y - 1) * stride + x - channels]) : 0
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = b
                case 3: predicted = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predicted = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw ImageError.badPNG("unknown filter \(filter)")
                }
                out[y * stride + x] = UInt8(truncatingIfNeeded: Int(v) + predicted)
            }
        }
        if channels == 3 { return RGBImage(width: width, height: height, pixels: out) }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { for k in 0..<3 { rgb[i * 3 + k] = out[i * 4 + k] } }
        return RGBImage(width: width, height: height, pixels: rgb)
    }
}

public enum ImageError: Error, CustomStringConvertible {
    case badPNG(String)
    public var description: String {
        switch self { case let .badPNG(m): "bad PNG: \(m)" }
    }
}

extension RGBImage {
    /// The image as PNG bytes.
    public func pngData() -> Data { PNG.encode(self) }

    /// Writes the image as a PNG file, atomically.
    public func writePNG(to url: URL) throws { try AtomicFile.write(pngData(), to: url) }
}
