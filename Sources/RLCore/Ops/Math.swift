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

    /// ReLU, eight lanes at a time (DQN's hidden layers): the output, and the gradient where the output is positive.
    public func relu() -> Tensor {
        let y = Tensor.lanewise(ReLULanes.self, data, data)
        return Tensor.result(y, shape: shape, inputs: [self]) { out in
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
    /// `tanhf`; see `tanhValues`), and the backward 1 − y².
    public func tanh() -> Tensor {
        let y = Tensor.tanhValues(data)
        return Tensor.result(y, shape: shape, inputs: [self]) { out in
            self.accumulateGrad(Activation.tanh.gradient(out.grad!, output: out.data))
        }
    }

    /// tanh of every value: Eigen's rational approximation p(x)/q(x) on [−7.9053, 7.9053] (±1 beyond, in Float32),
    /// x itself for |x| < 4e-4; in C, with AVX2 where the CPU has it (the same bits either way).
    static func tanhValues(_ x: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: x.count) { y, count in
            rl_tanh(x, y.baseAddress!, x.count)
            count = x.count
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

/// An element-wise function of two operands computed eight lanes at a time (a type, so that `Tensor.lanewise` is
/// specialized for it and the lane arithmetic inlined into the loop).
protocol LaneFunction {
    static func apply(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float>
}

/// ReLU of the first operand.
enum ReLULanes: LaneFunction {
    @inline(__always) static func apply(_ x: SIMD8<Float>, _: SIMD8<Float>) -> SIMD8<Float> {
        SIMD8(repeating: 0).replacing(with: x, where: x .> 0)
    }
}

/// ReLU's backward: the upstream gradient where the output is positive.
enum ReLUGradientLanes: LaneFunction {
    @inline(__always) static func apply(_ g: SIMD8<Float>, _ y: SIMD8<Float>) -> SIMD8<Float> {
        SIMD8(repeating: 0).replacing(with: g, where: y .> 0)
    }
}

extension Tensor {
    /// `F` applied to `a` and `b` (of equal count) element by element, eight lanes at a time; the last partial group
    /// goes through `F` too (zero-padded), so every element gets the same arithmetic.
    static func lanewise<F: LaneFunction>(_: F.Type, _ a: [Float], _ b: [Float]) -> [Float] {
        let n = a.count
        return [Float](unsafeUninitializedCapacity: n) { out, count in
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    let pa = UnsafeRawPointer(a.baseAddress!), pb = UnsafeRawPointer(b.baseAddress!)
                    let po = UnsafeMutableRawPointer(out.baseAddress!)
                    var i = 0
                    while i + 8 <= n {
                        let o = i * MemoryLayout<Float>.stride
                        po.storeBytes(of: F.apply(pa.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self),
                                                  pb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)),
                                      toByteOffset: o, as: SIMD8<Float>.self)
                        i += 8
                    }
                    if i < n {
                        var va = SIMD8<Float>(repeating: 0), vb = SIMD8<Float>(repeating: 0)
                        for k in 0..<(n - i) { va[k] = a[i + k]; vb[k] = b[i + k] }
                        let r = F.apply(va, vb)
                        for k in 0..<(n - i) { out[i + k] = r[k] }
                    }
                }
            }
            count = n
        }
    }
}
