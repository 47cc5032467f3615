import CKernels
import Foundation

/// Element-wise math and activations. Each op's gradient is its `derivative(x, y)` beside the forward.
extension Tensor {
    public func exp() -> Tensor { Tensor.unary(self, { Foundation.exp($0) }, derivative: { _, y in y }) }
    public func log() -> Tensor { Tensor.unary(self, { Foundation.log($0) }, derivative: { x, _ in 1 / x }) }
    public func sqrt() -> Tensor { Tensor.unary(self, { $0.squareRoot() }, derivative: { _, y in 0.5 / y }) }
    public func abs() -> Tensor {
        Tensor.unary(self, { Swift.abs($0) }, derivative: { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) })
    }
    public func square() -> Tensor { Tensor.unary(self, { $0 * $0 }, derivative: { x, _ in 2 * x }) }

    /// `self ** p` for a scalar exponent.
    public func pow(_ p: Float) -> Tensor {
        Tensor.unary(self, { Foundation.pow($0, p) }, derivative: { x, _ in p * Foundation.pow(x, p - 1) })
    }

    /// Element-wise `self ** exponent` with broadcasting.
    public func pow(_ exponent: Tensor) -> Tensor {
        Tensor.broadcasting(self, exponent, "pow", { Foundation.pow($0, $1) },
                            dA: { x, p, g in g * p * Foundation.pow(x, p - 1) },
                            dB: { x, p, g in x > 0 ? g * Foundation.pow(x, p) * Foundation.log(x) : 0 })
    }

    /// Clamps to `[min, max]` (either bound optional). As PyTorch 2.x, the gradient passes strictly inside
    /// the bounds and is 0 at and beyond them.
    public func clamped(min lo: Float? = nil, max hi: Float? = nil) -> Tensor {
        let lower = lo ?? -.infinity, upper = hi ?? .infinity
        return Tensor.unary(self, { Swift.min(Swift.max($0, lower), upper) },
                            derivative: { x, _ in x > lower && x < upper ? 1 : 0 })
    }

    /// Element-wise minimum with broadcasting; ties send the gradient to both (PyTorch splits it in half).
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        broadcasting(a, b, "minimum", { Swift.min($0, $1) },
                     dA: { x, y, g in x < y ? g : (x == y ? g / 2 : 0) },
                     dB: { x, y, g in y < x ? g : (x == y ? g / 2 : 0) })
    }

    /// Element-wise maximum with broadcasting; ties split the gradient as PyTorch does.
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        broadcasting(a, b, "maximum", { Swift.max($0, $1) },
                     dA: { x, y, g in x > y ? g : (x == y ? g / 2 : 0) },
                     dB: { x, y, g in y > x ? g : (x == y ? g / 2 : 0) })
    }

    // MARK: Activations

    /// ReLU (DQN's hidden layers): the output, and the gradient where the output is positive (`rl_relu`).
    public func relu() -> Tensor {
        Tensor.result(Activation.relu.values(data), shape: shape, inputs: [self]) { out in
            self.accumulateGrad(Activation.relu.gradient(out.grad!, output: out.data))
        }
    }

    public func leakyRelu(_ slope: Float = 0.01) -> Tensor {
        Tensor.unary(self, { $0 > 0 ? $0 : slope * $0 }, derivative: { x, _ in x > 0 ? 1 : slope })
    }

    /// ELU; at 0 the gradient is `alpha` (PyTorch takes the x ≤ 0 branch).
    public func elu(_ alpha: Float = 1) -> Tensor {
        Tensor.unary(self, { $0 > 0 ? $0 : alpha * (Foundation.exp($0) - 1) },
                     derivative: { x, _ in x > 0 ? 1 : alpha * Foundation.exp(x) })
    }

    public func sigmoid() -> Tensor {
        Tensor.unary(self, { x in x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x)) },
                     derivative: { _, y in y * (1 - y) })
    }

    /// tanh, the workhorse of RL networks: a rational approximation (accurate to a few ulp, far faster than libm's
    /// `tanhf`; see `rl_tanh`), and the backward 1 − y².
    public func tanh() -> Tensor {
        Tensor.result(Activation.tanh.values(data), shape: shape, inputs: [self]) { out in
            self.accumulateGrad(Activation.tanh.gradient(out.grad!, output: out.data))
        }
    }

    /// softplus(x) = log(1 + exp(βx)) / β, and x itself where βx > threshold (strictly), as PyTorch.
    public func softplus(beta: Float = 1, threshold: Float = 20) -> Tensor {
        Tensor.unary(self, { x in beta * x > threshold ? x : Foundation.log1p(Foundation.exp(beta * x)) / beta },
                     derivative: { x, _ in
                         if beta * x > threshold { return 1 }
                         let z = Foundation.exp(beta * x)
                         return z / (1 + z)
                     })
    }

    /// log σ(x), computed stably.
    public func logSigmoid() -> Tensor {
        Tensor.unary(self, { x in Swift.min(x, 0) - Foundation.log1p(Foundation.exp(-Swift.abs(x))) },
                     derivative: { x, _ in 1 / (1 + Foundation.exp(x)) })
    }
}

extension Tensor {
    /// A new array of `x.count` values written by an element-wise C kernel (`rl_relu`, `rl_tanh`).
    static func kernel(_ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void, _ x: [Float]) -> [Float] {
        guard !x.isEmpty else { return [] }
        return [Float](unsafeUninitializedCapacity: x.count) { out, count in
            x.withUnsafeBufferPointer { body($0.baseAddress!, out.baseAddress!, x.count) }
            count = x.count
        }
    }

    /// A new array of `a.count` values written by an element-wise C kernel of two operands (`rl_relu_backward`).
    static func kernel(_ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
                       _ a: [Float], _ b: [Float]) -> [Float] {
        precondition(a.count == b.count, "element-wise kernel: \(a.count) and \(b.count) values")
        guard !a.isEmpty else { return [] }
        return [Float](unsafeUninitializedCapacity: a.count) { out, count in
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in body(a.baseAddress!, b.baseAddress!, out.baseAddress!, a.count) }
            }
            count = a.count
        }
    }

    /// An element-wise C kernel of one operand run over `x` in place (its output written over its input).
    static func kernelInPlace(_ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void, _ x: inout [Float]) {
        x.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            body(base, base, p.count)
        }
    }

    /// An element-wise C kernel of two operands whose output is written over the first (`rl_relu_backward` over `g`).
    static func kernelInPlace(_ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
                              _ a: inout [Float], _ b: [Float]) {
        precondition(a.count == b.count, "element-wise kernel: \(a.count) and \(b.count) values")
        a.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            b.withUnsafeBufferPointer { body(base, $0.baseAddress!, base, p.count) }
        }
    }
}
