import Foundation
import RLCore
import Testing

/// One recorded PyTorch case from `../shared/fixtures/torch` (format: that folder's README).
struct TorchFixture {
    /// A recorded tensor: shape and row-major values (float64, int64 and bool all read as Double).
    struct Value {
        let shape: [Int]
        let dtype: String
        let data: [Double]
        /// The values as a Float32 tensor.
        var tensor: Tensor { Tensor(data.map { Float($0) }, shape: shape) }
        var ints: [Int] { data.map { Int($0) } }
    }

    let file: URL
    let op: String
    let params: [String: Any]
    let inputs: [String: Value]
    let outputs: [String: Value]
    let grads: [String: Value]
    let upstream: [String: Value]

    var name: String { file.lastPathComponent }

    init(file: URL) throws {
        self.file = file
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: file))
        guard let root = json as? [String: Any] else { throw FixtureError.malformed(file, "top level is not an object") }
        func values(_ key: String) throws -> [String: Value] {
            guard let dict = root[key] as? [String: Any] else { return [:] }
            var out: [String: Value] = [:]
            for (name, raw) in dict {
                guard let t = raw as? [String: Any], let shape = t["shape"] as? [Int], let dtype = t["dtype"] as? String,
                      let data = t["data"] as? [Any] else { throw FixtureError.malformed(file, "\(key).\(name) is not a tensor") }
                let numbers: [Double] = try data.map {
                    if let b = $0 as? Bool, dtype == "bool" { return b ? 1 : 0 }
                    if let n = $0 as? NSNumber { return n.doubleValue }
                    throw FixtureError.malformed(file, "\(key).\(name) holds a non-number")
                }
                out[name] = Value(shape: shape, dtype: dtype, data: numbers)
            }
            return out
        }
        op = root["op"] as? String ?? ""
        params = root["params"] as? [String: Any] ?? [:]
        inputs = try values("inputs")
        outputs = try values("outputs")
        grads = try values("grads")
        upstream = try values("upstream")
    }

    func input(_ key: String) throws -> Value {
        guard let v = inputs[key] else { throw FixtureError.malformed(file, "no input '\(key)'") }
        return v
    }

    func output(_ key: String) throws -> Value {
        guard let v = outputs[key] else { throw FixtureError.malformed(file, "no output '\(key)'") }
        return v
    }

    func param(_ key: String) -> Double? { (params[key] as? NSNumber)?.doubleValue }

    /// The fixture folders: `../shared/fixtures/torch` beside the checkout, plus `$RLBENCH_TORCH_FIXTURES` if set.
    static func directories() -> [URL] {
        var dirs = [packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/torch")]
        if let extra = ProcessInfo.processInfo.environment["RLBENCH_TORCH_FIXTURES"], !extra.isEmpty {
            dirs.append(URL(fileURLWithPath: extra))
        }
        return dirs
    }

    /// Every fixture file whose name starts with one of `prefixes` (e.g. "activations."), from all directories.
    static func all(prefixes: [String]) throws -> [TorchFixture] {
        var found: [TorchFixture] = []
        for dir in directories() {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else {
                throw FixtureError.missingDirectory(dir)
            }
            for name in names.sorted() where name.hasSuffix(".json") && prefixes.contains(where: { name.hasPrefix($0) }) {
                found.append(try TorchFixture(file: dir.appendingPathComponent(name)))
            }
        }
        return found
    }

    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

enum FixtureError: Error, CustomStringConvertible {
    case malformed(URL, String)
    case missingDirectory(URL)
    var description: String {
        switch self {
        case let .malformed(f, m): "\(f.lastPathComponent): \(m)"
        case let .missingDirectory(d): "fixture folder \(d.path) is missing (the checkout needs ../shared beside it)"
        }
    }
}

/// Expects `actual` to match `expected` element-wise within an absolute + relative tolerance.
func expectClose(_ actual: [Float], _ expected: [Double], tol: Double = 1e-4, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)",
            sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    var worst = 0.0, at = 0
    for i in actual.indices {
        let err = abs(Double(actual[i]) - expected[i]) / (1 + abs(expected[i]))
        if !(err <= worst) { worst = err; at = i }
    }
    #expect(worst <= tol, "\(what): element \(at) is \(actual[at]), expected \(expected[at]) (rel err \(worst))",
            sourceLocation: sourceLocation)
}
