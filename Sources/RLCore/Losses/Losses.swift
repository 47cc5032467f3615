import Foundation

/// How a loss reduces per-element values.
public enum Reduction: Sendable { case mean, sum, none }

/// Fused losses with hand-written gradients: one graph node each, stable for extreme inputs.
/// Formulas and conventions follow PyTorch (see the notes on each).

/// A loss node from per-element values and per-element derivatives w.r.t. the input (and optionally the target).
private func reduceLoss(_ values: [Float], shape: [Int], _ reduction: Reduction, input: Tensor, dInput: [Float],
                        target: Tensor? = nil, dTarget: [Float]? = nil, divisor: Float? = nil) -> Tensor {
    let scale: Float = reduction == .mean ? 1 / (divisor ?? Float(max(values.count, 1))) : 1
    let inputs = [input] + (target.map { [$0] } ?? [])
    if reduction == .none {
        return Tensor.result(values, shape: shape, inputs: inputs) { out in
            let g = out.grad!
            input.accumulateGrad((0..<g.count).map { g[$0] * dInput[$0] })
            if let target, let dTarget, target.requiresGrad { target.accumulateGrad((0..<g.count).map { g[$0] * dTarget[$0] }) }
        }
    }
    let total = values.reduce(0, +) * scale
    return Tensor.result([total], shape: [], inputs: inputs) { out in
        let g = out.grad![0] * scale
        input.accumulateGrad(dInput.map { $0 * g })
        if let target, let dTarget, target.requiresGrad { target.accumulateGrad(dTarget.map { $0 * g }) }
    }
}

private func checkSameShape(_ a: Tensor, _ b: Tensor, _ op: String) {
    precondition(a.shape == b.shape, "\(op): input \(a.shape) and target \(b.shape) differ")
}

/// Mean squared error. Differentiable in both input and target.
public func mseLoss(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    checkSameShape(input, target, "mseLoss")
    let d = zip(input.data, target.data).map { $0 - $1 }
    return reduceLoss(d.map { $0 * $0 }, shape: input.shape, reduction, input: input, dInput: d.map { 2 * $0 },
                      target: target, dTarget: d.map { -2 * $0 })
}

/// Huber loss (PyTorch `huber_loss`): 0.5·d² if |d| < δ, else δ·(|d| − 0.5·δ).
public func huberLoss(_ input: Tensor, _ target: Tensor, delta: Float = 1, reduction: Reduction = .mean) -> Tensor {
    checkSameShape(input, target, "huberLoss")
    let d = zip(input.data, target.data).map { $0 - $1 }
    let values = d.map { abs($0) < delta ? 0.5 * $0 * $0 : delta * (abs($0) - 0.5 * delta) }
    let grads = d.map { abs($0) < delta ? $0 : delta * ($0 > 0 ? 1 : -1) }
    return reduceLoss(values, shape: input.shape, reduction, input: input, dInput: grads,
                      target: target, dTarget: grads.map { -$0 })
}

/// Smooth L1 loss (PyTorch `smooth_l1_loss`): 0.5·d²/β if |d| < β, else |d| − 0.5·β. Equals Huber/β.
public func smoothL1Loss(_ input: Tensor, _ target: Tensor, beta: Float = 1, reduction: Reduction = .mean) -> Tensor {
    checkSameShape(input, target, "smoothL1Loss")
    let d = zip(input.data, target.data).map { $0 - $1 }
    let values = d.map { abs($0) < beta ? 0.5 * $0 * $0 / beta : abs($0) - 0.5 * beta }
    let grads = d.map { abs($0) < beta ? $0 / beta : ($0 > 0 ? 1 : -1) }
    return reduceLoss(values, shape: input.shape, reduction, input: input, dInput: grads,
                      target: target, dTarget: grads.map { -$0 })
}

/// Cross-entropy of logits `[n, classes]` against integer labels; 'mean' divides by n.
public func crossEntropyLoss(_ logits: Tensor, labels: [Int], reduction: Reduction = .mean) -> Tensor {
    precondition(logits.rank == 2 && logits.shape[0] == labels.count, "crossEntropyLoss: logits \(logits.shape), \(labels.count) labels")
    let n = logits.shape[0], c = logits.shape[1]
    var values = [Float](repeating: 0, count: n)
    var grads = [Float](repeating: 0, count: n * c)
    for i in 0..<n {
        precondition(labels[i] >= 0 && labels[i] < c, "label \(labels[i]) outside 0..<\(c)")
        let row = logits.data[(i * c)..<((i + 1) * c)]
        let m = row.max()!
        let s = row.reduce(Float(0)) { $0 + exp($1 - m) }
        let lse = log(s)
        values[i] = -((logits.data[i * c + labels[i]] - m) - lse)
        for j in 0..<c { grads[i * c + j] = exp(logits.data[i * c + j] - m) / s - (j == labels[i] ? 1 : 0) }
    }
    if reduction == .none {
        return Tensor.result(values, shape: [n], inputs: [logits]) { out in
            let g = out.grad!
            logits.accumulateGrad((0..<(n * c)).map { grads[$0] * g[$0 / c] })
        }
    }
    return reduceLoss(values, shape: [n], reduction, input: logits, dInput: grads, divisor: Float(n))
}

/// Binary cross-entropy with logits: (1 − t)·x − log σ(x), stable for any x. Differentiable in the target too
/// (d/dt = −x), as PyTorch.
///
/// One pass computes each element's value and input derivative σ(x) − t from one exponential e = exp(−|x|)
/// (log σ(x) = min(x, 0) − log1p(e); σ(x) = 1/(1 + e) for x ≥ 0, e/(1 + e) below: the values of the textbook
/// formulas, bit for bit). Large inputs (a VAE's 100k pixels) split over the two cores; the sum stays in order.
public func binaryCrossEntropyWithLogits(_ logits: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    checkSameShape(logits, target, "binaryCrossEntropyWithLogits")
    let n = logits.count
    var values = [Float](repeating: 0, count: n), dInput = [Float](repeating: 0, count: n)
    logits.data.withUnsafeBufferPointer { x in target.data.withUnsafeBufferPointer { t in
        values.withUnsafeMutableBufferPointer { v in dInput.withUnsafeMutableBufferPointer { d in
            func elements(_ range: Range<Int>) {
                for i in range {
                    let e = exp(-abs(x[i]))
                    let logSigmoid = min(x[i], 0) - log1p(e)
                    v[i] = (1 - t[i]) * x[i] - logSigmoid
                    d[i] = (x[i] >= 0 ? 1 / (1 + e) : e / (1 + e)) - t[i]
                }
            }
            if n >= 1 << 14 { _ = ForkJoin.both({ elements(0..<(n / 2)) }, { elements((n / 2)..<n) }) } else { elements(0..<n) }
        } }
    } }
    return reduceLoss(values, shape: logits.shape, reduction, input: logits, dInput: dInput,
                      target: target, dTarget: target.requiresGrad ? logits.data.map { -$0 } : nil)
}

/// Multiclass hinge loss (PyTorch `multi_margin_loss`, p = 1): per sample Σ_{j≠y} max(0, margin − x_y + x_j) / C.
public func multiMarginLoss(_ input: Tensor, labels: [Int], margin: Float = 1, reduction: Reduction = .mean) -> Tensor {
    precondition(input.rank == 2 && input.shape[0] == labels.count, "multiMarginLoss: input \(input.shape), \(labels.count) labels")
    let n = input.shape[0], c = input.shape[1]
    var values = [Float](repeating: 0, count: n)
    var grads = [Float](repeating: 0, count: n * c)
    for i in 0..<n {
        let y = labels[i]
        for j in 0..<c where j != y {
            let z = margin - input.data[i * c + y] + input.data[i * c + j]
            if z > 0 {
                values[i] += z / Float(c)
                grads[i * c + j] += 1 / Float(c)
                grads[i * c + y] -= 1 / Float(c)
            }
        }
    }
    return reduceLoss(values, shape: [n], reduction, input: input, dInput: grads, divisor: Float(n))
}

/// Sigmoid focal loss (Lin et al. 2017; torchvision's formula): α_t · BCE · (1 − p_t)^γ, reduced over all elements.
public func sigmoidFocalLoss(_ logits: Tensor, _ target: Tensor, alpha: Float = 0.25, gamma: Float = 2,
                             reduction: Reduction = .mean) -> Tensor {
    checkSameShape(logits, target, "sigmoidFocalLoss")
    let p = logits.sigmoid()
    let ce = binaryCrossEntropyWithLogits(logits, target.detached(), reduction: .none)
    let t = target.detached()
    let pt = p * t + (1 - p) * (1 - t)
    let alphaT = t * alpha + (1 - t) * (1 - alpha)
    let loss = alphaT * ce * (1 - pt).pow(gamma)
    switch reduction {
    case .mean: return loss.mean()
    case .sum: return loss.sum()
    case .none: return loss
    }
}

/// KL(N(μ, exp(logvar)) ‖ N(0, I)): per-sample −0.5 Σ (1 + logvar − μ² − exp(logvar)), then the batch mean.
public func gaussianKLLoss(mean mu: Tensor, logVariance logvar: Tensor) -> Tensor {
    checkSameShape(mu, logvar, "gaussianKLLoss")
    let perSample = (1 + logvar - mu * mu - logvar.exp()).sum(axis: 1) * -0.5
    return perSample.mean()
}

/// PPO's clipped surrogate objective as a loss (Schulman et al., 2017):
///   L = −mean_i min(r_i·Â_i, clip(r_i, 1 − ε, 1 + ε)·Â_i),  r_i = exp(log π(a_i|s_i) − log π_old(a_i|s_i)).
/// Differentiable in `logProb` only. One graph node with exactly the values and gradients of the composition
/// `-minimum(A * r, A * r.clamped(…)).mean()` (a zero gradient may differ in sign): `minimum` splits the gradient on
/// ties (r inside the clip range) and `clamp` passes it strictly inside its bounds, as PyTorch's ops do.
public func clippedSurrogateLoss(logProb: Tensor, oldLogProb: Tensor, advantages: Tensor, clipRange: Float) -> Tensor {
    precondition(logProb.rank == 1 && oldLogProb.shape == logProb.shape && advantages.shape == logProb.shape,
                 "clippedSurrogateLoss: logProb \(logProb.shape), oldLogProb \(oldLogProb.shape) and advantages "
                 + "\(advantages.shape) must be the same [n]")
    let n = logProb.count
    let low = 1 - clipRange, high = 1 + clipRange
    let ratio = zip(logProb.data, oldLogProb.data).map { Foundation.exp($0 - $1) }
    let a = advantages.data
    var total: Float = 0
    for i in 0..<n { total += min(a[i] * ratio[i], a[i] * min(max(ratio[i], low), high)) }
    let scale = 1 / Float(max(n, 1))
    return Tensor.result([total * scale * -1], shape: [], inputs: [logProb]) { out in
        // d/dm_i of −mean(m), then through min (split on ties), the products with Â, clamp, and exp.
        let g = out.grad![0] * -1 * scale
        logProb.accumulateGrad((0..<n).map { i in
            let r = ratio[i], unclipped = a[i] * r, clipped = a[i] * min(max(r, low), high)
            let gUnclipped: Float = unclipped < clipped ? g : (unclipped == clipped ? g / 2 : 0)
            let gClipped: Float = clipped < unclipped ? g : (unclipped == clipped ? g / 2 : 0)
            let gRatio = gUnclipped * a[i] + gClipped * a[i] * (r > low && r < high ? 1 : 0)
            return gRatio * r
        })
    }
}
