import CZlib
import Foundation
import Support

/// The IDX format of MNIST and Fashion-MNIST: a big-endian magic (`0x0000_08_<rank>`: unsigned bytes), one int32
/// size per dimension, then the bytes in row-major order. Files may be gzipped (read through zlib either way).
public enum IDX {
    /// The dimensions and bytes of an IDX file of unsigned bytes, checked against the sizes its header gives.
    public static func read(_ url: URL) throws -> (shape: [Int], bytes: [UInt8]) {
        try decode(inflatedContents(of: url), path: url.path)
    }

    /// The dimensions and bytes of an IDX file's (decompressed) contents; `path` names it in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> (shape: [Int], bytes: [UInt8]) {
        let url = URL(fileURLWithPath: path)
        func int32(at offset: Int) -> Int {
            Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        }
        guard bytes.count >= 4 else { throw DatasetError.malformed(url.path, "\(bytes.count) bytes is too short for an IDX file") }
        guard bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08, (1...4).contains(bytes[3]) else {
            let magic = bytes[0..<4].map { String(format: "%02x", $0) }.joined()
            throw DatasetError.malformed(url.path, "wrong magic 0x\(magic): not an IDX file of unsigned bytes (0x0000080N)")
        }
        let rank = Int(bytes[3])
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else { throw DatasetError.malformed(url.path, "truncated header") }
        let shape = (0..<rank).map { int32(at: 4 + 4 * $0) }
        let expected = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard bytes.count - headerSize == expected else {
            throw DatasetError.malformed(url.path, "the header gives \(shape.map(String.init).joined(separator: "×")) = "
                                         + "\(expected) bytes but the file holds \(bytes.count - headerSize)"
                                         + (bytes.count - headerSize < expected ? " (truncated)" : ""))
        }
        return (shape, Array(bytes[headerSize...]))
    }

    /// An image file `[count, height, width]` and its label file `[count]` as a data set, pixels scaled to [0, 1].
    public static func labelledImages(images: URL, labels: URL, classCount: Int = 10) throws -> LabelledDataset {
        let (imageShape, pixels) = try read(images)
        let (labelShape, labelBytes) = try read(labels)
        guard imageShape.count == 3 else {
            throw DatasetError.malformed(images.path, "expected images [count, height, width], the header gives \(imageShape)")
        }
        guard labelShape.count == 1 else {
            throw DatasetError.malformed(labels.path, "expected labels [count], the header gives \(labelShape)")
        }
        guard labelShape[0] == imageShape[0] else {
            throw DatasetError.malformed(labels.path, "\(labelShape[0]) labels for the \(imageShape[0]) images of \(images.lastPathComponent)")
        }
        if let bad = labelBytes.firstIndex(where: { Int($0) >= classCount }) {
            throw DatasetError.malformed(labels.path, "label \(labelBytes[bad]) at index \(bad) is not below \(classCount)")
        }
        let scale: Float = 1 / 255
        return LabelledDataset(features: pixels.map { Float($0) * scale }, labels: labelBytes.map(Int.init),
                               featureCount: imageShape[1] * imageShape[2], classCount: classCount,
                               sampleShape: [1, imageShape[1], imageShape[2]])
    }

    /// The file's bytes, gunzipped when it is gzip (zlib reads plain files as they are); more than `Limits.idxBytes`
    /// (a corrupt or hostile file that inflates without end) is an error.
    static func inflatedContents(of url: URL) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: url.path) else { throw DatasetError.unreadable(url.path) }
        guard let file = gzopen(url.path, "rb") else { throw DatasetError.unreadable(url.path) }
        defer { gzclose(file) }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = gzread(file, &chunk, UInt32(chunk.count))
            if n < 0 { throw DatasetError.malformed(url.path, "gzip data is corrupt") }
            if n == 0 { break }
            guard bytes.count + Int(n) <= Limits.idxBytes else {
                throw DatasetError.malformed(url.path, "more than \(Limits.idxBytes) bytes (decompressed), the limit")
            }
            bytes.append(contentsOf: chunk[0..<Int(n)])
        }
        return bytes
    }
}
