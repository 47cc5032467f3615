import CKernels
import Foundation

/// An optimizer over named parameters, with PyTorch's update formulas and defaults.
///
/// State is kept per parameter name (the parameter's identity), so it can be saved to and restored from a
/// checkpoint exactly (`stateTensors` / `loadStateTensors`). Parameters whose `grad` is nil are skipped.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// The parameter tensors it updates, in order.
    var tensors: [Tensor] { get }
    /// Parameters from this index on are clipped and updated on `ForkJoin`'s helper thread (see `OptimizerBase`).
    var helperPartition: Int? { get set }
    /// Clears the gradient of every parameter it updates.
    func zeroGrad()
    /// Applies one update from the parameters' current gradients.
    func step()
    /// `clipGradNorm(tensors, maxNorm:)` followed by `step()`; the clipping runs on the cores that then update each
    /// parameter (see `OptimizerBase.withCoreSlices`). The values are the same, except that a parameter cut between
    /// the cores has its Double Σ g² taken in two parts, which may round the norm's last bit differently. Returns the
    /// norm before clipping.
    @discardableResult
    func clipGradNormAndStep(maxNorm: Float) -> Float
    /// Optimizer state as named tensors: `<param>.<state>` plus `step`.
    func stateTensors() -> [(name: String, tensor: Tensor)]
    /// Restores what `stateTensors` returned; errors name a missing or mis-shaped entry.
    func loadStateTensors(_ tensors: [(name: String, tensor: Tensor)]) throws
}

public enum OptimizerError: Error, CustomStringConvertible {
    case badState(String)
    public var description: String {
        switch self { case let .badState(m): "optimizer state: \(m)" }
    }
}

/// The shared machinery: parameters, named per-parameter state buffers, the step counter, and the loop that hands
/// every parameter's elements to an update rule (on two cores for large models).
public class OptimizerBase {
    public let parameters: [(name: String, tensor: Tensor)]
    /// The parameter tensors alone, in the same order (for `clipGradNorm` without rebuilding the list each step).
    public let tensors: [Tensor]
    public var learningRate: Float
    /// The names of the per-parameter state buffers (torch's state keys, e.g. "exp_avg").
    let bufferNames: [String]
    /// `buffers[b][i]`: state buffer `bufferNames[b]` of parameter `i`.
    let buffers: [[StateBuffer]]
    /// Number of `step()` calls so far (torch's `step` state).
    public internal(set) var stepCount = 0
    /// Splits the update between the cores by parameter instead of by size: parameters from this index on are clipped
    /// and updated on `ForkJoin`'s helper thread, the others on the caller's. An actor-critic sets it at its value
    /// network's first parameter, because the helper computed those gradients and reads those weights: each core then
    /// touches only memory it already holds. Nil: the elements are split in halves (see `forEachParameter`).
    public var helperPartition: Int?
    /// Set by `clipGradNormAndStep` for the `step()` it calls: each gradient is multiplied by it just before its
    /// update, on the core that updates it.
    var gradientScale: Float?

    init(_ parameters: [(name: String, tensor: Tensor)], learningRate: Float, buffers names: [String], initial: Float = 0) {
        precondition(learningRate >= 0, "learning rate must be non-negative, got \(learningRate)")
        self.parameters = parameters
        tensors = parameters.map(\.tensor)
        self.learningRate = learningRate
        bufferNames = names
        buffers = names.map { _ in parameters.map { StateBuffer(count: $0.tensor.count, initial: initial) } }
    }

    /// Calls `update` with the elements of every parameter that has a gradient: its values, gradient and state
    /// buffers (`state[b]` for `bufferNames[b]`), its gradient first multiplied by `gradientScale` when that is set.
    /// Elements are independent, so the work runs on two cores: split at `helperPartition` when that is set, else,
    /// with at least `ExecutionPolicy.parallelUpdateElements` elements, cut into two halves of equal size. Every element gets the same
    /// arithmetic either way.
    func forEachParameter(_ update: (ParameterSlice) -> Void) {
        let scale = gradientScale
        func run(_ part: [ParameterSlice]) {
            for slice in part {
                if let scale { for k in 0..<slice.count { slice.gradient[k] *= scale } }
                update(slice)
            }
        }
        withCoreSlices { first, second in
            if let second, ForkJoin.isParallel {
                _ = ForkJoin.both({ run(first) }, { run(second) })
            } else {
                run(first + (second ?? []))
            }
        }
    }

    /// Calls `body` with the parameters' slices cut for the two cores: at `helperPartition` when that is set, else,
    /// with at least `ExecutionPolicy.parallelUpdateElements` elements, into two halves of equal size; `second` is nil for a model
    /// too small to split. The cut does not depend on `ForkJoin.isParallel`.
    func withCoreSlices(_ body: (_ first: [ParameterSlice], _ second: [ParameterSlice]?) -> Void) {
        withSlices(from: 0, into: []) { slices in
            if let start = helperPartition {
                body(slices.filter { $0.index < start }, slices.filter { $0.index >= start })
                return
            }
            let total = slices.reduce(0) { $0 + $1.count }
            guard total >= ExecutionPolicy.parallelUpdateElements else { body(slices, nil); return }
            var first: [ParameterSlice] = [], second: [ParameterSlice] = [], filled = 0
            for slice in slices {
                let take = min(slice.count, max(0, total / 2 - filled))
                if take > 0 { first.append(slice.prefix(take)) }
                if take < slice.count { second.append(slice.dropping(take)) }
                filled += take
            }
            body(first, second)
        }
    }

    /// Collects the pointers of parameters `index...` (nested, so that every pointer stays valid) and calls `body`.
    private func withSlices(from index: Int, into slices: [ParameterSlice], _ body: ([ParameterSlice]) -> Void) {
        guard index < parameters.count else { body(slices); return }
        let tensor = parameters[index].tensor
        guard tensor.grad != nil, tensor.count > 0 else { withSlices(from: index + 1, into: slices, body); return }
        tensor.grad!.withUnsafeMutableBufferPointer { g in
            tensor.data.withUnsafeMutableBufferPointer { w in
                let slice = ParameterSlice(index: index, weights: w.baseAddress!, gradient: g.baseAddress!,
                                           state: buffers.map { $0[index].values.baseAddress! }, count: w.count)
                withSlices(from: index + 1, into: slices + [slice], body)
            }
        }
    }

    public func zeroGrad() { for p in parameters { p.tensor.zeroGrad() } }

    public func stateTensors() -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        for (i, p) in parameters.enumerated() {
            for (b, key) in bufferNames.enumerated() {
                out.append((name: "\(p.name).\(key)", tensor: Tensor(Array(buffers[b][i].values), shape: p.tensor.shape)))
            }
        }
        out.append((name: "step", tensor: Tensor(scalar: Float(stepCount))))
        return out
    }

    public func loadStateTensors(_ tensors: [(name: String, tensor: Tensor)]) throws {
        let byName = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (i, p) in parameters.enumerated() {
            for (b, key) in bufferNames.enumerated() {
                guard let t = byName["\(p.name).\(key)"] else { throw OptimizerError.badState("'\(p.name).\(key)' is missing") }
                guard t.count == p.tensor.count else {
                    throw OptimizerError.badState("'\(p.name).\(key)' has \(t.count) values, the parameter \(p.tensor.count)")
                }
                _ = buffers[b][i].values.update(fromContentsOf: t.data)
            }
        }
        guard let step = byName["step"] else { throw OptimizerError.badState("'step' is missing") }
        stepCount = Int(step.item)
    }
}

/// One state buffer of one parameter (e.g. Adam's `exp_avg` of `0.weight`) in memory of its own at a fixed address,
/// so that update loops, and the two halves of a parallel update, work on it through a pointer.
final class StateBuffer {
    let values: UnsafeMutableBufferPointer<Float>
    init(count: Int, initial: Float) {
        values = .allocate(capacity: count)
        values.initialize(repeating: initial)
    }
    deinit { values.deallocate() }
}

/// Consecutive elements of one parameter for an update rule: `count` values, their gradient and state buffers.
struct ParameterSlice: @unchecked Sendable {
    let index: Int
    let weights: UnsafeMutablePointer<Float>
    let gradient: UnsafeMutablePointer<Float>
    let state: [UnsafeMutablePointer<Float>]
    let count: Int

    func prefix(_ n: Int) -> ParameterSlice {
        ParameterSlice(index: index, weights: weights, gradient: gradient, state: state, count: n)
    }
    func dropping(_ n: Int) -> ParameterSlice {
        ParameterSlice(index: index, weights: weights + n, gradient: gradient + n, state: state.map { $0 + n }, count: count - n)
    }
}

/// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD).
public final class SGD: OptimizerBase, Optimizer {
    public let momentum, dampening, weightDecay: Float
    public let nesterov: Bool

    public init(_ parameters: [(name: String, tensor: Tensor)], learningRate: Float, momentum: Float = 0,
                dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov needs momentum > 0 and zero dampening")
        self.momentum = momentum; self.dampening = dampening; self.weightDecay = weightDecay; self.nesterov = nesterov
        super.init(parameters, learningRate: learningRate, buffers: momentum != 0 ? ["momentum_buffer"] : [])
    }

    public func step() {
        let first = stepCount == 0
        stepCount += 1
        let lr = learningRate, mu = momentum, damp = dampening, wd = weightDecay, nest = nesterov
        forEachParameter { s in
            let w = s.weights, g = s.gradient
            if mu == 0 {
                for k in 0..<s.count { w[k] -= lr * (g[k] + wd * w[k]) }
                return
            }
            let b = s.state[0]
            for k in 0..<s.count {
                let d = g[k] + wd * w[k]
                b[k] = first ? d : mu * b[k] + (1 - damp) * d
                w[k] -= lr * (nest ? d + mu * b[k] : b[k])
            }
        }
    }
}

/// RMSprop (torch.optim.RMSprop): alpha, eps, centered, momentum, weight decay.
public final class RMSprop: OptimizerBase, Optimizer {
    public let alpha, eps, momentum, weightDecay: Float
    public let centered: Bool

    public init(_ parameters: [(name: String, tensor: Tensor)], learningRate: Float = 0.01, alpha: Float = 0.99,
                eps: Float = 1e-8, weightDecay: Float = 0, momentum: Float = 0, centered: Bool = false) {
        self.alpha = alpha; self.eps = eps; self.momentum = momentum; self.weightDecay = weightDecay; self.centered = centered
        super.init(parameters, learningRate: learningRate,
                   buffers: ["square_avg"] + (centered ? ["grad_avg"] : []) + (momentum > 0 ? ["momentum_buffer"] : []))
    }

    public func step() {
        stepCount += 1
        let lr = learningRate, a = alpha, eps = eps, mu = momentum, wd = weightDecay, centered = centered
        forEachParameter { s in
            let w = s.weights, g = s.gradient, sq = s.state[0]
            let ga = centered ? s.state[1] : nil, mb = mu > 0 ? s.state[centered ? 2 : 1] : nil
            var k = 0
            if !centered && mu == 0 {
                // The common case (A2C), eight lanes at a time: v ← αv + (1−α)d², w −= lr·d / (√v + ε).
                let wp = UnsafeMutableRawPointer(w), gp = UnsafeRawPointer(g), sp = UnsafeMutableRawPointer(sq)
                while k + 8 <= s.count {
                    let o = k * MemoryLayout<Float>.stride
                    var wk = wp.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    let d = gp.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + wd * wk
                    let v = a * sp.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + (1 - a) * d * d
                    wk -= lr * d / (v.squareRoot() + eps)
                    sp.storeBytes(of: v, toByteOffset: o, as: SIMD8<Float>.self)
                    wp.storeBytes(of: wk, toByteOffset: o, as: SIMD8<Float>.self)
                    k += 8
                }
            }
            // The remaining elements (all of them when centered or with momentum), with the same arithmetic.
            while k < s.count {
                let d = g[k] + wd * w[k]
                sq[k] = a * sq[k] + (1 - a) * d * d
                var avg = sq[k]
                if let ga {
                    ga[k] = a * ga[k] + (1 - a) * d
                    avg -= ga[k] * ga[k]
                }
                let denom = avg.squareRoot() + eps
                if let mb {
                    mb[k] = mu * mb[k] + d / denom
                    w[k] -= lr * mb[k]
                } else {
                    w[k] -= lr * d / denom
                }
                k += 1
            }
        }
    }
}

/// Adagrad (torch.optim.Adagrad): lr decay, initial accumulator value, eps, weight decay.
public final class Adagrad: OptimizerBase, Optimizer {
    public let lrDecay, eps, weightDecay: Float

    public init(_ parameters: [(name: String, tensor: Tensor)], learningRate: Float = 0.01, lrDecay: Float = 0,
                weightDecay: Float = 0, initialAccumulatorValue: Float = 0, eps: Float = 1e-10) {
        self.lrDecay = lrDecay; self.eps = eps; self.weightDecay = weightDecay
        super.init(parameters, learningRate: learningRate, buffers: ["sum"], initial: initialAccumulatorValue)
    }

    public func step() {
        stepCount += 1
        let clr = learningRate / (1 + Float(stepCount - 1) * lrDecay), eps = eps, wd = weightDecay
        forEachParameter { s in
            let w = s.weights, g = s.gradient, sum = s.state[0]
            for k in 0..<s.count {
                let d = g[k] + wd * w[k]
                sum[k] += d * d
                w[k] -= clr * d / (sum[k].squareRoot() + eps)
            }
        }
    }
}

/// Adam (torch.optim.Adam, L2 weight decay added to the gradient, optional AMSGrad) and AdamW (decoupled decay).
public final class Adam: OptimizerBase, Optimizer {
    public let beta1, beta2, eps, weightDecay: Float
    public let amsgrad: Bool
    /// Decoupled weight decay (AdamW) instead of L2 added to the gradient.
    public let decoupled: Bool

    public init(_ parameters: [(name: String, tensor: Tensor)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0, amsgrad: Bool = false, decoupled: Bool = false) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        self.amsgrad = amsgrad; self.decoupled = decoupled
        super.init(parameters, learningRate: learningRate,
                   buffers: ["exp_avg", "exp_avg_sq"] + (amsgrad ? ["max_exp_avg_sq"] : []))
    }

    /// AdamW with torch's default weight decay of 0.01.
    public static func adamW(_ parameters: [(name: String, tensor: Tensor)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                             beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01, amsgrad: Bool = false) -> Adam {
        Adam(parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
             amsgrad: amsgrad, decoupled: true)
    }

    public func step() {
        stepCount += 1
        let t = Float(stepCount)
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = eps, wd = weightDecay, ams = amsgrad, decoupled = decoupled
        let bc1 = 1 - Foundation.pow(b1, t), bc2Sqrt = (1 - Foundation.pow(b2, t)).squareRoot()
        let stepSize = lr / bc1, inverseBc2Sqrt = 1 / bc2Sqrt
        let oneMinusB1 = 1 - b1, oneMinusB2 = 1 - b2
        let l2: Float = decoupled ? 0 : wd
        forEachParameter { s in
            let n = s.count, w = s.weights, g = s.gradient, m = s.state[0], v = s.state[1]
            if decoupled && wd != 0 {
                let decay = 1 - lr * wd
                for k in 0..<n { w[k] *= decay }
            }
            if ams {
                let vmax = s.state[2]
                for k in 0..<n {
                    let d = g[k] + l2 * w[k]
                    m[k] = b1 * m[k] + oneMinusB1 * d
                    v[k] = b2 * v[k] + oneMinusB2 * d * d
                    vmax[k] = max(vmax[k], v[k])
                    w[k] -= stepSize * m[k] / (vmax[k].squareRoot() / bc2Sqrt + eps)
                }
                return
            }
            // The moments and the update in one pass (in C, with AVX2 where the CPU has it):
            // d = g + λw, m ← β₁m + (1−β₁)d, v ← β₂v + (1−β₂)d², w −= stepSize · m / (√v / √(1 − β₂ᵗ) + ε).
            rl_adam(w, g, m, v, n, l2, b1, oneMinusB1, b2, oneMinusB2, stepSize, inverseBc2Sqrt, eps)
        }
    }
}

// MARK: - Gradient clipping and penalties

/// Scales all gradients so their global L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_:
/// coefficient max_norm / (norm + 1e-6), clamped to 1). Returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    let (norm, coefficient) = clipCoefficient(squaredNorms(parameters[...]), maxNorm: maxNorm)
    if let coefficient {
        for p in parameters where p.grad != nil {
            p.grad!.withUnsafeMutableBufferPointer { g in for k in 0..<g.count { g[k] *= coefficient } }
        }
    }
    return norm
}

extension Optimizer where Self: OptimizerBase {
    @discardableResult
    public func clipGradNormAndStep(maxNorm: Float) -> Float {
        // Σ g² of each slice, on the core that then updates it (see `withCoreSlices`), so that each core reads only
        // the gradients it will update.
        var squares: [Double] = []
        withCoreSlices { first, second in
            func sums(_ slices: [ParameterSlice]) -> [Double] {
                slices.map { sumOfSquares(UnsafeBufferPointer(start: $0.gradient, count: $0.count)) }
            }
            guard let second else { squares = sums(first); return }
            let (a, b) = ForkJoin.both({ sums(first) }, { sums(second) })
            squares = a + b
        }
        let (norm, coefficient) = clipCoefficient(squares, maxNorm: maxNorm)
        gradientScale = coefficient
        defer { gradientScale = nil }
        step()
        return norm
    }
}

/// Each parameter's Σ g² (0 without a gradient), in order.
func squaredNorms(_ parameters: ArraySlice<Tensor>) -> [Double] {
    parameters.map { $0.grad?.withUnsafeBufferPointer(sumOfSquares) ?? 0 }
}

/// The global norm from each parameter's Σ g² (summed in order), and the factor that brings it to `maxNorm`, nil
/// when it is already within.
func clipCoefficient(_ squares: [Double], maxNorm: Float) -> (norm: Float, coefficient: Float?) {
    var total: Double = 0
    for s in squares { total += s }
    let norm = Float(total.squareRoot())
    let coefficient = maxNorm / (norm + 1e-6)
    return (norm, coefficient < 1 ? coefficient : nil)
}

/// Σ v² in Double, accumulated in four independent vectors of eight lanes, so the loop runs at SIMD speed instead of
/// waiting on one running sum (with one vector the loop is bound by the latency of its own additions).
func sumOfSquares(_ values: UnsafeBufferPointer<Float>) -> Double {
    let n = values.count
    guard n > 0 else { return 0 }
    let base = UnsafeRawPointer(values.baseAddress!)
    func squares(at k: Int) -> SIMD8<Double> {
        let v = SIMD8<Double>(base.loadUnaligned(fromByteOffset: k * MemoryLayout<Float>.stride, as: SIMD8<Float>.self))
        return v * v
    }
    var a = SIMD8<Double>(repeating: 0), b = a, c = a, d = a
    var k = 0
    while k + 32 <= n {
        a += squares(at: k); b += squares(at: k + 8); c += squares(at: k + 16); d += squares(at: k + 24)
        k += 32
    }
    while k + 8 <= n {
        a += squares(at: k)
        k += 8
    }
    var total = ((a + b) + (c + d)).sum()
    while k < n {
        total += Double(values[k]) * Double(values[k])
        k += 1
    }
    return total
}

/// Clamps every gradient element to `[-clipValue, clipValue]` (torch.nn.utils.clip_grad_value_).
public func clipGradValue(_ parameters: [Tensor], clipValue: Float) {
    for p in parameters where p.grad != nil {
        p.grad!.withUnsafeMutableBufferPointer { g in for k in 0..<g.count { g[k] = min(max(g[k], -clipValue), clipValue) } }
    }
}

/// λ·Σ|w| over the parameters, as a differentiable loss term (L1 penalty).
public func l1Penalty(_ parameters: [Tensor], lambda: Float) -> Tensor {
    parameters.map { $0.abs().sum() }.reduce(Tensor(scalar: 0), +) * lambda
}

/// λ·Σw² over the parameters, as a differentiable loss term (L2 penalty).
public func l2Penalty(_ parameters: [Tensor], lambda: Float) -> Tensor {
    parameters.map { $0.square().sum() }.reduce(Tensor(scalar: 0), +) * lambda
}
