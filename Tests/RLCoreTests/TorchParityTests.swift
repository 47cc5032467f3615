import Foundation
import RLCore
import Testing

/// Checks every recorded PyTorch case (../shared/fixtures/torch and $RLBENCH_TORCH_FIXTURES): forward values and
/// the gradients of L = Σ_k sum(outputs[k] · upstream[k]). An op this file does not know fails the test, so a new
/// recording is never skipped silently. The `layers.*` recordings are checked by `ImageLayerParityTests` and
/// `SequenceLayerParityTests`.
@Suite struct TorchParityTests {

    @Test func opsMatchPyTorch() throws {
        let fixtures = try TorchFixture.all(prefixes: ["activations.", "losses.", "reductions.", "distributions.", "linear.", "tensor."])
        #expect(fixtures.count >= 50, "expected the recorded op fixtures, found \(fixtures.count)")
        for f in fixtures { try check(f) }
    }

    @Test func optimizersMatchPyTorch() throws {
        let fixtures = try TorchFixture.all(prefixes: ["optim."])
        #expect(fixtures.count >= 12)
        for f in fixtures { try checkOptimizer(f) }
    }

    @Test func clippingAndSchedulesMatchPyTorch() throws {
        let fixtures = try TorchFixture.all(prefixes: ["clip.", "sched."])
        #expect(fixtures.count >= 6)
        for f in fixtures { try checkClipOrSchedule(f) }
    }

    @Test func everyFixtureGroupIsCovered() throws {
        let known = ["activations.", "losses.", "reductions.", "distributions.", "linear.", "tensor.", "optim.", "clip.", "sched.",
                     "layers.conv", "layers.max_pool", "layers.avg_pool", "layers.adaptive_avg_pool",
                     "layers.batch_norm", "layers.layer_norm", "layers.rnn", "layers.lstm", "layers.gru"]
        for dir in TorchFixture.directories() {
            let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }
            for name in names where !known.contains(where: { name.hasPrefix($0) }) {
                Issue.record("\(name): no test handles this fixture group")
            }
        }
    }

    /// Leaf tensors for the differentiated inputs.
    func leaf(_ f: TorchFixture, _ key: String) throws -> Tensor {
        let t = try f.input(key).tensor
        t.requiresGrad = f.grads[key] != nil
        return t
    }

    func reduction(_ f: TorchFixture) -> Reduction { (f.params["reduction"] as? String) == "sum" ? .sum : .mean }

    func check(_ f: TorchFixture) throws {
        var leaves: [String: Tensor] = [:]
        func x(_ key: String) throws -> Tensor {
            if let t = leaves[key] { return t }
            let t = try leaf(f, key)
            leaves[key] = t
            return t
        }
        var outputs: [String: Tensor] = [:]
        var extraIndices: [Int]?
        switch f.op {
        case "elu": outputs["output"] = try x("input").elu(Float(f.param("alpha")!))
        case "leaky_relu": outputs["output"] = try x("input").leakyRelu(Float(f.param("negative_slope")!))
        case "log_softmax": outputs["output"] = try x("input").logSoftmax(axis: Int(f.param("dim")!))
        case "softmax": outputs["output"] = try x("input").softmax(axis: Int(f.param("dim")!))
        case "relu": outputs["output"] = try x("input").relu()
        case "sigmoid": outputs["output"] = try x("input").sigmoid()
        case "tanh": outputs["output"] = try x("input").tanh()
        case "softplus":
            outputs["output"] = try x("input").softplus(beta: Float(f.param("beta")!), threshold: Float(f.param("threshold")!))
        case "categorical_entropy": outputs["entropy"] = Categorical(logits: try x("logits")).entropy()
        case "categorical_log_prob":
            outputs["log_prob"] = Categorical(logits: try x("logits")).logProb(try f.input("actions").ints)
        case "normal_entropy_sum":
            outputs["entropy"] = DiagonalGaussian(mean: try x("mean"), logStd: try x("log_std")).entropy()
        case "normal_log_prob_sum":
            outputs["log_prob"] = DiagonalGaussian(mean: try x("mean"), logStd: try x("log_std")).logProb(try f.input("value").tensor)
        case "linear": outputs["output"] = Tensor.linear(try x("input"), weight: try x("weight"), bias: try x("bias"))
        case "matmul": outputs["output"] = try x("a").matmul(try x("b"))
        case "binary_cross_entropy_with_logits":
            outputs["loss"] = binaryCrossEntropyWithLogits(try x("input"), try x("target"), reduction: reduction(f))
        case "cross_entropy":
            outputs["loss"] = crossEntropyLoss(try x("input"), labels: try f.input("target").ints, reduction: reduction(f))
        case "gaussian_kl_to_standard_normal": outputs["loss"] = gaussianKLLoss(mean: try x("mu"), logVariance: try x("logvar"))
        case "huber_loss":
            outputs["loss"] = huberLoss(try x("input"), try x("target"), delta: Float(f.param("delta")!), reduction: reduction(f))
        case "smooth_l1_loss":
            outputs["loss"] = smoothL1Loss(try x("input"), try x("target"), beta: Float(f.param("beta")!), reduction: reduction(f))
        case "mse_loss": outputs["loss"] = mseLoss(try x("input"), try x("target"), reduction: reduction(f))
        case "multi_margin_loss":
            outputs["loss"] = multiMarginLoss(try x("input"), labels: try f.input("target").ints,
                                              margin: Float(f.param("margin")!), reduction: reduction(f))
        case "sigmoid_focal_loss":
            outputs["loss"] = sigmoidFocalLoss(try x("input"), try x("target"), alpha: Float(f.param("alpha")!),
                                               gamma: Float(f.param("gamma")!), reduction: reduction(f))
        case "logsumexp":
            outputs["output"] = try x("input").logSumExp(axis: Int(f.param("dim")!), keepDims: f.params["keepdim"] as? Bool ?? false)
        case "max":
            let r = try x("input").max(axis: Int(f.param("dim")!), keepDims: f.params["keepdim"] as? Bool ?? false)
            outputs["values"] = r.values
            extraIndices = r.indices
        case "mean", "sum":
            let input = try x("input")
            let keep = f.params["keepdim"] as? Bool ?? false
            if let dim = f.param("dim") {
                outputs["output"] = f.op == "sum" ? input.sum(axis: Int(dim), keepDims: keep) : input.mean(axis: Int(dim), keepDims: keep)
            } else {
                outputs["output"] = f.op == "sum" ? input.sum() : input.mean()
            }
        case "add": outputs["output"] = try x("a") + x("b")
        case "mul": outputs["output"] = try x("a") * x("b")
        case "clamp":
            outputs["output"] = try x("input").clamped(min: f.param("min").map(Float.init), max: f.param("max").map(Float.init))
        case "gather":
            let index = try f.input("index")
            outputs["output"] = try x("input").gather(axis: Int(f.param("dim")!), indices: index.ints, indexShape: index.shape)
        case "transpose_reshape":
            let order = (f.params["transpose"] as! [NSNumber]).map(\.intValue)
            let shape = (f.params["shape"] as! [NSNumber]).map(\.intValue)
            outputs["output"] = try x("input").transposed(order[0], order[1]).reshaped(shape)
        case "where":
            outputs["output"] = Tensor.where(try f.input("condition").tensor, try x("a"), try x("b"))
        default:
            Issue.record("\(f.name): op '\(f.op)' is not handled by the parity test")
            return
        }

        for (key, expected) in f.outputs {
            if key == "indices" {
                #expect(extraIndices == expected.ints, "\(f.name): indices")
                continue
            }
            guard let actual = outputs[key] else { Issue.record("\(f.name): no output '\(key)'"); continue }
            #expect(actual.shape == expected.shape, "\(f.name): \(key) shape \(actual.shape) vs \(expected.shape)")
            expectClose(actual.data, expected.data, tol: 2e-5, "\(f.name) \(key)")
        }
        // L = Σ sum(output · upstream): seed each output's backward with its upstream tensor.
        let terms = try f.upstream.map { key, up -> Tensor in
            guard let out = outputs[key] else { throw FixtureError.malformed(f.file, "upstream for unknown output \(key)") }
            return (out * up.tensor).sum()
        }
        let total = terms.reduce(Tensor(scalar: 0), +)
        total.backward()
        for (key, expected) in f.grads {
            guard let t = leaves[key] else { Issue.record("\(f.name): gradient for unused input \(key)"); continue }
            let g = t.grad ?? [Float](repeating: 0, count: t.count)
            expectClose(g, expected.data, tol: 2e-5, "\(f.name) d/d\(key)")
        }
    }

    func checkOptimizer(_ f: TorchFixture) throws {
        let start = try f.input("param").tensor
        let grads = try f.input("grad_sequence")
        let p = Tensor(start.data, shape: start.shape, requiresGrad: true)
        let named = [(name: "p", tensor: p)]
        let lr = Float(f.param("lr")!)
        let wd = Float(f.param("weight_decay") ?? 0)
        let optimizer: Optimizer
        switch f.params["optimizer"] as? String {
        case "SGD":
            optimizer = SGD(named, learningRate: lr, momentum: Float(f.param("momentum")!), dampening: Float(f.param("dampening")!),
                            weightDecay: wd, nesterov: f.params["nesterov"] as? Bool ?? false)
        case "RMSprop":
            optimizer = RMSprop(named, learningRate: lr, alpha: Float(f.param("alpha")!), eps: Float(f.param("eps")!),
                                weightDecay: wd, momentum: Float(f.param("momentum")!), centered: f.params["centered"] as? Bool ?? false)
        case "Adagrad":
            optimizer = Adagrad(named, learningRate: lr, lrDecay: Float(f.param("lr_decay")!), weightDecay: wd,
                                initialAccumulatorValue: Float(f.param("initial_accumulator_value")!), eps: Float(f.param("eps")!))
        case "Adam", "AdamW":
            let betas = (f.params["betas"] as! [NSNumber]).map(\.floatValue)
            let decoupled = f.params["optimizer"] as? String == "AdamW" || (f.params["decoupled_weight_decay"] as? Bool ?? false)
            optimizer = Adam(named, learningRate: lr, beta1: betas[0], beta2: betas[1], eps: Float(f.param("eps")!), weightDecay: wd,
                             amsgrad: f.params["amsgrad"] as? Bool ?? false, decoupled: decoupled)
        default:
            Issue.record("\(f.name): optimizer \(f.params["optimizer"] ?? "?") is not handled")
            return
        }
        #expect(f.params["maximize"] as? Bool != true, "\(f.name): maximize is not supported")
        let n = start.count, steps = grads.shape[0]
        for s in 0..<steps {
            p.grad = grads.data[(s * n)..<((s + 1) * n)].map { Float($0) }
            optimizer.step()
            let state = Dictionary(optimizer.stateTensors().map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
            for (key, expected) in f.outputs {
                if key == "step" {
                    #expect(Double(state["step"]!.item) == expected.data[s], "\(f.name): step")
                    continue
                }
                let row = Array(expected.data[(s * n)..<((s + 1) * n)])
                let actual = key == "param" ? p.data : state["p.\(key)"]?.data
                guard let actual else { Issue.record("\(f.name): no state '\(key)'"); continue }
                expectClose(actual, row, tol: 1e-5, "\(f.name) \(key) after step \(s + 1)")
            }
        }
    }

    func checkClipOrSchedule(_ f: TorchFixture) throws {
        switch f.op {
        case "clip_grad_norm_", "clip_grad_value_":
            let t0 = try f.input("grad_0").tensor, t1 = try f.input("grad_1").tensor
            let p0 = Tensor.zeros(t0.shape, requiresGrad: true), p1 = Tensor.zeros(t1.shape, requiresGrad: true)
            p0.grad = t0.data; p1.grad = t1.data
            if f.op == "clip_grad_norm_" {
                let norm = clipGradNorm([p0, p1], maxNorm: Float(f.param("max_norm")!))
                expectClose([norm], try f.output("total_norm").data, tol: 1e-6, "\(f.name) total_norm")
            } else {
                clipGradValue([p0, p1], clipValue: Float(f.param("clip_value")!))
            }
            expectClose(p0.grad!, try f.output("grad_0").data, tol: 1e-6, "\(f.name) grad_0")
            expectClose(p1.grad!, try f.output("grad_1").data, tol: 1e-6, "\(f.name) grad_1")
        case "cosine_annealing_lr", "linear_lr", "step_lr":
            let schedule: LearningRateSchedule = switch f.op {
            case "cosine_annealing_lr": .cosine(tMax: Int(f.param("T_max")!), etaMin: f.param("eta_min")!)
            case "linear_lr": .linear(start: f.param("start_factor")!, end: f.param("end_factor")!, totalIters: Int(f.param("total_iters")!))
            default: .step(stepSize: Int(f.param("step_size")!), gamma: f.param("gamma")!)
            }
            let expected = try f.output("lr").data
            for (k, lr) in expected.enumerated() {
                let v = schedule.value(base: f.param("lr")!, step: k)
                #expect(abs(v - lr) <= 1e-12 + 1e-9 * abs(lr), "\(f.name): lr after \(k) steps is \(v), expected \(lr)")
            }
        default:
            Issue.record("\(f.name): '\(f.op)' is not handled")
        }
    }
}
