import Environments
import Foundation
import RLCore
import Support
import Training

/// `rlbench export CHECKPOINT --onnx FILE`: the network a checkpoint acts or samples with, as an ONNX model (opset 17)
/// that onnxruntime and other ONNX tools run without rlbench. It is built from what the checkpoint says about itself
/// (docs/checkpoints.md): the layer list and the tensors it names, so no model is known by name here.
///
/// - An agent: input `observation` `[N, observation size]` (a tabular agent's: the state's index, as its
///   observations hold it). The observation normalization comes first when the checkpoint has one, then the `policy`
///   layers. `action: argmax` gives the outputs `scores` `[N, actions]` (an actor-critic's logits, DQN's Q-values, a
///   tabular agent's Q-table row) and `action` `[N]` (int64, their argmax: the greedy action rlbench takes);
///   `action: gaussian_mean` gives `mean` `[N, d]` and `action` `[N, d]`, the mean clipped to the action bounds, as
///   rlbench acts deterministically. A policy that starts with an LSTM (`recurrent-ppo`) also takes its state, `h` and
///   `c` `[layers, N, hidden]`, and gives the state after the step, `h_next` and `c_next`, to feed to the next step.
/// - A generative model: input `noise` `[N, latent size]` (standard normal, as `rlbench sample` draws it) and, when
///   conditional, `label` `[N]` (int64, 0 ..< classes), one-hot and joined to the first linear layer's input; the
///   `generator` layers; output `samples` `[N] + sample_shape` (images in [0, 1], or 2-D points).
public enum ONNXExport {
    /// The ONNX operator set the models use, and the IR version that goes with it.
    public static let opset = 17
    static let irVersion = 8

    /// What an exported model takes and gives, for messages: `observation [N, 4] → scores [N, 2], action [N]`.
    public struct Signature: Sendable, CustomStringConvertible {
        public var inputs: [(name: String, shape: [Int])]
        public var outputs: [(name: String, shape: [Int])]

        public var description: String {
            func list(_ values: [(name: String, shape: [Int])]) -> String {
                values.map { "\($0.name) [" + $0.shape.map { $0 < 0 ? "N" : String($0) }.joined(separator: ", ") + "]" }
                    .joined(separator: ", ")
            }
            return list(inputs) + " → " + list(outputs)
        }
    }

    /// Writes the ONNX model of the checkpoint at `checkpoint` to `output` (atomically); returns its signature.
    @discardableResult
    public static func write(checkpoint: URL, to output: URL) throws -> Signature {
        let (model, signature) = try model(checkpoint: checkpoint)
        try AtomicFile.write(model, to: output)
        return signature
    }

    /// The ONNX model (the bytes of a `ModelProto`) of the checkpoint at `checkpoint`, and its signature.
    public static func model(checkpoint: URL) throws -> (model: Data, signature: Signature) {
        let source = checkpoint.path
        let loaded: (tensors: [(name: String, tensor: Tensor)], metadata: [String: String])
        do { loaded = try SafeTensors.read(from: checkpoint) } catch {
            throw ONNXExportError("\(source) is not a checkpoint rlbench can read: \(error)")
        }
        let meta = CheckpointMetadata(loaded.metadata)
        var graph = ONNXGraph(tensors: loaded.tensors, source: source)
        switch meta.kind {
        case .agent?:
            try meta.validated(as: .agent, source: source)
            try agentGraph(meta, &graph)
        case .generative?:
            try meta.validated(as: .generative, source: source)
            try generatorGraph(meta, &graph)
        case .classifier?:
            throw ONNXExportError("\(source) is a classifier checkpoint; --onnx exports agents and generative models")
        case nil:
            try meta.validated(source: source)  // names what is missing or unknown
            throw ONNXExportError("\(source) is not an rlbench checkpoint")
        }
        var properties = ["rlbench_format": meta[.format] ?? ""]
        for key in ["agent", "env", "action", "model", "data", "step"] { properties[key] = loaded.metadata[key] }
        return (graph.model(properties: properties), graph.signature)
    }

    // MARK: Agents

    private static func agentGraph(_ meta: CheckpointMetadata, _ graph: inout ONNXGraph) throws {
        let envID = try meta.value(.env)
        let environment = try Registry.make(envID, options: meta[.envOptions] ?? [:])
        let observationSize = environment.observationSpace.flatCount
        var x = graph.input("observation", .float, [-1, observationSize], doc: "observations, one row each, as rlbench's environments give them")
        var features = [observationSize]
        if let observation = meta[.observation].flatMap(jsonObject), observation["type"] as? String == "normalize" {
            x = try normalized(x, observation, &graph)
        }
        let policy = try meta.value(.policy)
        let scores: String
        var memory: LSTMState?
        if let layers = jsonLayers(policy) {
            switch layers.first?["type"] as? String {
            case "table":
                guard layers.count == 1, let table = layers[0]["tensor"] as? String else {
                    throw graph.fail("a table policy is one layer with a \"tensor\"")
                }
                scores = try tableLookup(x, table: table, states: environment.observationSpace.discreteCount, &graph)
                features = [graph.shape(of: table)?.last ?? 0]
            case "lstm":
                let (output, state) = try lstmStep(layers[0], x, features: &features, &graph)
                memory = state
                scores = try graph.apply(Array(layers.dropFirst()), to: output, features: &features)
            default:
                scores = try graph.apply(layers, to: x, features: &features)
            }
        } else {
            scores = try duelingHead(policy, x, features: &features, &graph)
        }
        guard features.count == 1 else { throw graph.fail("the policy's output is \(features), not a vector per observation") }
        switch try meta.value(.action) {
        case "argmax":
            guard case let .discrete(n) = environment.actionSpace, n == features[0] else {
                throw graph.fail("the policy gives \(features[0]) scores, \(envID) has the actions \(environment.actionSpace)")
            }
            graph.output(scores, as: "scores", .float, [-1, n], doc: "the scores the action is the argmax of: an actor-critic's logits, DQN's Q-values, a tabular agent's Q-table row")
            let action = graph.node("ArgMax", [scores], [.int("axis", 1), .int("keepdims", 0)])
            graph.output(action, as: "action", .int64, [-1], doc: "the greedy action (the first of equal scores)")
        default:  // gaussian_mean
            guard case let .box(low, high, _) = environment.actionSpace, low.count == features[0] else {
                throw graph.fail("the policy gives \(features[0]) means, \(envID) has the actions \(environment.actionSpace)")
            }
            graph.output(scores, as: "mean", .float, [-1, low.count], doc: "the Gaussian policy's mean action")
            let raised = graph.node("Max", [scores, graph.constant(low, shape: [low.count])])
            let action = graph.node("Min", [raised, graph.constant(high, shape: [high.count])])
            graph.output(action, as: "action", .float, [-1, low.count], doc: "the mean clipped to the action bounds: the action rlbench takes deterministically")
        }
        if let memory {
            graph.output(memory.h, as: "h_next", .float, memory.shape, doc: "the LSTM's hidden state after this step: the next step's h")
            graph.output(memory.c, as: "c_next", .float, memory.shape, doc: "the LSTM's cell state after this step: the next step's c")
        }
    }

    /// The new state of an exported LSTM (the names of its values) and its shape `[layers, N, hidden]`.
    private struct LSTMState { var h, c: String, shape: [Int] }

    /// One step of a policy's first layer, a `torch.nn.LSTM`, for a batch of observations `x`: the graph inputs `h`
    /// and `c` (`[layers, N, hidden]`, zeros at an episode's start) are its state before the step, and each layer is
    /// one ONNX `LSTM` node on a sequence of length 1. ONNX orders the gate blocks of the weights and biases i, o, f, c
    /// where torch orders them i, f, g, o, so the weights are reordered into new initializers.
    private static func lstmStep(_ layer: [String: Any], _ x: String, features: inout [Int],
                                 _ graph: inout ONNXGraph) throws -> (output: String, state: LSTMState) {
        guard let layers = (layer["num_layers"] as? NSNumber)?.intValue, let hidden = (layer["hidden_size"] as? NSNumber)?.intValue,
              let inputSize = (layer["input_size"] as? NSNumber)?.intValue, layers >= 1, hidden >= 1 else {
            throw graph.fail("layer 0 (lstm) needs \"input_size\", \"hidden_size\" and \"num_layers\": positive numbers")
        }
        guard features == [inputSize] else {
            throw graph.fail("layer 0 (lstm) takes \(inputSize) inputs, the observations have \(features) values")
        }
        if layer["gates"] != nil, layer["gates"] as? [String] != ["i", "f", "g", "o"] {
            throw graph.fail("layer 0 (lstm): \"gates\" must be [\"i\", \"f\", \"g\", \"o\"] (torch's order, which the export reorders to ONNX's)")
        }
        let stateShape = [layers, -1, hidden]
        let h0 = graph.input("h", .float, stateShape, doc: "the LSTM's hidden state before this step (zeros at an episode's start)")
        let c0 = graph.input("c", .float, stateShape, doc: "the LSTM's cell state before this step (zeros at an episode's start)")
        /// A torch weight or bias `[4·hidden, …]` with its gate blocks i, f, g, o reordered to ONNX's i, o, f, c.
        func reordered(_ key: String, columns: Int) throws -> [Float] {
            guard let name = layer[key] as? String else { throw graph.fail("layer 0 (lstm) needs \"\(key)\": a tensor name") }
            let expected = columns == 1 ? [4 * hidden] : [4 * hidden, columns]
            guard graph.shape(of: name) == expected else {
                throw graph.fail("the tensor '\(name)' is \(graph.shape(of: name).map { "\($0)" } ?? "missing"), the LSTM needs \(expected)")
            }
            let values = try graph.values(of: name), block = hidden * columns
            return [0, 3, 1, 2].flatMap { values[($0 * block)..<(($0 + 1) * block)] }
        }
        var y = graph.node("Unsqueeze", [x, graph.constant(int64: [0], shape: [1])])  // a sequence of one step
        var hs: [String] = [], cs: [String] = []
        for l in 0..<layers {
            let inputs = l == 0 ? inputSize : hidden
            let w = graph.constant(try reordered("weight_ih_l\(l)", columns: inputs), shape: [1, 4 * hidden, inputs])
            let r = graph.constant(try reordered("weight_hh_l\(l)", columns: hidden), shape: [1, 4 * hidden, hidden])
            var bias = ""
            if layer["bias_ih_l\(l)"] != nil || layer["bias_hh_l\(l)"] != nil {
                bias = graph.constant(try reordered("bias_ih_l\(l)", columns: 1) + reordered("bias_hh_l\(l)", columns: 1),
                                      shape: [1, 8 * hidden])
            }
            let index = graph.constant(int64: [Int64(l)], shape: [1])
            let initial = [h0, c0].map { graph.node("Gather", [$0, index], [.int("axis", 0)]) }
            let out = graph.node("LSTM", [y, w, r, bias, "", initial[0], initial[1]], [.int("hidden_size", hidden)], outputs: 3)
            // Y_h [1, N, hidden] is also the next layer's sequence of one step.
            (y, hs, cs) = (out[1], hs + [out[1]], cs + [out[2]])
        }
        func stacked(_ values: [String]) -> String { values.count == 1 ? values[0] : graph.node("Concat", values, [.int("axis", 0)]) }
        features = [hidden]
        let output = graph.node("Squeeze", [y, graph.constant(int64: [0], shape: [1])])
        return (output, LSTMState(h: stacked(hs), c: stacked(cs), shape: stateShape))
    }

    /// `clip((x − mean) / sqrt(var + epsilon), −clip, clip)`, SB3's VecNormalize with the checkpoint's statistics.
    private static func normalized(_ x: String, _ observation: [String: Any], _ graph: inout ONNXGraph) throws -> String {
        guard let meanName = observation["mean"] as? String, let varName = observation["var"] as? String,
              let clip = (observation["clip"] as? NSNumber)?.floatValue, let epsilon = (observation["epsilon"] as? NSNumber)?.doubleValue
        else { throw graph.fail("the observation normalization needs mean, var, clip and epsilon") }
        let variance = try graph.values(of: varName)
        let std = variance.map { Float((Double($0) + epsilon).squareRoot()) }
        let centred = graph.node("Sub", [x, try graph.tensor(meanName)])
        let scaled = graph.node("Div", [centred, graph.constant(std, shape: [std.count])])
        return graph.node("Clip", [scaled, graph.constant([-clip], shape: []), graph.constant([clip], shape: [])])
    }

    /// A tabular agent's Q-table row of each observation (a state's index).
    private static func tableLookup(_ x: String, table: String, states: Int?, _ graph: inout ONNXGraph) throws -> String {
        guard let shape = graph.shape(of: table), shape.count == 2, states == nil || states == shape[0] else {
            throw graph.fail("the table '\(table)' is not [states, actions] for the environment's \(states ?? 0) states")
        }
        let index = graph.node("Cast", [x], [.int("to", ONNXGraph.ElementType.int64.rawValue)])
        let flat = graph.node("Reshape", [index, graph.constant(int64: [-1], shape: [1])])
        return graph.node("Gather", [try graph.tensor(table), flat], [.int("axis", 0)])
    }

    /// DQN's dueling head: Q = V + A − mean(A), from the trunk's features.
    private static func duelingHead(_ policy: String, _ x: String, features: inout [Int], _ graph: inout ONNXGraph) throws -> String {
        guard let head = jsonObject(policy), let trunk = (head["trunk"] as? [Any]).flatMap(layerList),
              let value = head["value"] as? String, let advantage = head["advantage"] as? String else {
            throw graph.fail("the policy is neither a layer list nor a dueling head")
        }
        let h = try graph.apply(trunk, to: x, features: &features)
        var valueFeatures = features, advantageFeatures = features
        let v = try graph.apply([["type": "linear", "weight": "\(value).weight", "bias": "\(value).bias"]], to: h, features: &valueFeatures)
        let a = try graph.apply([["type": "linear", "weight": "\(advantage).weight", "bias": "\(advantage).bias"]], to: h,
                                features: &advantageFeatures)
        features = advantageFeatures
        let mean = graph.node("ReduceMean", [a], [.ints("axes", [1]), .int("keepdims", 1)])
        return graph.node("Sub", [graph.node("Add", [v, a]), mean])
    }

    // MARK: Generative models

    private static func generatorGraph(_ meta: CheckpointMetadata, _ graph: inout ONNXGraph) throws {
        let latent = try meta.value(.latentSize), sampleShape = try meta.value(.sampleShape)
        guard let layers = jsonLayers(try meta.value(.generator)) else { throw graph.fail("the generator is not a layer list") }
        let noise = graph.input("noise", .float, [-1, latent], doc: "standard-normal noise, one row per sample")
        var label: (oneHot: String, classes: Int)?
        if try meta.value(.conditional) {
            let classes = try meta.value(.classes)
            let input = graph.input("label", .int64, [-1], doc: "the class of each sample, 0 ..< \(classes)")
            let oneHot = graph.node("OneHot", [input, graph.constant(int64: [Int64(classes)], shape: [1]), graph.constant([0, 1], shape: [2])],
                                    [.int("axis", -1)])
            label = (oneHot, classes)
        }
        var features = [latent]
        let output = try graph.apply(layers, to: noise, features: &features, joiningAtFirstLinear: label)
        guard features.reduce(1, *) == sampleShape.reduce(1, *) else {
            throw graph.fail("the generator gives \(features) per sample, sample_shape is \(sampleShape)")
        }
        let samples = graph.node("Reshape", [output, graph.constant(int64: [-1] + sampleShape.map(Int64.init), shape: [sampleShape.count + 1])])
        graph.output(samples, as: "samples", .float, [-1] + sampleShape, doc: "the samples: images in [0, 1] (NCHW), or points")
    }

    // MARK: JSON

    static func jsonObject(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    static func jsonLayers(_ text: String) -> [[String: Any]]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))).flatMap(layerList)
    }

    static func layerList(_ value: Any) -> [[String: Any]]? {
        guard let list = value as? [Any] else { return nil }
        let layers = list.compactMap { $0 as? [String: Any] }
        return layers.count == list.count ? layers : nil
    }
}

/// An export that cannot be done: the message names the checkpoint and the problem.
public struct ONNXExportError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

// MARK: The graph

/// An ONNX graph being built from a checkpoint: nodes in order, the checkpoint tensors they use (as initializers,
/// under their checkpoint names), constants, and the inputs and outputs.
struct ONNXGraph {
    enum ElementType: Int { case float = 1, int64 = 7 }

    enum Attribute {
        case int(String, Int), float(String, Float), ints(String, [Int]), string(String, String)
    }

    private let tensors: [String: Tensor]
    private let source: String
    private var nodes: [ProtobufWriter] = []
    private var initializers: [ProtobufWriter] = []
    private var initialized: Set<String> = []
    private var inputs: [ProtobufWriter] = [], outputs: [ProtobufWriter] = []
    private(set) var signature = ONNXExport.Signature(inputs: [], outputs: [])
    private var counter = 0

    init(tensors: [(name: String, tensor: Tensor)], source: String) {
        self.tensors = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        self.source = source
    }

    /// An error naming the checkpoint.
    func fail(_ problem: String) -> ONNXExportError { ONNXExportError("\(source): \(problem)") }

    func shape(of name: String) -> [Int]? { tensors[name]?.shape }

    func values(of name: String) throws -> [Float] {
        guard let t = tensors[name] else { throw fail("the checkpoint has no tensor '\(name)'") }
        return t.data
    }

    /// The checkpoint tensor `name` as an initializer (added once), with its shape checked when `shape` is given.
    mutating func tensor(_ name: String, shape expected: [Int]? = nil) throws -> String {
        guard let t = tensors[name] else { throw fail("the checkpoint has no tensor '\(name)'") }
        if let expected, t.shape != expected { throw fail("the tensor '\(name)' is \(t.shape), the layer needs \(expected)") }
        if initialized.insert(name).inserted { initializers.append(Self.tensorProto(name, t.data, shape: t.shape)) }
        return name
    }

    /// A float constant.
    mutating func constant(_ values: [Float], shape: [Int]) -> String {
        let name = fresh("const")
        initializers.append(Self.tensorProto(name, values, shape: shape))
        return name
    }

    /// An int64 constant (a shape, an index).
    mutating func constant(int64 values: [Int64], shape: [Int]) -> String {
        let name = fresh("const")
        var t = ProtobufWriter()
        t.packedInts(1, shape.map(Int64.init))
        t.int(2, ElementType.int64.rawValue)
        t.string(8, name)
        var raw = [UInt8]()
        for v in values { withUnsafeBytes(of: v.littleEndian) { raw += $0 } }
        t.bytes(9, raw)
        initializers.append(t)
        return name
    }

    /// Adds a node; returns the name of its (only) output.
    mutating func node(_ op: String, _ inputs: [String], _ attributes: [Attribute] = []) -> String {
        node(op, inputs, attributes, outputs: 1)[0]
    }

    /// Adds a node with `outputs` outputs (ONNX's `LSTM` gives Y, Y_h, Y_c); returns their names. An input named ""
    /// is an optional input left out.
    mutating func node(_ op: String, _ inputs: [String], _ attributes: [Attribute] = [], outputs count: Int) -> [String] {
        let stem = fresh(op.lowercased())
        let outputs = count == 1 ? [stem] : (0..<count).map { "\(stem)_\($0)" }
        var n = ProtobufWriter()
        for input in inputs { n.string(1, input) }
        for output in outputs { n.string(2, output) }
        n.string(3, stem)
        n.string(4, op)
        for attribute in attributes {
            n.message(5) { a in
                switch attribute {
                case let .int(name, v): a.string(1, name); a.int(20, 2); a.int(3, v)
                case let .float(name, v): a.string(1, name); a.int(20, 1); a.float(2, v)
                case let .ints(name, v): a.string(1, name); a.int(20, 7); a.packedInts(8, v.map(Int64.init))
                case let .string(name, v): a.string(1, name); a.int(20, 3); a.bytes(4, Array(v.utf8))
                }
            }
        }
        nodes.append(n)
        return outputs
    }

    /// Declares a graph input (a size of −1 is the batch, `N`).
    mutating func input(_ name: String, _ type: ElementType, _ shape: [Int], doc: String) -> String {
        inputs.append(Self.valueInfo(name, type, shape, doc: doc))
        signature.inputs.append((name, shape))
        return name
    }

    /// Makes `value` a graph output named `name` (through an Identity node, so that names stay unique).
    mutating func output(_ value: String, as name: String, _ type: ElementType, _ shape: [Int], doc: String) {
        var n = ProtobufWriter()
        n.string(1, value); n.string(2, name); n.string(3, name); n.string(4, "Identity")
        nodes.append(n)
        outputs.append(Self.valueInfo(name, type, shape, doc: doc))
        signature.outputs.append((name, shape))
    }

    /// The `ModelProto`, with `properties` as its metadata.
    func model(properties: [String: String]) -> Data {
        var graph = ProtobufWriter()
        for n in nodes { graph.message(1, n) }
        graph.string(2, "rlbench")
        for t in initializers { graph.message(5, t) }
        for i in inputs { graph.message(11, i) }
        for o in outputs { graph.message(12, o) }
        var model = ProtobufWriter()
        model.int(1, ONNXExport.irVersion)
        model.string(2, "rlbench")
        model.string(6, "exported by rlbench export --onnx from \(URL(fileURLWithPath: source).lastPathComponent)")
        model.message(7, graph)
        model.message(8) { $0.int(2, ONNXExport.opset) }  // opset_import { domain "" (ai.onnx), version }
        for key in properties.keys.sorted() {
            model.message(14) { $0.string(1, key); $0.string(2, properties[key]!) }
        }
        return model.data
    }

    private mutating func fresh(_ stem: String) -> String {
        counter += 1
        return "\(stem)_\(counter)"
    }

    private static func tensorProto(_ name: String, _ values: [Float], shape: [Int]) -> ProtobufWriter {
        var t = ProtobufWriter()
        t.packedInts(1, shape.map(Int64.init))
        t.int(2, ElementType.float.rawValue)
        t.string(8, name)
        t.bytes(9, values.withUnsafeBytes { Array($0) })  // raw_data: little-endian floats
        return t
    }

    private static func valueInfo(_ name: String, _ type: ElementType, _ shape: [Int], doc: String) -> ProtobufWriter {
        var v = ProtobufWriter()
        v.string(1, name)
        v.message(2) { typeProto in
            typeProto.message(1) { tensorType in
                tensorType.int(1, type.rawValue)
                tensorType.message(2) { s in
                    for size in shape { s.message(1) { size < 0 ? $0.string(2, "N") : $0.int(1, size) } }
                }
            }
        }
        v.string(3, doc)
        return v
    }
}

// MARK: Layers

extension ONNXGraph {
    /// The nodes of a checkpoint's layer list applied to `x`, whose shape per sample is `features` (updated to the
    /// output's). With `label`, its one-hot block joins the input of the first linear layer (a conditional generator).
    mutating func apply(_ layers: [[String: Any]], to x: String, features: inout [Int],
                        joiningAtFirstLinear label: (oneHot: String, classes: Int)? = nil) throws -> String {
        var x = x, label = label
        for (index, layer) in layers.enumerated() {
            let type = layer["type"] as? String ?? "?"
            let at = "layer \(index) (\(type))"
            func string(_ key: String) throws -> String {
                guard let v = layer[key] as? String else { throw fail("\(at) needs \"\(key)\": a tensor name") }
                return v
            }
            func number(_ key: String, _ fallback: Double? = nil) throws -> Double {
                if let v = layer[key] as? NSNumber { return v.doubleValue }
                if let fallback { return fallback }
                throw fail("\(at) needs \"\(key)\": a number")
            }
            func pair(_ key: String, _ fallback: [Int]) throws -> [Int] {
                guard let raw = layer[key] else { return fallback }
                guard let v = raw as? [NSNumber], v.count == 2 else { throw fail("\(at): \"\(key)\" is not [h, w]") }
                return v.map(\.intValue)
            }
            func shapeOf(_ name: String) throws -> [Int] {
                guard let shape = shape(of: name) else { throw fail("\(at): the checkpoint has no tensor '\(name)'") }
                return shape
            }
            func needsImage() throws -> (c: Int, h: Int, w: Int) {
                guard features.count == 3 else { throw fail("\(at) needs images [C, H, W], its input is \(features) per sample") }
                return (features[0], features[1], features[2])
            }
            switch type {
            case "linear":
                if let (oneHot, classes) = label, features.count == 1 {
                    x = node("Concat", [x, oneHot], [.int("axis", 1)])
                    features[0] += classes
                    label = nil
                }
                guard features.count == 1 else { throw fail("\(at) needs a vector per sample, its input is \(features)") }
                let weightName = try string("weight")
                let shape = try shapeOf(weightName)
                guard shape.count == 2 else { throw fail("\(at): '\(weightName)' is \(shape), not an [out, in] matrix") }
                let weight = try tensor(weightName, shape: [shape[0], features[0]])
                var inputs = [x, weight]
                if layer["bias"] != nil { inputs.append(try tensor(try string("bias"), shape: [shape[0]])) }
                x = node("Gemm", inputs, [.int("transB", 1)])
                features = [shape[0]]
            case "identity": x = node("Identity", [x])
            case "relu": x = node("Relu", [x])
            case "tanh": x = node("Tanh", [x])
            case "sigmoid": x = node("Sigmoid", [x])
            case "softplus": x = node("Softplus", [x])
            case "elu": x = node("Elu", [x], [.float("alpha", 1)])
            case "leaky_relu": x = node("LeakyRelu", [x], [.float("alpha", Float(try number("negative_slope", 0.01)))])
            case "scale_shift":
                for (key, op) in [("scale", "Mul"), ("shift", "Add")] {
                    let operand: String
                    if let name = layer[key] as? String { operand = try tensor(name) } else { operand = constant([Float(try number(key))], shape: []) }
                    x = node(op, [x, operand])
                }
            case "batch_norm":
                guard let channels = features.first else { throw fail("\(at) has no channels") }
                let mean = try tensor(try string("running_mean"), shape: [channels])
                let variance = try tensor(try string("running_var"), shape: [channels])
                let scale = layer["weight"] != nil ? try tensor(try string("weight"), shape: [channels])
                                                   : constant([Float](repeating: 1, count: channels), shape: [channels])
                let bias = layer["bias"] != nil ? try tensor(try string("bias"), shape: [channels])
                                                : constant([Float](repeating: 0, count: channels), shape: [channels])
                x = node("BatchNormalization", [x, scale, bias, mean, variance], [.float("epsilon", Float(try number("eps", 1e-5)))])
            case "conv2d", "conv_transpose2d":
                let (c, h, w) = try needsImage()
                let transposed = type == "conv_transpose2d"
                let weightName = try string("weight")
                let groups = Int(try number("groups", 1))
                let kernel = try shapeOf(weightName)
                guard kernel.count == 4, groups >= 1, c % groups == 0, kernel[transposed ? 0 : 1] * (transposed ? 1 : groups) == c else {
                    throw fail("\(at): '\(weightName)' \(kernel) does not fit \(c) input channels in \(groups) groups")
                }
                let stride = try pair("stride", [1, 1]), padding = try pair("padding", [0, 0]), dilation = try pair("dilation", [1, 1])
                let outputPadding = try pair("output_padding", [0, 0])
                let outChannels = transposed ? kernel[1] * groups : kernel[0]
                var inputs = [x, try tensor(weightName)]
                if layer["bias"] != nil { inputs.append(try tensor(try string("bias"), shape: [outChannels])) }
                var attributes: [Attribute] = [.ints("kernel_shape", Array(kernel[2...])), .ints("strides", stride),
                                               .ints("pads", padding + padding), .ints("dilations", dilation), .int("group", groups)]
                func size(_ n: Int, _ i: Int) -> Int {
                    transposed ? (n - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel[2 + i] - 1) + outputPadding[i] + 1
                               : (n + 2 * padding[i] - dilation[i] * (kernel[2 + i] - 1) - 1) / stride[i] + 1
                }
                if transposed { attributes.append(.ints("output_padding", outputPadding)) }
                features = [outChannels, size(h, 0), size(w, 1)]
                guard features[1] >= 1, features[2] >= 1 else { throw fail("\(at) leaves no pixels of a \(h)×\(w) input") }
                x = node(transposed ? "ConvTranspose" : "Conv", inputs, attributes)
            case "upsample_nearest":
                let (c, h, w) = try needsImage()
                let scale = try pair("scale_factor", [2, 2])
                guard scale.allSatisfy({ $0 >= 1 }) else { throw fail("\(at): scale_factor \(scale) is not whole and ≥ 1") }
                let scales = constant([1, 1, Float(scale[0]), Float(scale[1])], shape: [4])
                x = node("Resize", [x, "", scales], [.string("mode", "nearest"), .string("coordinate_transformation_mode", "asymmetric"),
                                                     .string("nearest_mode", "floor")])
                features = [c, h * scale[0], w * scale[1]]
            case "flatten", "unflatten":
                // torch's dims count the batch (dim 0), which stays as it is.
                let rank = features.count + 1
                if type == "flatten" {
                    var start = Int(try number("start_dim", 1)), end = Int(try number("end_dim", -1))
                    if start < 0 { start += rank }
                    if end < 0 { end += rank }
                    guard 1 <= start, start <= end, end < rank else { throw fail("\(at): dims \(start)...\(end) of \(rank) (the batch is dim 0)") }
                    features = Array(features[..<(start - 1)]) + [features[(start - 1)..<end].reduce(1, *)] + Array(features[end...])
                } else {
                    var dim = Int(try number("dim"))
                    if dim < 0 { dim += rank }
                    guard let sizes = (layer["sizes"] as? [NSNumber])?.map(\.intValue), 1 <= dim, dim < rank else {
                        throw fail("\(at): needs \"dim\" (after the batch) and \"sizes\"")
                    }
                    let size = features[dim - 1], known = sizes.filter { $0 != -1 }.reduce(1, *)
                    let resolved = sizes.map { $0 == -1 ? size / max(known, 1) : $0 }
                    guard resolved.reduce(1, *) == size, resolved.allSatisfy({ $0 >= 1 }) else { throw fail("\(at): sizes \(sizes) do not split \(size)") }
                    features = Array(features[..<(dim - 1)]) + resolved + Array(features[dim...])
                }
                x = node("Reshape", [x, constant(int64: [-1] + features.map(Int64.init), shape: [features.count + 1])])
            case "permute":
                // torch's dims count the batch (dim 0), which must stay first.
                guard let dims = (layer["dims"] as? [NSNumber])?.map(\.intValue), dims.first == 0,
                      dims.sorted() == Array(0...features.count) else {
                    throw fail("\(at): \"dims\" must reorder the \(features.count + 1) dims with the batch (0) first")
                }
                x = node("Transpose", [x], [.ints("perm", dims)])
                features = dims.dropFirst().map { features[$0 - 1] }
            case "lstm":
                throw fail("\(at): an lstm layer is exported only as the first layer of an agent's policy (its state is the model's h and c)")
            default:
                throw fail("\(at): the ONNX export does not know the layer type '\(type)' (it knows linear, conv2d, conv_transpose2d, "
                           + "batch_norm, flatten, unflatten, permute, upsample_nearest, scale_shift, lstm (first in an agent's policy) "
                           + "and the activations identity, relu, tanh, sigmoid, softplus, elu, leaky_relu)")
            }
        }
        if label != nil { throw fail("the generator is conditional but has no linear layer for the label to join") }
        return x
    }
}
