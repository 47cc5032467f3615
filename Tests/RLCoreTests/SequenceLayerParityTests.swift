import Foundation
import RLCore
import SeededRandom
import Testing

/// The PyTorch recordings of the normalization and recurrent layers (`layers.batch_norm*`, `layers.layer_norm*`,
/// `layers.rnn*`, `layers.lstm*`, `layers.gru*`): forward values (with the running statistics after a training step,
/// and h_n/c_n) and the gradients of L = Σ_k sum(outputs[k] · upstream[k]) w.r.t. input, parameters and h0/c0.
@Suite struct SequenceLayerParityTests {
    static let prefixes = ["layers.batch_norm", "layers.layer_norm", "layers.rnn", "layers.lstm", "layers.gru"]
    /// Float32 against float64 recordings, |got − want| / (1 + |want|); the worst error measured is 7e-7 (tanh RNN biases).
    static let tolerance = 5e-6

    @Test func sequenceLayersMatchPyTorch() throws {
        let fixtures = try TorchFixture.all(prefixes: Self.prefixes)
        #expect(fixtures.count >= 11, "expected the recorded normalization and recurrent fixtures, found \(fixtures.count)")
        for prefix in Self.prefixes {
            #expect(fixtures.contains { $0.name.hasPrefix(prefix) }, "no fixture for \(prefix)")
        }
        for f in fixtures { try check(f) }
    }

    /// Copies a recorded input into a parameter (same shape) and returns it.
    func load(_ f: TorchFixture, _ key: String, into t: Tensor) throws -> Tensor {
        let v = try f.input(key)
        #expect(t.shape == v.shape, "\(f.name): \(key) is \(t.shape), recorded \(v.shape)")
        t.data = v.data.map { Float($0) }
        return t
    }

    func leaf(_ f: TorchFixture, _ key: String) throws -> Tensor? {
        guard f.inputs[key] != nil else { return nil }
        let t = try f.input(key).tensor
        t.requiresGrad = f.grads[key] != nil
        return t
    }

    func check(_ f: TorchFixture) throws {
        let input = try leaf(f, "input")!
        var differentiated: [String: Tensor] = ["input": input]
        var outputs: [String: Tensor] = [:]
        switch f.op {
        case "batch_norm":
            let features = Int(f.param("num_features")!)
            let layer = input.rank == 4
                ? BatchNorm2d(features, eps: Float(f.param("eps")!), momentum: Float(f.param("momentum")!))
                : BatchNorm1d(features, eps: Float(f.param("eps")!), momentum: Float(f.param("momentum")!))
            differentiated["weight"] = try load(f, "weight", into: layer.weight!)
            differentiated["bias"] = try load(f, "bias", into: layer.bias!)
            _ = try load(f, "running_mean", into: layer.runningMean)
            _ = try load(f, "running_var", into: layer.runningVar)
            layer.setTraining(f.params["training"] as? Bool ?? true)
            outputs["output"] = layer(input)
            outputs["running_mean"] = layer.runningMean
            outputs["running_var"] = layer.runningVar
        case "layer_norm":
            let shape = (f.params["normalized_shape"] as! [NSNumber]).map(\.intValue)
            let layer = LayerNorm(shape, eps: Float(f.param("eps")!))
            differentiated["weight"] = try load(f, "weight", into: layer.weight!)
            differentiated["bias"] = try load(f, "bias", into: layer.bias!)
            outputs["output"] = layer(input)
        case "rnn", "lstm", "gru":
            let cell: RecurrentCell = f.op == "lstm" ? .lstm : f.op == "gru" ? .gru : .rnnTanh
            if f.op == "rnn" { #expect(f.params["nonlinearity"] as? String == "tanh", "\(f.name): only the tanh RNN exists") }
            #expect(f.params["batch_first"] as? Bool == true && f.param("num_layers") == 1, "\(f.name): unexpected layout")
            var rng = SeededGenerator(seed: 0)
            let layer = RecurrentLayer(cell, inputSize: Int(f.param("input_size")!), hiddenSize: Int(f.param("hidden_size")!),
                                       using: &rng)
            for (name, tensor) in layer.namedParameters() { differentiated[name] = try load(f, name, into: tensor) }
            let h0 = try leaf(f, "h0"), c0 = try leaf(f, "c0")
            differentiated["h0"] = h0
            differentiated["c0"] = c0
            let r = layer.forward(input, h0: h0, c0: c0)
            outputs["output"] = r.output
            outputs["h_n"] = r.hN
            outputs["c_n"] = r.cN
        default:
            Issue.record("\(f.name): op '\(f.op)' is not handled by the sequence layer parity test")
            return
        }
        for (key, expected) in f.outputs {
            guard let actual = outputs[key] else { Issue.record("\(f.name): no output '\(key)'"); continue }
            #expect(actual.shape == expected.shape, "\(f.name): \(key) shape \(actual.shape) vs \(expected.shape)")
            expectClose(actual.data, expected.data, tol: Self.tolerance, "\(f.name) \(key)")
        }
        let terms = try f.upstream.map { key, up -> Tensor in
            guard let out = outputs[key] else { throw FixtureError.malformed(f.file, "upstream for unknown output \(key)") }
            return (out * up.tensor).sum()
        }
        terms.reduce(Tensor(scalar: 0), +).backward()
        for (key, expected) in f.grads {
            guard let t = differentiated[key] else { Issue.record("\(f.name): gradient for unused input \(key)"); continue }
            expectClose(t.grad ?? [Float](repeating: 0, count: t.count), expected.data, tol: Self.tolerance, "\(f.name) d/d\(key)")
        }
    }
}

/// The layers beyond the recordings: finite-difference gradients, the fused recurrent node against the same cell
/// written with ordinary ops, dropout's seeding, the train/eval switch, composition and its names.
@Suite struct SequenceLayerTests {
    // MARK: Finite differences

    @Test func normalizationGradients() {
        gradientCheck("batch norm training [N, C, L]", [[4, 3, 2], [3], [3]]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true)
        }
        gradientCheck("batch norm training [N, C, H, W]", [[2, 2, 2, 3], [2], [2]]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: Tensor.zeros([2]), runningVar: Tensor.ones([2]),
                            training: true)
        }
        gradientCheck("batch norm eval", [[4, 3], [3], [3]]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: Tensor([0.2, -0.1, 0.3]),
                            runningVar: Tensor([0.5, 1.5, 2]), training: false)
        }
        gradientCheck("layer norm", [[2, 3, 4], [4], [4]]) {
            $0[0].layerNorm(normalizedShape: [4], weight: $0[1], bias: $0[2])
        }
        gradientCheck("layer norm over two dims", [[2, 3, 4], [3, 4], [3, 4]]) {
            $0[0].layerNorm(normalizedShape: [3, 4], weight: $0[1], bias: $0[2])
        }
    }

    @Test(arguments: RecurrentCell.allCases)
    func recurrentGradients(cell: RecurrentCell) {
        let (b, t, i, h, g) = (2, 3, 3, 4, cell.gateCount * 4)
        var shapes = [[b, t, i], [g, i], [g, h], [g], [g], [b, h]]
        if cell == .lstm { shapes.append([b, h]) }
        gradientCheck("\(cell) over \(t) steps", shapes, tol: 2e-3) { x in
            let r = Tensor.recurrent(cell, input: x[0], h0: x[5], c0: cell == .lstm ? x[6] : nil,
                                     weightIH: x[1], weightHH: x[2], biasIH: x[3], biasHH: x[4])
            return Tensor.concat([r.output.reshaped([-1]), r.hN.reshaped([-1])] + (r.cN.map { [$0.reshaped([-1])] } ?? []), axis: 0)
        }
    }

    @Test func compositionGradients() {
        gradientCheck("concatenate channels", [[2, 1, 2, 3], [2, 2, 2, 3]]) { Tensor.concat([$0[0], $0[1]], axis: 1) }
        var rng = SeededGenerator(seed: 3)
        let block = Residual(Sequential([Linear(4, 4, using: &rng), ActivationLayer(.tanh), Linear(4, 4, using: &rng)]))
        let projected = Residual(Linear(4, 2, using: &rng), shortcut: Linear(4, 2, using: &rng))
        gradientCheck("residual", [[3, 4]]) { block($0[0]) }
        gradientCheck("residual with projection", [[3, 4]]) { projected($0[0]) }
        let inception = Parallel([Linear(4, 2, using: &rng), Sequential([Linear(4, 3, using: &rng), ActivationLayer(.tanh)])])
        gradientCheck("parallel branches", [[3, 4]]) { inception($0[0]) }
    }

    // MARK: The fused recurrent node against the readable cell

    /// One step of `cell` written with ordinary tensor ops, as PyTorch's documentation writes it.
    static func composedStep(_ cell: RecurrentCell, x: Tensor, h: Tensor, c: Tensor?, _ w: [Tensor]) -> (h: Tensor, c: Tensor?) {
        let gi = Tensor.linear(x, weight: w[0], bias: w[2]), gh = Tensor.linear(h, weight: w[1], bias: w[3])
        let hidden = h.shape[1]
        func block(_ t: Tensor, _ k: Int) -> Tensor { t.sliced(axis: 1, (k * hidden)..<((k + 1) * hidden)) }
        switch cell {
        case .rnnTanh:
            return ((gi + gh).tanh(), nil)
        case .lstm:
            let pre = gi + gh
            let i = block(pre, 0).sigmoid(), f = block(pre, 1).sigmoid(), g = block(pre, 2).tanh(), o = block(pre, 3).sigmoid()
            let cNext = f * c! + i * g
            return (o * cNext.tanh(), cNext)
        case .gru:
            let r = (block(gi, 0) + block(gh, 0)).sigmoid(), z = (block(gi, 1) + block(gh, 1)).sigmoid()
            let n = (block(gi, 2) + r * block(gh, 2)).tanh()
            return ((1 - z) * n + z * h, nil)
        }
    }

    /// Hidden size 90 also takes the fast paths: 33 samples run as halves of 16 and 17 on the two cores
    /// (`ExecutionPolicy.recurrentSplitBatch`), and the LSTM's and GRU's 270 or 360 gate rows split into slices for the
    /// panel kernel.
    @Test(arguments: RecurrentCell.allCases, [6, 90])
    func fusedRecurrentMatchesComposedCell(cell: RecurrentCell, hidden: Int) {
        let (batch, steps, inputs) = (hidden > 16 ? 33 : 3, 5, 4)
        var rng = SeededGenerator(seed: 11)
        func leaves() -> [Tensor] {
            var r = SeededGenerator(seed: 5)
            let shapes = [[batch, steps, inputs], [cell.gateCount * hidden, inputs], [cell.gateCount * hidden, hidden],
                          [cell.gateCount * hidden], [cell.gateCount * hidden], [batch, hidden], [batch, hidden]]
            // Weights and biases in torch's initial range ±1/√H; inputs and states in ±1.
            let bound = 1 / Float(hidden).squareRoot()
            return shapes.enumerated().map { k, s in
                let range: Float = (1...4).contains(k) ? bound : 1
                let t = Tensor.uniform(s, low: -range, high: range, using: &r)
                t.requiresGrad = true
                return t
            }
        }
        let upstream = Tensor.uniform([batch, steps, hidden], low: -1, high: 1, using: &rng)
        let upstreamLast = Tensor.uniform([batch, hidden], low: -1, high: 1, using: &rng)
        func run(_ forward: ([Tensor]) -> (output: Tensor, hN: Tensor, cN: Tensor?)) -> [[Float]] {
            let t = leaves()
            let r = forward(t)
            var loss = (r.output * upstream).sum() + (r.hN * upstreamLast).sum()
            if let c = r.cN { loss = loss + (c * upstreamLast * 0.5).sum() }
            loss.backward()
            let used = cell == .lstm ? t : Array(t.prefix(6))
            return [r.output.data, r.hN.data, r.cN?.data ?? []] + used.map { $0.grad ?? [] }
        }
        let fused = run { t in
            Tensor.recurrent(cell, input: t[0], h0: t[5], c0: cell == .lstm ? t[6] : nil,
                             weightIH: t[1], weightHH: t[2], biasIH: t[3], biasHH: t[4])
        }
        let composed = run { t in
            var h = t[5], c: Tensor? = cell == .lstm ? t[6] : nil
            var outputs: [Tensor] = []
            for s in 0..<steps {
                let x = t[0].sliced(axis: 1, s..<(s + 1)).reshaped([batch, inputs])
                (h, c) = Self.composedStep(cell, x: x, h: h, c: c, Array(t[1...4]))
                outputs.append(h)
            }
            return (Tensor.stack(outputs, axis: 1), h, c)
        }
        let names = ["output", "h_n", "c_n", "d input", "d weight_ih", "d weight_hh", "d bias_ih", "d bias_hh", "d h0", "d c0"]
        for (k, (a, b)) in zip(fused, composed).enumerated() {
            // Only rounding differs (sums in another order), more of it in the longer sums of the larger case.
            expectClose(a, b.map { Double($0) }, tol: hidden > 16 ? 2e-5 : 2e-6, "\(cell) \(names[k])")
        }
    }

    /// A batch of 32 runs as two halves of 16 samples, one per core: every sample's outputs, final states and input and
    /// initial-state gradients are the bits of the same samples run as batches of 16 (which are not cut).
    @Test(arguments: RecurrentCell.allCases)
    func splitBatchGivesTheBitsOfItsHalves(cell: RecurrentCell) {
        let (batch, steps, inputs, hidden) = (ExecutionPolicy.recurrentSplitBatch, 6, 5, 40), half = batch / 2
        var rng = SeededGenerator(seed: 21)
        let bound = 1 / Float(hidden).squareRoot(), gates = cell.gateCount * hidden
        let weights = [[gates, inputs], [gates, hidden], [gates], [gates]].map {
            Tensor.uniform($0, low: -bound, high: bound, using: &rng)
        }
        let x = Tensor.uniform([batch, steps, inputs], low: -1, high: 1, using: &rng)
        let h0 = Tensor.uniform([batch, hidden], low: -1, high: 1, using: &rng)
        let c0 = Tensor.uniform([batch, hidden], low: -1, high: 1, using: &rng)
        let upstream = Tensor.uniform([batch, steps, hidden], low: -1, high: 1, using: &rng)
        /// Outputs, h_n, c_n and the gradients of x, h0, c0 for the samples `samples`, run as one batch.
        func run(_ samples: Range<Int>) -> [[Float]] {
            let leaves = [x, h0, c0].map { t in
                let rows = t.sliced(axis: 0, samples).detached()
                rows.requiresGrad = true
                return rows
            }
            let r = Tensor.recurrent(cell, input: leaves[0], h0: leaves[1], c0: cell == .lstm ? leaves[2] : nil,
                                     weightIH: weights[0], weightHH: weights[1], biasIH: weights[2], biasHH: weights[3])
            var loss = (r.output * upstream.sliced(axis: 0, samples)).sum()
            if let c = r.cN { loss = loss + (c * 0.5).sum() }
            loss.backward()
            return [r.output.data, r.hN.data, r.cN?.data ?? [], leaves[0].grad!, leaves[1].grad!, leaves[2].grad ?? []]
        }
        let whole = run(0..<batch), halves = zip(run(0..<half), run(half..<batch)).map { $0 + $1 }
        for (k, name) in ["output", "h_n", "c_n", "d input", "d h0", "d c0"].enumerated() {
            #expect(whole[k].map(\.bitPattern) == halves[k].map(\.bitPattern), "\(cell) \(name): the split batch differs")
        }
    }

    @Test func recurrentLayerNamesShapesAndLayers() {
        var rng = SeededGenerator(seed: 2)
        let lstm = LSTM(16, 8, numLayers: 2, using: &rng)
        #expect(lstm.namedParameters().map(\.name) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                                        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"])
        #expect(lstm.namedParameters().map(\.tensor.shape) == [[32, 16], [32, 8], [32], [32], [32, 8], [32, 8], [32], [32]])
        let bound = 1 / Float(8).squareRoot()
        #expect(lstm.parameters.allSatisfy { $0.data.allSatisfy { abs($0) <= bound } })
        let x = Tensor.uniform([3, 7, 16], low: -1, high: 1, using: &rng)
        let r = lstm.forward(x, h0: Tensor.zeros([2, 3, 8]), c0: Tensor.zeros([2, 3, 8]))
        #expect(r.output.shape == [3, 7, 8] && r.hN.shape == [2, 3, 8] && r.cN?.shape == [2, 3, 8])
        // Layer 1's final state is the last output; with zero states the explicit zeros change nothing.
        #expect(Array(r.hN.data[24...]) == r.output.sliced(axis: 1, 6..<7).data)
        #expect(lstm(x).data == r.output.data)
        // Sequence-first input gives the transposed output.
        var rng2 = SeededGenerator(seed: 2)
        let seqFirst = LSTM(16, 8, numLayers: 2, batchFirst: false, using: &rng2)
        let y = seqFirst(x.transposed(0, 1))
        #expect(y.shape == [7, 3, 8] && y.transposed(0, 1).data == r.output.data)
        // Same seed, same layer.
        var a = SeededGenerator(seed: 9), b = SeededGenerator(seed: 9)
        #expect(GRU(4, 5, using: &a).parameters.map(\.data) == GRU(4, 5, using: &b).parameters.map(\.data))
    }

    @Test func zeroLengthSequenceIsRefused() async {
        var rng = SeededGenerator(seed: 1)
        for layer in [RNN(3, 4, using: &rng), LSTM(3, 4, using: &rng), GRU(3, 4, using: &rng)] {
            let problem = layer.inputProblem(Tensor.zeros([2, 0, 3]))
            #expect(problem?.hasPrefix("\(layer.cell.layerName): a sequence of length 0") == true, "\(problem ?? "accepted")")
            #expect(layer.inputProblem(Tensor.zeros([2, 1, 3])) == nil)
        }
        let exit = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var rng = SeededGenerator(seed: 1)
            _ = LSTM(3, 4, using: &rng)(Tensor.zeros([2, 0, 3]))
        }
        if let exit {
            let message = String(decoding: exit.standardErrorContent, as: UTF8.self)
            #expect(message.contains("LSTM: a sequence of length 0"), "stderr: \(message)")
        }
    }

    // MARK: Dropout and the train/eval switch

    @Test func dropoutMasksFollowTheSeed() {
        var rng = SeededGenerator(seed: 4)
        let x = Tensor.uniform([100, 100], low: 0.5, high: 2, using: &rng)
        let p: Float = 0.3
        let a = Dropout(p, seed: 7), b = Dropout(p, seed: 7), c = Dropout(p, seed: 8)
        let ya = a(x)
        #expect(ya.data == b(x).data)
        #expect(ya.data != c(x).data)
        #expect(a(x).data != ya.data, "the next call draws a new mask")
        let scale = 1 / (1 - p)
        var kept = 0
        for (y, v) in zip(ya.data, x.data) where y != 0 {
            kept += 1
            #expect(y == v * scale)
        }
        #expect(abs(Double(kept) / Double(x.count) - Double(1 - p)) < 0.02, "kept \(kept) of \(x.count)")
        // The gradient is the same mask and scale.
        let leafX = x.detached()
        leafX.requiresGrad = true
        Dropout(p, seed: 7)(leafX).sum().backward()
        #expect(leafX.grad! == ya.data.map { $0 == 0 ? 0 : scale })
        a.eval()
        #expect(a(x) === x, "eval mode is the identity")
    }

    @Test func trainEvalReachesNestedLayers() {
        var rng = SeededGenerator(seed: 5)
        let drop = Dropout(0.5, seed: 1), norm = BatchNorm1d(4), inner = Dropout(0.2, seed: 2), lastNorm = BatchNorm1d(4)
        let model = Sequential([Linear(3, 4, using: &rng), drop,
                                Residual(Sequential([norm, ActivationLayer(.relu)]), shortcut: inner),
                                Parallel([lastNorm, ActivationLayer(.tanh)])])
        #expect(drop.isTraining && norm.isTraining && inner.isTraining && lastNorm.isTraining)
        model.eval()
        #expect(!drop.isTraining && !norm.isTraining && !inner.isTraining && !lastNorm.isTraining)
        let x = Tensor.uniform([5, 3], low: -1, high: 1, using: &rng)
        #expect(model(x).data == model(x).data, "eval mode is deterministic")
        model.train()
        #expect(drop.isTraining && norm.isTraining && inner.isTraining && lastNorm.isTraining)
        #expect(model.namedBuffers().map(\.name) == ["2.body.0.running_mean", "2.body.0.running_var", "2.body.0.num_batches_tracked",
                                                     "3.branches.0.running_mean", "3.branches.0.running_var",
                                                     "3.branches.0.num_batches_tracked"])
    }

    @Test func batchNormTracksStatisticsAndUsesThemInEval() throws {
        var rng = SeededGenerator(seed: 6)
        let bn = BatchNorm2d(3)
        let x = Tensor.uniform([4, 3, 2, 2], low: -1, high: 3, using: &rng)
        let y = bn(x)
        #expect(bn.numBatchesTracked.item == 1)
        // Training output: every channel has mean 0 and biased variance 1 (up to eps).
        for c in 0..<3 {
            let values = (0..<4).flatMap { n in (0..<4).map { y.data[(n * 3 + c) * 4 + $0] } }
            let mean = values.reduce(0, +) / 16
            #expect(abs(mean) < 1e-5)
            #expect(abs(values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 16 - 1) < 1e-3)
        }
        bn.eval()
        let before = bn.runningMean.data
        let z = bn(Tensor.zeros([1, 3, 1, 1]))
        #expect(bn.runningMean.data == before && bn.numBatchesTracked.item == 1, "eval mode changes no statistic")
        for c in 0..<3 {
            #expect(abs(z.data[c] - (-bn.runningMean.data[c] / (bn.runningVar.data[c] + 1e-5).squareRoot())) < 1e-6)
        }
        #expect(bn.stateDict().map(\.name) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
        // A checkpoint keeps the buffers (the scalar counter too).
        let restored = BatchNorm2d(3)
        try restored.load(stateDict: SafeTensors.decode(SafeTensors.encode(bn.stateDict())).tensors)
        #expect(restored.stateDict().map(\.tensor.data) == bn.stateDict().map(\.tensor.data))
        #expect(BatchNorm1d(3, affine: false).namedParameters().isEmpty)
    }

    // MARK: Composition

    @Test func residualAndInceptionBlocksInAFewLines() {
        var rng = SeededGenerator(seed: 8)
        // A ResNet-style basic block on features (the convolutional one swaps Linear for Conv2d).
        let basic = Sequential([
            Residual(Sequential([Linear(6, 6, using: &rng), BatchNorm1d(6), ActivationLayer(.relu), Linear(6, 6, using: &rng),
                                 BatchNorm1d(6)])),
            ActivationLayer(.relu),
        ])
        #expect(basic.namedParameters().map(\.name) == ["0.body.0.weight", "0.body.0.bias", "0.body.1.weight", "0.body.1.bias",
                                                        "0.body.3.weight", "0.body.3.bias", "0.body.4.weight", "0.body.4.bias"])
        let x = Tensor.uniform([5, 6], low: -1, high: 1, using: &rng)
        #expect(basic(x).shape == [5, 6])
        // An Inception-style block: branches concatenated along the channel axis.
        let inception = Parallel([Linear(6, 2, using: &rng), Sequential([Linear(6, 3, using: &rng), ActivationLayer(.relu)]),
                                  Residual(LayerNorm(6))])
        #expect(inception.namedParameters().map(\.name) == ["branches.0.weight", "branches.0.bias", "branches.1.0.weight",
                                                             "branches.1.0.bias", "branches.2.body.weight", "branches.2.body.bias"])
        let y = inception(x)
        #expect(y.shape == [5, 11])
        #expect(y.sliced(axis: 1, 5..<11).data == (LayerNorm(6)(x) + x).data)
    }
}
