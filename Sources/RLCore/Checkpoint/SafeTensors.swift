import Foundation
import Support

/// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
/// an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to
/// `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets into the data buffer) plus an optional
/// `"__metadata__"` map of strings, then the data buffer, little-endian, row-major.
///
/// rlbench writes F32 tensors, sorted by name, header padded with spaces to a multiple of 8 bytes; it reads
/// F64, F32, F16, BF16, I64, I32, I16, I8, U8 and BOOL, converting to Float32. Loading validates everything
/// and reports each problem as a `SafeTensorsError` naming it.
public enum SafeTensors {
    /// The largest header accepted (as the reference implementation: 100 MB).
    public static let maxHeaderSize = 100_000_000

    /// Writes named tensors and metadata atomically (temporary file, then rename).
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: url)
    }

    /// The file's bytes for `tensors` and `metadata`.
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var seen = Set<String>()
        for t in tensors where !seen.insert(t.name).inserted { throw SafeTensorsError.duplicateName(t.name) }
        let sorted = tensors.sorted { $0.name < $1.name }
        var header: [String: Any] = [:]
        var offset = 0
        for (name, t) in sorted {
            let bytes = t.count * 4
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for (_, t) in sorted {
            t.data.withUnsafeBufferPointer { buffer in
                #if _endian(little)
                data.append(UnsafeBufferPointer(start: UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: UInt8.self),
                                                count: buffer.count * 4))
                #else
                for v in buffer { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
                #endif
            }
        }
        return data
    }

    /// Reads a file: tensors in file order (by offset) and the metadata.
    public static func read(from url: URL) throws -> (tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) {
        let data: Data
        do { data = try Files.data(url) } catch {
            throw SafeTensorsError.unreadable(url.path, error.localizedDescription)
        }
        return try naming(url) { try decode(data) }
    }

    /// Runs `body`, naming the file in what it throws (a file's problem means little without its name).
    private static func naming<T>(_ url: URL, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as SafeTensorsError {
            throw SafeTensorsError.unreadable(url.path, "not a valid safetensors file: \(error)")
        }
    }

    /// A header entry: what a tensor is, without its data.
    public struct Entry: Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
    }

    /// The tensors' names, dtypes and shapes (in file order) and the metadata, from a validated file.
    public static func header(of url: URL) throws -> (entries: [Entry], metadata: [String: String]) {
        let data: Data
        do { data = try Files.data(url) } catch { throw SafeTensorsError.unreadable(url.path, error.localizedDescription) }
        let parsed = try naming(url) { try parse(data) }
        return (parsed.entries.map { Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape) }, parsed.metadata)
    }

    /// Element sizes of the dtypes rlbench reads.
    static let dtypeSizes: [String: Int] = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                                            "I8": 1, "U8": 1, "BOOL": 1]

    /// Parses and validates a file's bytes.
    public static func decode(_ data: Data) throws -> (tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) {
        let parsed = try parse(data)
        let tensors = parsed.entries.map { e in
            (name: e.name, tensor: Tensor(convert(parsed.bytes, from: parsed.bufferStart + e.begin, count: e.shape.reduce(1, *), dtype: e.dtype),
                                          shape: e.shape))
        }
        return (tensors, parsed.metadata)
    }

    /// Validates the header and the layout of the data buffer.
    static func parse(_ data: Data) throws -> (entries: [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)],
                                                metadata: [String: String], bytes: [UInt8], bufferStart: Int) {
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw SafeTensorsError.truncated("the file has \(bytes.count) bytes, fewer than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderSize) else { throw SafeTensorsError.headerTooLarge(n) }
        guard n <= UInt64(bytes.count - 8) else {
            throw SafeTensorsError.truncated("the header claims \(n) bytes but only \(bytes.count - 8) follow")
        }
        let headerBytes = Array(bytes[8..<(8 + Int(n))])
        guard String(bytes: headerBytes, encoding: .utf8) != nil else { throw SafeTensorsError.badHeader("the header is not valid UTF-8") }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(headerBytes)) } catch {
            throw SafeTensorsError.badHeader("the header is not valid JSON")
        }
        guard let header = parsed as? [String: Any] else { throw SafeTensorsError.badHeader("the header is not a JSON object") }

        var metadata: [String: String] = [:]
        if let meta = header["__metadata__"] {
            guard let m = meta as? [String: Any] else { throw SafeTensorsError.badHeader("__metadata__ is not an object") }
            for (k, v) in m.sorted(by: { $0.key < $1.key }) {
                guard let s = v as? String else { throw SafeTensorsError.badHeader("__metadata__ value for '\(k)' is not a string") }
                metadata[k] = s
            }
        }

        let bufferStart = 8 + Int(n)
        let bufferSize = bytes.count - bufferStart
        var entries: [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)] = []
        // In name order, so that a file with several problems reports the same one every time.
        for (name, value) in header.sorted(by: { $0.key < $1.key }) where name != "__metadata__" {
            guard let entry = value as? [String: Any] else { throw SafeTensorsError.badEntry(name, "is not an object") }
            guard let dtype = entry["dtype"] as? String else { throw SafeTensorsError.badEntry(name, "has no dtype string") }
            guard let elementSize = dtypeSizes[dtype] else { throw SafeTensorsError.unknownDtype(name, dtype) }
            guard let rawShape = entry["shape"] as? [Any] else { throw SafeTensorsError.badEntry(name, "has no shape list") }
            let shape: [Int] = try rawShape.map {
                guard let num = SafeTensors.integer($0), num >= 0 else {
                    throw SafeTensorsError.badEntry(name, "has a shape entry that is not a non-negative integer: \($0)")
                }
                guard num < 1 << 50 else { throw SafeTensorsError.badEntry(name, "has an impossibly large dimension: \(num)") }
                return num
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let b = SafeTensors.integer(offsets[0]), let e = SafeTensors.integer(offsets[1]) else {
                throw SafeTensorsError.badEntry(name, "needs data_offsets [begin, end] of integers")
            }
            guard b >= 0, e >= b, e <= bufferSize else {
                throw SafeTensorsError.offsetsOutOfRange(name, b, e, bufferSize)
            }
            let (elements, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            let (byteCount, byteOverflow) = elements.multipliedReportingOverflow(by: elementSize)
            guard !overflow, !byteOverflow, byteCount == e - b else {
                throw SafeTensorsError.sizeMismatch(name, shape: shape, dtype: dtype, bytes: e - b)
            }
            entries.append((name, dtype, shape, b, e))
        }
        // The tensors must tile the buffer exactly: no overlap, no hole, nothing left over.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var cursor = 0
        for e in entries {
            if e.begin < cursor { throw SafeTensorsError.overlap(e.name) }
            if e.begin > cursor { throw SafeTensorsError.hole(at: cursor, before: e.name) }
            cursor = e.end
        }
        guard cursor == bufferSize else { throw SafeTensorsError.trailingBytes(bufferSize - cursor) }
        return (entries, metadata, bytes, bufferStart)
    }

    /// A JSON integer (not a boolean, not a fraction), as decoded by JSONSerialization.
    static func integer(_ value: Any) -> Int? {
        guard let n = value as? NSNumber, type(of: value) == NSNumber.self || !(value is Bool) else { return nil }
        let type = String(cString: n.objCType)
        guard type != "c", type != "B" else { return nil } // booleans
        let d = n.doubleValue
        guard d == d.rounded(), abs(d) < 9e15 else { return nil }
        return Int(d)
    }

    static func convert(_ bytes: [UInt8], from start: Int, count: Int, dtype: String) -> [Float] {
        func le<T: FixedWidthInteger>(_ i: Int, _ type: T.Type) -> T {
            var v: T = 0
            for b in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: bytes[start + i * MemoryLayout<T>.size + b]) << (8 * b) }
            return v
        }
        return (0..<count).map { i in
            switch dtype {
            case "F64": Float(Double(bitPattern: le(i, UInt64.self)))
            case "F32": Float(bitPattern: le(i, UInt32.self))
            case "F16": Float(Float16(bitPattern: le(i, UInt16.self)))
            case "BF16": Float(bitPattern: UInt32(le(i, UInt16.self)) << 16)
            case "I64": Float(le(i, Int64.self))
            case "I32": Float(le(i, Int32.self))
            case "I16": Float(le(i, Int16.self))
            case "I8": Float(Int8(bitPattern: bytes[start + i]))
            default: Float(bytes[start + i]) // U8, BOOL
            }
        }
    }
}

/// What can be wrong with a safetensors file or its fit to a model.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case unreadable(String, String)
    case truncated(String)
    case headerTooLarge(UInt64)
    case badHeader(String)
    case badEntry(String, String)
    case unknownDtype(String, String)
    case offsetsOutOfRange(String, Int, Int, Int)
    case sizeMismatch(String, shape: [Int], dtype: String, bytes: Int)
    case overlap(String)
    case hole(at: Int, before: String)
    case trailingBytes(Int)
    case duplicateName(String)
    case missingParameter(String)
    case unexpectedParameter(String)
    case shapeMismatch(String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case let .unreadable(path, why): "cannot read \(path): \(why)"
        case let .truncated(m): "truncated file: \(m)"
        case let .headerTooLarge(n): "header size \(n) exceeds the 100 MB limit"
        case let .badHeader(m): "bad header: \(m)"
        case let .badEntry(name, m): "tensor '\(name)' \(m)"
        case let .unknownDtype(name, d): "tensor '\(name)' has unknown dtype '\(d)'"
        case let .offsetsOutOfRange(name, b, e, size): "tensor '\(name)' data_offsets [\(b), \(e)] are outside the \(size)-byte data buffer"
        case let .sizeMismatch(name, shape, dtype, bytes): "tensor '\(name)': shape \(shape) of \(dtype) does not take \(bytes) bytes"
        case let .overlap(name): "tensor '\(name)' overlaps the previous tensor's data"
        case let .hole(at, name): "the data buffer has unused bytes at offset \(at), before tensor '\(name)'"
        case let .trailingBytes(n): "the data buffer has \(n) bytes after the last tensor"
        case let .duplicateName(name): "tensor name '\(name)' appears twice"
        case let .missingParameter(name): "the checkpoint has no tensor '\(name)' that the model needs"
        case let .unexpectedParameter(name): "the checkpoint has a tensor '\(name)' that the model does not have"
        case let .shapeMismatch(name, expected, found): "tensor '\(name)' has shape \(found), the model expects \(expected)"
        }
    }
}

extension Module {
    /// Copies values from named tensors (a checkpoint) into this module's parameters and buffers. Every name must
    /// match in both directions and every shape must agree; nothing is changed if anything is wrong.
    public func load(stateDict tensors: [(name: String, tensor: Tensor)]) throws {
        let own = stateDict()
        let given = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        let ownNames = Set(own.map(\.name))
        for (name, t) in own {
            guard let g = given[name] else { throw SafeTensorsError.missingParameter(name) }
            guard g.shape == t.shape else { throw SafeTensorsError.shapeMismatch(name, expected: t.shape, found: g.shape) }
        }
        if let extra = tensors.map(\.name).sorted().first(where: { !ownNames.contains($0) }) {
            throw SafeTensorsError.unexpectedParameter(extra)
        }
        for (name, t) in own { t.data = given[name]!.data }
    }
}
