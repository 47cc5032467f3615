import SeededRandom

/// A (stacked) recurrent layer as `torch.nn.RNN` (tanh), `LSTM` or `GRU` (made by the functions of those names):
/// parameters `weight_ih_l{k}` [G·H, in], `weight_hh_l{k}` [G·H, H], `bias_ih_l{k}`, `bias_hh_l{k}` [G·H], all
/// initialized uniform in ±1/√H in that order. Input `[B, T, I]` when `batchFirst` (rlbench's default, unlike
/// torch's), else `[T, B, I]`; states h0/c0 and h_n/c_n are `[numLayers, B, H]` either way, as in torch. Each layer
/// runs as one graph node over the whole sequence (`Tensor.recurrent`). As a `Layer` it returns the output alone.
public final class RecurrentLayer: Layer {
    public let cell: RecurrentCell
    public let inputSize: Int
    public let hiddenSize: Int
    public let numLayers: Int
    public let batchFirst: Bool
    public let weightsIH: [Tensor]
    public let weightsHH: [Tensor]
    public let biasesIH: [Tensor]?
    public let biasesHH: [Tensor]?

    public init(_ cell: RecurrentCell, inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true,
                batchFirst: Bool = true, using rng: inout SeededGenerator) {
        precondition(inputSize > 0 && hiddenSize > 0 && numLayers > 0,
                     "\(cell.layerName) needs positive sizes, got input \(inputSize), hidden \(hiddenSize), layers \(numLayers)")
        self.cell = cell
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.batchFirst = batchFirst
        let bound = 1 / Float(hiddenSize).squareRoot(), rows = cell.gateCount * hiddenSize
        func parameter(_ shape: [Int]) -> Tensor {
            let t = Tensor.uniform(shape, low: -bound, high: bound, using: &rng)
            t.requiresGrad = true
            return t
        }
        var wih: [Tensor] = [], whh: [Tensor] = [], bih: [Tensor] = [], bhh: [Tensor] = []
        for layer in 0..<numLayers {
            wih.append(parameter([rows, layer == 0 ? inputSize : hiddenSize]))
            whh.append(parameter([rows, hiddenSize]))
            if bias {
                bih.append(parameter([rows]))
                bhh.append(parameter([rows]))
            }
        }
        (weightsIH, weightsHH) = (wih, whh)
        (biasesIH, biasesHH) = bias ? (bih, bhh) : (nil, nil)
    }

    /// Why `forward` would refuse these shapes (a message naming the layer), or nil when they fit.
    public func inputProblem(_ x: Tensor, h0: Tensor? = nil, c0: Tensor? = nil) -> String? {
        let name = cell.layerName
        guard x.rank == 3 else { return "\(name): input must have rank 3, got \(x.shape)" }
        let (batch, steps) = batchFirst ? (x.shape[0], x.shape[1]) : (x.shape[1], x.shape[0])
        if steps == 0 { return "\(name): a sequence of length 0 (input \(x.shape)); the layer needs at least one time step" }
        if batch == 0 { return "\(name): an empty batch (input \(x.shape))" }
        if x.shape[2] != inputSize { return "\(name): input has \(x.shape[2]) features, the layer expects \(inputSize)" }
        let stateShape = [numLayers, batch, hiddenSize]
        if let h0, h0.shape != stateShape { return "\(name): h0 is \(h0.shape), expected \(stateShape)" }
        if let c0 {
            if cell != .lstm { return "\(name): only the LSTM takes c0" }
            if c0.shape != stateShape { return "\(name): c0 is \(c0.shape), expected \(stateShape)" }
        }
        return nil
    }

    /// The output `[B, T, H]` (`[T, B, H]` unless `batchFirst`) of the last layer, and the final states
    /// h_n (and c_n for the LSTM) of every layer, `[numLayers, B, H]`. Missing initial states are zeros.
    public func forward(_ x: Tensor, h0: Tensor? = nil, c0: Tensor? = nil) -> (output: Tensor, hN: Tensor, cN: Tensor?) {
        // fatalError, not preconditionFailure: its message is printed in release builds too.
        if let problem = inputProblem(x, h0: h0, c0: c0) { fatalError(problem) }
        let batch = batchFirst ? x.shape[0] : x.shape[1]
        /// Layer l's slice `[B, H]` of a `[numLayers, B, H]` state.
        func state(_ s: Tensor?, _ l: Int) -> Tensor? {
            guard let s else { return nil }
            return (numLayers == 1 ? s : s.sliced(axis: 0, l..<(l + 1))).reshaped([batch, hiddenSize])
        }
        var sequence = batchFirst ? x : x.transposed(0, 1)
        var hN: [Tensor] = [], cN: [Tensor] = []
        for l in 0..<numLayers {
            let r = Tensor.recurrent(cell, input: sequence, h0: state(h0, l), c0: state(c0, l),
                                     weightIH: weightsIH[l], weightHH: weightsHH[l],
                                     biasIH: biasesIH?[l], biasHH: biasesHH?[l])
            sequence = r.output
            hN.append(r.hN)
            if let c = r.cN { cN.append(c) }
        }
        func stacked(_ states: [Tensor]) -> Tensor {
            states.count == 1 ? states[0].reshaped([1, batch, hiddenSize]) : Tensor.stack(states, axis: 0)
        }
        return (batchFirst ? sequence : sequence.transposed(0, 1), stacked(hN), cN.isEmpty ? nil : stacked(cN))
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { forward(x).output }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        var named: [(name: String, tensor: Tensor)] = []
        for l in 0..<numLayers {
            named.append((name: "weight_ih_l\(l)", tensor: weightsIH[l]))
            named.append((name: "weight_hh_l\(l)", tensor: weightsHH[l]))
            if let biasesIH, let biasesHH {
                named.append((name: "bias_ih_l\(l)", tensor: biasesIH[l]))
                named.append((name: "bias_hh_l\(l)", tensor: biasesHH[l]))
            }
        }
        return named
    }
}

/// `torch.nn.RNN` with the tanh nonlinearity.
public func RNN(_ inputSize: Int, _ hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = true,
                using rng: inout SeededGenerator) -> RecurrentLayer {
    RecurrentLayer(.rnnTanh, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bias: bias,
                   batchFirst: batchFirst, using: &rng)
}

/// `torch.nn.LSTM` (gates i, f, g, o).
public func LSTM(_ inputSize: Int, _ hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = true,
                 using rng: inout SeededGenerator) -> RecurrentLayer {
    RecurrentLayer(.lstm, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bias: bias,
                   batchFirst: batchFirst, using: &rng)
}

/// `torch.nn.GRU` (gates r, z, n; r multiplies the hidden term of n including its bias).
public func GRU(_ inputSize: Int, _ hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = true,
                using rng: inout SeededGenerator) -> RecurrentLayer {
    RecurrentLayer(.gru, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bias: bias,
                   batchFirst: batchFirst, using: &rng)
}
