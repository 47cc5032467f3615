import CZlib
import Foundation

/// A bad or unsupported zip archive; the message names the archive part that was not understood.
public struct ZipError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reads a zip archive held in memory: the central directory's entries, each read whole and checked against its
/// CRC-32. Stored and deflated entries only (what Python's `zipfile` and `torch.save` write); no zip64, encryption or
/// multi-disk archives. Every size is bounded before anything is allocated.
public struct ZipReader {
    public struct Entry {
        public let name: String
        let method: UInt16, crc: UInt32, compressedSize: Int, size: Int, headerOffset: Int
    }

    /// The most entries, and the largest uncompressed entry, an archive may have.
    public static let maxEntries = 100_000
    public static let maxEntryBytes = 1 << 31

    public let entries: [Entry]
    private let bytes: [UInt8]
    private let source: String

    /// Parses the central directory of `data` (`source` names the archive in errors).
    public init(_ data: Data, source: String) throws {
        bytes = [UInt8](data)
        self.source = source
        func fail(_ m: String) -> ZipError { ZipError("\(source) is not a zip archive rlbench can read: \(m)") }
        // The end-of-central-directory record: 22 bytes plus a comment of at most 65,535.
        guard bytes.count >= 22 else { throw fail("it is \(bytes.count) bytes long, shorter than a zip's end record") }
        var end = -1
        for i in stride(from: bytes.count - 22, through: max(0, bytes.count - 22 - 65_535), by: -1)
        where bytes[i] == 0x50 && bytes[i + 1] == 0x4B && bytes[i + 2] == 5 && bytes[i + 3] == 6 {
            end = i; break
        }
        guard end >= 0 else { throw fail("no end-of-central-directory record") }
        let b = bytes
        func u16(_ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        let count = u16(end + 10), directorySize = u32(end + 12), directoryStart = u32(end + 16)
        if count == 0xFFFF || directoryStart == 0xFFFF_FFFF { throw fail("zip64 archives are not supported") }
        guard count <= Self.maxEntries else { throw fail("\(count) entries, more than \(Self.maxEntries)") }
        guard directoryStart + directorySize <= end else { throw fail("the central directory lies outside the file") }
        var found: [Entry] = [], at = directoryStart
        for index in 0..<count {
            guard at + 46 <= end, u32(at) == 0x0201_4B50 else { throw fail("central directory entry \(index) is damaged") }
            let flags = u16(at + 8), method = UInt16(u16(at + 10))
            let nameLength = u16(at + 28), extraLength = u16(at + 30), commentLength = u16(at + 32)
            guard at + 46 + nameLength <= end else { throw fail("central directory entry \(index) is damaged") }
            let name = String(decoding: b[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            let entry = Entry(name: name, method: method, crc: UInt32(u32(at + 16)), compressedSize: u32(at + 20),
                              size: u32(at + 24), headerOffset: u32(at + 42))
            guard flags & 1 == 0 else { throw fail("'\(name)' is encrypted") }
            guard method == 0 || method == 8 else { throw fail("'\(name)' uses compression method \(method) (only stored and deflate are read)") }
            guard entry.size != 0xFFFF_FFFF, entry.compressedSize != 0xFFFF_FFFF, entry.headerOffset != 0xFFFF_FFFF else {
                throw fail("'\(name)' needs zip64, which is not supported")
            }
            guard entry.size <= Self.maxEntryBytes else { throw fail("'\(name)' is \(entry.size) bytes, more than \(Self.maxEntryBytes)") }
            // Deflate shrinks data at most about 1,032 times: a larger declared size is a lie, refused before allocating.
            guard entry.size <= entry.compressedSize * 1032 + 64, entry.compressedSize <= bytes.count else {
                throw fail("'\(name)' declares \(entry.size) bytes from \(entry.compressedSize) stored ones")
            }
            found.append(entry)
            at += 46 + nameLength + extraLength + commentLength
        }
        entries = found
    }

    /// The names of the entries, in the archive's order.
    public var names: [String] { entries.map(\.name) }

    /// The contents of the entry `name`, decompressed and checked; nil when there is no such entry.
    public func read(_ name: String) throws -> Data? {
        guard let entry = entries.first(where: { $0.name == name }) else { return nil }
        func fail(_ m: String) -> ZipError { ZipError("\(source): entry '\(name)' \(m)") }
        let b = bytes, at = entry.headerOffset
        guard at + 30 <= b.count, b[at] == 0x50, b[at + 1] == 0x4B, b[at + 2] == 3, b[at + 3] == 4 else {
            throw fail("has no local header where the central directory says")
        }
        let start = at + 30 + (Int(b[at + 26]) | Int(b[at + 27]) << 8) + (Int(b[at + 28]) | Int(b[at + 29]) << 8)
        guard start + entry.compressedSize <= b.count else { throw fail("runs past the end of the archive") }
        let stored = Array(b[start..<(start + entry.compressedSize)])
        let contents: [UInt8]
        if entry.method == 0 {
            guard stored.count == entry.size else { throw fail("is stored with \(stored.count) bytes but declares \(entry.size)") }
            contents = stored
        } else {
            contents = try Self.inflate(stored, size: entry.size, fail: fail)
        }
        guard Self.crc32(contents) == entry.crc else { throw fail("fails its CRC-32 check (the archive is damaged)") }
        return Data(contents)
    }

    /// Raw deflate data `input` that must inflate to exactly `size` bytes.
    private static func inflate(_ input: [UInt8], size: Int, fail: (String) -> ZipError) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size + 1)  // one spare byte: more output than declared is an error
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("could not be inflated (zlib did not start)")
        }
        defer { inflateEnd(&stream) }
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                stream.next_in = i.baseAddress; stream.avail_in = uInt(i.count)
                stream.next_out = o.baseAddress; stream.avail_out = uInt(o.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else {
            throw fail("does not inflate to its declared \(size) bytes (damaged deflate data)")
        }
        return Array(output.prefix(size))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(CZlib.crc32(0, $0.baseAddress, uInt($0.count))) }
    }
}

/// Writes a zip archive of stored (uncompressed) entries, as `torch.save` does; readers such as Python's `zipfile`
/// and PyTorch's accept it. Entry data starts on a 64-byte boundary (padding in the local header's extra field), the
/// alignment PyTorch gives its tensor records.
public struct ZipWriter {
    private var bytes: [UInt8] = []
    private var directory: [UInt8] = []
    private var count = 0

    public init() {}

    public mutating func add(_ name: String, _ data: Data) {
        let nameBytes = Array(name.utf8), contents = [UInt8](data)
        let crc = ZipReader.crc32(contents), offset = bytes.count
        let padding = (64 - (offset + 30 + nameBytes.count + 4) % 64) % 64
        let extra: [UInt8] = [0x46, 0x42] + le16(padding) + [UInt8](repeating: 0x5A, count: padding)
        // Local header: version 2.0, no flags, stored, DOS date 1980-01-01.
        bytes += le32(0x0403_4B50) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(Int(crc))
        bytes += le32(contents.count) + le32(contents.count) + le16(nameBytes.count) + le16(extra.count) + nameBytes + extra
        bytes += contents
        directory += le32(0x0201_4B50) + le16(20) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(Int(crc))
        directory += le32(contents.count) + le32(contents.count) + le16(nameBytes.count) + le16(0) + le16(0) + le16(0)
        directory += le16(0) + le32(0) + le32(offset) + nameBytes
        count += 1
    }

    /// The archive's bytes.
    public func finish() -> Data {
        let end = le32(0x0605_4B50) + le16(0) + le16(0) + le16(count) + le16(count) + le32(directory.count)
            + le32(bytes.count) + le16(0)
        return Data(bytes + directory + end)
    }

    private func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    private func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16(v >> 16 & 0xFFFF) }
}
