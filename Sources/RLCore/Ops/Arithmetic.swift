/// Broadcasting elementwise arithmetic: `+ - * /` between tensors and with scalars.

extension Tensor {
    /// The element-wise combination of `a` and `b` under broadcasting, with its gradients.
    /// `dA(a, b, g)` and `dB(a, b, g)` give the gradient contribution for one element pair.
    @inline(__always)
    static func broadcasting(_ a: Tensor, _ b: Tensor, _ op: String,
                             _ f: @escaping (Float, Float) -> Float,
                             dA: @escaping (Float, Float, Float) -> Float,
                             dB: @escaping (Float, Float, Float) -> Float) -> Tensor {
        guard let outShape = Broadcast.shape(a.shape, b.shape) else {
            preconditionFailure("\(op): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let total = outShape.reduce(1, *)
        let sa = Broadcast.strides(of: a.shape, in: outShape)
        let sb = Broadcast.strides(of: b.shape, in: outShape)
        let out = [Float](unsafeUninitializedCapacity: total) { o, n in
            a.data.withUnsafeBufferPointer { x in
                b.data.withUnsafeBufferPointer { y in
                    if a.shape == b.shape {
                        for i in 0..<total { o[i] = f(x[i], y[i]) }
                    } else if b.count == 1 {
                        let s = y[0]
                        for i in 0..<total { o[i] = f(x[i], s) }
                    } else if a.count == 1 {
                        let s = x[0]
                        for i in 0..<total { o[i] = f(s, y[i]) }
                    } else {
                        Broadcast.forEach(outShape, sa, sb) { i, ia, ib in o[i] = f(x[ia], y[ib]) }
                    }
                }
            }
            n = total
        }
        return result(out, shape: outShape, inputs: [a, b]) { result in
            let g = result.grad!
            var ga = a.requiresGrad ? [Float](repeating: 0, count: a.count) : []
            var gb = b.requiresGrad ? [Float](repeating: 0, count: b.count) : []
            a.data.withUnsafeBufferPointer { x in
                b.data.withUnsafeBufferPointer { y in
                    g.withUnsafeBufferPointer { g in
                        ga.withUnsafeMutableBufferPointer { ga in
                            gb.withUnsafeMutableBufferPointer { gb in
                                if a.shape == b.shape {
                                    // Element i of the output is element i of both inputs: no index arithmetic.
                                    if !ga.isEmpty { for i in 0..<total { ga[i] += dA(x[i], y[i], g[i]) } }
                                    if !gb.isEmpty { for i in 0..<total { gb[i] += dB(x[i], y[i], g[i]) } }
                                } else {
                                    Broadcast.forEach(outShape, sa, sb) { i, ia, ib in
                                        if !ga.isEmpty { ga[ia] += dA(x[ia], y[ib], g[i]) }
                                        if !gb.isEmpty { gb[ib] += dB(x[ia], y[ib], g[i]) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if a.requiresGrad { a.accumulateGrad(ga) }
            if b.requiresGrad { b.accumulateGrad(gb) }
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        broadcasting(a, b, "add", { $0 + $1 }, dA: { _, _, g in g }, dB: { _, _, g in g })
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        broadcasting(a, b, "sub", { $0 - $1 }, dA: { _, _, g in g }, dB: { _, _, g in -g })
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        broadcasting(a, b, "mul", { $0 * $1 }, dA: { _, y, g in g * y }, dB: { x, _, g in g * x })
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        broadcasting(a, b, "div", { $0 / $1 }, dA: { _, y, g in g / y }, dB: { x, y, g in -g * x / (y * y) })
    }

    public static func + (a: Tensor, s: Float) -> Tensor { a + Tensor(scalar: s) }
    public static func + (s: Float, a: Tensor) -> Tensor { Tensor(scalar: s) + a }
    public static func - (a: Tensor, s: Float) -> Tensor { a - Tensor(scalar: s) }
    public static func - (s: Float, a: Tensor) -> Tensor { Tensor(scalar: s) - a }
    public static func * (a: Tensor, s: Float) -> Tensor { a * Tensor(scalar: s) }
    public static func * (s: Float, a: Tensor) -> Tensor { Tensor(scalar: s) * a }
    public static func / (a: Tensor, s: Float) -> Tensor { a / Tensor(scalar: s) }
    public static func / (s: Float, a: Tensor) -> Tensor { Tensor(scalar: s) / a }
    public static prefix func - (a: Tensor) -> Tensor { a * -1 }
}

extension Tensor {
    /// Applies `f` element-wise; `derivative(x, y)` is dy/dx given input x and output y.
    /// The building block of the unary math ops and activations.
    @inline(__always)
    public static func unary(_ x: Tensor, _ f: (Float) -> Float,
                             derivative: @escaping (_ x: Float, _ y: Float) -> Float) -> Tensor {
        let n = x.count
        let y = [Float](unsafeUninitializedCapacity: n) { o, c in
            x.data.withUnsafeBufferPointer { xs in for i in 0..<n { o[i] = f(xs[i]) } }
            c = n
        }
        return result(y, shape: x.shape, inputs: [x]) { out in
            let g = out.grad!
            let gx = [Float](unsafeUninitializedCapacity: n) { o, c in
                x.data.withUnsafeBufferPointer { xs in
                    out.data.withUnsafeBufferPointer { ys in
                        g.withUnsafeBufferPointer { gs in
                            for i in 0..<n { o[i] = gs[i] * derivative(xs[i], ys[i]) }
                        }
                    }
                }
                c = n
            }
            x.accumulateGrad(gx)
        }
    }
}
