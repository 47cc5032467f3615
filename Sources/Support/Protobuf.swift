import Foundation

/// A protocol-buffers message being encoded: fields appended in the order written, in the wire format every protobuf
/// reader accepts (varints, 64-bit and 32-bit little-endian fixed values, length-delimited bytes, strings and nested
/// messages). Enough for the two formats rlbench writes without a protobuf library: TensorBoard's `Event` records
/// (`EventFile`, in Training) and ONNX models (`ONNXExport`, in Interop). Field numbers come from each format's
/// `.proto` file; a field left at its default is simply not written, as proto3 does.
public struct ProtobufWriter: Sendable {
    /// The encoded message.
    public private(set) var encoded: [UInt8] = []

    public init() {}

    /// The encoded message as `Data`.
    public var data: Data { Data(encoded) }

    /// An `int32`, `int64`, `uint64`, `bool` or enum field (a negative number takes ten bytes, as protobuf encodes it).
    public mutating func int(_ field: Int, _ value: Int64) {
        key(field, wireType: 0)
        varint(UInt64(bitPattern: value))
    }

    public mutating func int(_ field: Int, _ value: Int) { int(field, Int64(value)) }

    /// A `double` field.
    public mutating func double(_ field: Int, _ value: Double) {
        key(field, wireType: 1)
        littleEndian(value.bitPattern)
    }

    /// A `float` field.
    public mutating func float(_ field: Int, _ value: Float) {
        key(field, wireType: 5)
        littleEndian(value.bitPattern)
    }

    /// A `bytes` field.
    public mutating func bytes<Bytes: Collection>(_ field: Int, _ value: Bytes) where Bytes.Element == UInt8 {
        key(field, wireType: 2)
        varint(UInt64(value.count))
        encoded.append(contentsOf: value)
    }

    /// A `string` field (UTF-8).
    public mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    /// A nested message field.
    public mutating func message(_ field: Int, _ value: ProtobufWriter) { bytes(field, value.encoded) }

    /// A nested message field, built by `build`.
    public mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        build(&inner)
        message(field, inner)
    }

    /// A repeated `int64` field, packed (one length-delimited run of varints).
    public mutating func packedInts(_ field: Int, _ values: [Int64]) {
        var run = ProtobufWriter()
        for v in values { run.varint(UInt64(bitPattern: v)) }
        bytes(field, run.encoded)
    }

    /// A repeated `float` field, packed (one length-delimited run of little-endian floats).
    public mutating func packedFloats(_ field: Int, _ values: [Float]) {
        var run = ProtobufWriter()
        for v in values { run.littleEndian(v.bitPattern) }
        bytes(field, run.encoded)
    }

    private mutating func key(_ field: Int, wireType: UInt64) {
        precondition(field >= 1 && field < 1 << 29, "protobuf field numbers run from 1 to 2^29 - 1, got \(field)")
        varint(UInt64(field) << 3 | wireType)
    }

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            encoded.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        encoded.append(UInt8(v))
    }

    private mutating func littleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { encoded.append(contentsOf: $0) }
    }
}
