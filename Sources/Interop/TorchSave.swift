import Foundation
import RLCore

/// PyTorch's `torch.save` file format (a zip): `<archive>/data.pkl` (the pickled object, each tensor a call of
/// `torch._utils._rebuild_tensor_v2` whose storage is a persistent id `('storage', torch.FloatStorage, key, 'cpu',
/// numel)`), `<archive>/data/<key>` (each storage's raw little-endian bytes), `<archive>/byteorder` and
/// `<archive>/version`. Only float32 CPU tensors are read and written.
public enum TorchSave {
    static let rebuildTensor = "torch._utils._rebuild_tensor_v2"
    static let floatStorage = (module: "torch", name: "FloatStorage")

    /// The globals a state dict's pickle may name.
    public static let allowedGlobals: Set<String> = [PickleReader.orderedDict, rebuildTensor, "torch._utils._rebuild_parameter",
                                                     "torch.FloatStorage", "torch.DoubleStorage", "torch.LongStorage",
                                                     "torch.IntStorage", "torch.BoolStorage", "torch.HalfStorage"]

    /// A tensor to write: `value` refers to it where the pickled object holds it.
    public static func tensor(_ index: Int, shape: [Int]) -> PickleValue {
        var strides = [Int](repeating: 1, count: shape.count)
        for i in shape.indices.dropLast().reversed() { strides[i] = strides[i + 1] * shape[i + 1] }
        let numel = shape.reduce(1, *)
        let storage = PickleValue.tuple([.string("storage"), .global(module: floatStorage.module, name: floatStorage.name),
                                         .string("\(index)"), .string("cpu"), .int(numel)])
        return .object(PickleObject(callable: .global(module: "torch._utils", name: "_rebuild_tensor_v2"), arguments: [
            .persistent(storage), .int(0), .tuple(shape.map { .int($0) }), .tuple(strides.map { .int($0) }), .bool(false),
            .object(PickleObject(callable: .global(module: "collections", name: "OrderedDict"), arguments: [])),
        ]))
    }

    /// The file bytes of `object`, whose tensors (made with `tensor(_:shape:)`, index i) hold `storages[i]`.
    public static func encode(_ object: PickleValue, storages: [[Float]]) -> Data {
        var zip = ZipWriter()
        zip.add("archive/data.pkl", PickleWriter.encode(object))
        zip.add("archive/byteorder", Data("little".utf8))
        for (i, values) in storages.enumerated() {
            zip.add("archive/data/\(i)", values.withUnsafeBufferPointer { Data(buffer: $0) })
        }
        zip.add("archive/version", Data("3\n".utf8))
        return zip.finish()
    }

    /// The file bytes of a state dict: `(name, tensor)` pairs in order (a dict; `load_state_dict` takes either).
    public static func encode(stateDict: [(name: String, tensor: Tensor)]) -> Data {
        let entries = stateDict.enumerated().map { (key: PickleValue.string($1.name), value: tensor($0, shape: $1.tensor.shape)) }
        return encode(.dict(PickleDict(entries)), storages: stateDict.map(\.tensor.data))
    }

    /// Reads a state dict (names to float32 tensors, in the file's order) from `torch.save` file bytes.
    public static func readStateDict(_ data: Data, source: String) throws -> [(name: String, tensor: Tensor)] {
        let zip = try ZipReader(data, source: source)
        guard let pickleName = zip.names.first(where: { $0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2 }) else {
            throw ZipError("\(source) is not a torch.save file: it has no <archive>/data.pkl")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = try zip.read(prefix + "byteorder"), String(decoding: order, as: UTF8.self) != "little" {
            throw ZipError("\(source): byte order '\(String(decoding: order, as: UTF8.self))' is not supported (only little)")
        }
        let root = try PickleReader(allowedGlobals: allowedGlobals).read(try zip.read(pickleName)!, source: "\(source) \(pickleName)")
        guard case let .dict(dict) = root else { throw PickleError("\(source): holds \(root), not a state dict") }
        return try dict.entries.map { key, value in
            guard let name = key.string else { throw PickleError("\(source): a state dict key is \(key), not a string") }
            return (name, try readTensor(value, name: name, archive: zip, prefix: prefix, source: source))
        }
    }

    private static func readTensor(_ value: PickleValue, name: String, archive: ZipReader, prefix: String, source: String) throws -> Tensor {
        func fail(_ m: String) -> PickleError { PickleError("\(source): tensor '\(name)' \(m)") }
        var value = value
        // nn.Parameter: _rebuild_parameter(tensor, requires_grad, hooks).
        if let o = value.object, o.callableName == "torch._utils._rebuild_parameter", let inner = o.arguments.first { value = inner }
        guard let o = value.object, o.callableName == rebuildTensor, o.arguments.count >= 4,
              case let .persistent(id) = o.arguments[0], let storage = id.tuple, storage.count == 5,
              storage[0].string == "storage", case let .global(_, storageType) = storage[1], let key = storage[2].string,
              let numel = storage[4].int, let offset = o.arguments[1].int,
              let shape = o.arguments[2].tuple?.compactMap(\.int), let strides = o.arguments[3].tuple?.compactMap(\.int),
              shape.count == o.arguments[2].tuple?.count, strides.count == shape.count
        else { throw fail("is \(value), not a tensor torch.save writes") }
        guard storageType == floatStorage.name else { throw fail("is a \(storageType) tensor; only float32 (FloatStorage) is read") }
        guard shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 31 }), strides.allSatisfy({ $0 >= 0 }), offset >= 0, numel >= 0,
              !key.contains("/"), !key.contains("..") else { throw fail("has a bad shape \(shape), strides \(strides) or storage") }
        guard let bytes = try archive.read(prefix + "data/" + key) else { throw fail("has no storage record data/\(key)") }
        guard bytes.count == numel * 4 else { throw fail("storage data/\(key) is \(bytes.count) bytes, not \(numel) floats") }
        // The elements and the last storage index they reach, with every product checked for overflow.
        var count = 1, last = offset
        for (size, stride) in zip(shape, strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: size)
            let (reach, o2) = max(size - 1, 0).multipliedReportingOverflow(by: stride)
            let (l, o3) = last.addingReportingOverflow(reach)
            guard !o1, !o2, !o3 else { throw fail("has a shape \(shape) and strides \(strides) too large") }
            count = c; last = l
        }
        guard count == 0 || (last < numel && count <= numel) else { throw fail("reaches past its storage of \(numel) floats") }
        let storageValues = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        var values = [Float](), index = [Int](repeating: 0, count: shape.count)
        values.reserveCapacity(count)
        for _ in 0..<count {
            values.append(storageValues[offset + zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 }])
            for d in index.indices.reversed() { index[d] += 1; if index[d] < shape[d] { break }; index[d] = 0 }
        }
        return Tensor(values, shape: shape)
    }
}
