import Foundation
import RLCore
import SeededRandom
import TestSupport
import Testing

/// Runs python3 with `script`; fails the test with a clear message if safetensors/numpy are missing.
func runPython(_ script: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let stderr = String(decoding: errors, as: UTF8.self)
    if stderr.contains("No module named") {
        Issue.record("Python packages missing (\(stderr.split(separator: "\n").last ?? "")): run scripts/setup --for-tests",
                     sourceLocation: sourceLocation)
    }
    #expect(process.terminationStatus == 0, "python failed: \(stderr)", sourceLocation: sourceLocation)
    return String(decoding: output, as: UTF8.self)
}

@Suite struct SafetensorsTests {
    let dir = Scratch.directory("safetensors")

    func sample() -> [(name: String, tensor: Tensor)] {
        var rng = SeededGenerator(seed: 1)
        return [(name: "0.weight", tensor: Tensor.normal([3, 4], using: &rng)), (name: "0.bias", tensor: Tensor([1, -2, 3])),
                (name: "scalar", tensor: Tensor(scalar: 7))]
    }

    @Test func roundTrip() throws {
        let file = dir.appendingPathComponent("a.safetensors")
        try SafeTensors.write(sample(), metadata: ["agent": "ppo", "step": "100"], to: file)
        let loaded = try SafeTensors.read(from: file)
        #expect(loaded.metadata == ["agent": "ppo", "step": "100"])
        let byName = Dictionary(loaded.tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (name, t) in sample() {
            #expect(byName[name]?.shape == t.shape)
            #expect(byName[name]?.data == t.data)
        }
        // The header length is a multiple of 8, as the reference writer pads it.
        let data = try Data(contentsOf: file)
        #expect(Int(data[0]) % 8 == 0)
    }

    /// A file whose header is `json` and whose data buffer has `bufferSize` zero bytes.
    func file(header json: String, bufferSize: Int = 0, claimedSize: UInt64? = nil) -> Data {
        var d = Data()
        let h = Data(json.utf8)
        withUnsafeBytes(of: (claimedSize ?? UInt64(h.count)).littleEndian) { d.append(contentsOf: $0) }
        d.append(h)
        d.append(Data(count: bufferSize))
        return d
    }

    @Test func rejectsEveryKindOfBadFile() {
        func expectError(_ data: Data, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try SafeTensors.decode(data)
                Issue.record("accepted a bad file (expected: \(fragment))", sourceLocation: sourceLocation)
            } catch {
                #expect("\(error)".contains(fragment), "error '\(error)' should mention '\(fragment)'", sourceLocation: sourceLocation)
            }
        }
        expectError(Data([1, 2, 3]), "truncated")
        expectError(file(header: "{}", claimedSize: 500), "truncated")
        expectError(file(header: "{}", claimedSize: 200_000_000), "100 MB")
        expectError(Data([2, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFE]), "UTF-8")
        expectError(file(header: "{not json"), "not valid JSON")
        expectError(file(header: "[1, 2]"), "not a JSON object")
        expectError(file(header: #"{"a": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}"#, bufferSize: 4), "unknown dtype")
        expectError(file(header: #"{"a": {"shape": [1], "data_offsets": [0, 4]}}"#, bufferSize: 4), "dtype")
        expectError(file(header: #"{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, bufferSize: 4), "shape entry")
        expectError(file(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}"#, bufferSize: 8), "outside")
        expectError(file(header: #"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, bufferSize: 8), "does not take")
        expectError(file(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, bufferSize: 8), "overlaps")
        expectError(file(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, bufferSize: 8), "unused bytes")
        expectError(file(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, bufferSize: 8), "after the last tensor")
        expectError(file(header: #"{"__metadata__": {"k": 1}}"#), "not a string")
        // A shape of [1] must be read as an integer, not as JSON `true`.
        #expect(throws: Never.self) {
            _ = try SafeTensors.decode(file(header: #"{"a": {"dtype": "F32", "shape": [1, 1], "data_offsets": [0, 4]}}"#, bufferSize: 4))
        }
        expectError(file(header: #"{"a": {"dtype": "F32", "shape": [true], "data_offsets": [0, 4]}}"#, bufferSize: 4), "shape entry")
    }

    @Test func validatesAgainstAModel() throws {
        var rng = SeededGenerator(seed: 2)
        let net = MLP(sizes: [2, 3, 1], using: &rng)
        let state = net.stateDict()
        try net.load(stateDict: state)
        #expect(throws: SafeTensorsError.missingParameter("2.bias")) { try net.load(stateDict: Array(state.dropLast())) }
        #expect(throws: SafeTensorsError.unexpectedParameter("extra")) {
            try net.load(stateDict: state + [(name: "extra", tensor: Tensor(scalar: 1))])
        }
        var wrong = state
        wrong[0] = (name: "0.weight", tensor: Tensor.zeros([2, 2]))
        #expect(throws: SafeTensorsError.shapeMismatch("0.weight", expected: [3, 2], found: [2, 2])) { try net.load(stateDict: wrong) }
    }

    @Test func interoperatesWithPython() throws {
        let ours = dir.appendingPathComponent("ours.safetensors")
        try SafeTensors.write(sample(), metadata: ["format": "rlbench"], to: ours)
        let report = try runPython("""
        import json, numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file, save_file
        t = load_file('\(ours.path)')
        with safe_open('\(ours.path)', framework='np') as f: meta = f.metadata()
        print(json.dumps({k: [list(v.shape), str(v.dtype), [float(x) for x in v.ravel()]] for k, v in t.items()} | {'__meta': meta}))
        save_file({'w': np.arange(6, dtype=np.float64).reshape(2, 3), 'i': np.array([3, -4], dtype=np.int64),
                   'h': np.array([0.5, 2], dtype=np.float16)}, '\(dir.path)/theirs.safetensors', metadata={'from': 'python'})
        """)
        let decoded = try JSONSerialization.jsonObject(with: Data(report.utf8)) as! [String: Any]
        #expect((decoded["__meta"] as? [String: String]) == ["format": "rlbench"])
        for (name, t) in sample() {
            let entry = decoded[name] as! [Any]
            #expect((entry[0] as! [Int]) == t.shape)
            #expect((entry[1] as! String) == "float32")
            #expect((entry[2] as! [Double]).map { Float($0) } == t.data)
        }
        let theirs = try SafeTensors.read(from: dir.appendingPathComponent("theirs.safetensors"))
        let byName = Dictionary(theirs.tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        #expect(theirs.metadata == ["from": "python"])
        #expect(byName["w"]?.shape == [2, 3] && byName["w"]?.data == [0, 1, 2, 3, 4, 5])
        #expect(byName["i"]?.data == [3, -4])
        #expect(byName["h"]?.data == [0.5, 2])
    }

    @Test(.enabled(if: getuid() != 0, "root may write into a read-only folder"))
    func failedWriteKeepsThePreviousCheckpoint() throws {
        let file = dir.appendingPathComponent("keep.safetensors")
        try SafeTensors.write(sample(), to: file)
        // Make the directory read-only: the temporary file cannot be created, the write fails, the old file stays.
        chmod(dir.path, 0o500)
        defer { chmod(dir.path, 0o700) }
        #expect { try SafeTensors.write([], to: file) } throws: { "\($0)".contains("keep.safetensors") }
        #expect(try SafeTensors.read(from: file).tensors.count == 3)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty)
    }
}
