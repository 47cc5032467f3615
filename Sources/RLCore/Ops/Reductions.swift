import Foundation

/// Sums, means, maxima and log-sum-exp, over all elements or along one axis.
extension Tensor {
    /// Resolves a possibly negative axis.
    @inlinable
    func axisIndex(_ axis: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "axis \(axis) out of range for shape \(shape)")
        return a
    }

    /// The (outer, length, inner) decomposition of the shape around `axis`.
    @inlinable
    func split(at axis: Int) -> (outer: Int, length: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// The shape after reducing `axis`.
    func reducedShape(_ axis: Int, keepDims: Bool) -> [Int] {
        var s = shape
        if keepDims { s[axis] = 1 } else { s.remove(at: axis) }
        return s
    }

    /// The sum of all elements, as a scalar.
    public func sum() -> Tensor {
        var total: Float = 0
        data.withUnsafeBufferPointer { for v in $0 { total += v } }
        let n = count
        return Tensor.result([total], shape: [], inputs: [self]) { out in
            self.accumulateGrad([Float](repeating: out.grad![0], count: n))
        }
    }

    /// The mean of all elements, as a scalar.
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// The sum along `axis`.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor {
        let ax = axisIndex(axis)
        let (outer, length, inner) = split(at: ax)
        var out = [Float](repeating: 0, count: outer * inner)
        data.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<outer {
                    for k in 0..<length {
                        let base = (i * length + k) * inner
                        for j in 0..<inner { o[i * inner + j] += x[base + j] }
                    }
                }
            }
        }
        return Tensor.result(out, shape: reducedShape(ax, keepDims: keepDims), inputs: [self]) { result in
            let g = result.grad!
            var gx = [Float](repeating: 0, count: outer * length * inner)
            gx.withUnsafeMutableBufferPointer { gx in
                for i in 0..<outer { for k in 0..<length { for j in 0..<inner {
                    gx[(i * length + k) * inner + j] = g[i * inner + j]
                } } }
            }
            self.accumulateGrad(gx)
        }
    }

    /// The mean along `axis`.
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor {
        sum(axis: axis, keepDims: keepDims) * (1 / Float(shape[axisIndex(axis)]))
    }

    /// The maximum along `axis` and its index (the first one on ties); the gradient flows to that index.
    public func max(axis: Int, keepDims: Bool = false) -> (values: Tensor, indices: [Int]) {
        let ax = axisIndex(axis)
        let (outer, length, inner) = split(at: ax)
        precondition(length > 0, "max over an empty axis")
        var values = [Float](repeating: 0, count: outer * inner)
        var indices = [Int](repeating: 0, count: outer * inner)
        data.withUnsafeBufferPointer { x in
            for i in 0..<outer {
                for j in 0..<inner {
                    var best = x[i * length * inner + j], at = 0
                    for k in 1..<length where x[(i * length + k) * inner + j] > best {
                        best = x[(i * length + k) * inner + j]; at = k
                    }
                    values[i * inner + j] = best
                    indices[i * inner + j] = at
                }
            }
        }
        let out = Tensor.result(values, shape: reducedShape(ax, keepDims: keepDims), inputs: [self]) { result in
            let g = result.grad!
            var gx = [Float](repeating: 0, count: outer * length * inner)
            for i in 0..<outer { for j in 0..<inner {
                gx[(i * length + indices[i * inner + j]) * inner + j] = g[i * inner + j]
            } }
            self.accumulateGrad(gx)
        }
        return (out, indices)
    }

    /// The index of the maximum along `axis` (first on ties), as integers.
    public func argmax(axis: Int) -> [Int] { Tensor.withoutGrad { max(axis: axis).indices } }

    /// The 1-D lanes along `axis`, in row-major order of the other dimensions, each as (first index, stride): the
    /// walk that the softmax family shares. Lane `i·inner + j` starts at `i·length·inner + j`.
    @inlinable
    func lanes(along axis: Int) -> (count: Int, length: Int, stride: Int) {
        let (outer, length, inner) = split(at: axis)
        return (outer * inner, length, inner)
    }

    /// The first index of lane `lane` of `lanes(along:)`.
    @inlinable
    static func laneStart(_ lane: Int, length: Int, stride: Int) -> Int { (lane / stride) * length * stride + lane % stride }

    /// The maximum of the `length` values `stride` apart from `x[start]` (−∞ for none).
    @inline(__always)
    static func laneMax(_ x: UnsafeBufferPointer<Float>, _ start: Int, _ length: Int, _ stride: Int) -> Float {
        var m = -Float.infinity
        for k in 0..<length { m = Swift.max(m, x[start + k * stride]) }
        return m
    }

    /// Values of this tensor's shape, lane by lane along `axis`: `body(x, y, start, length, stride)` reads the lane
    /// starting at `x[start]` and writes the same positions of `y` (zeros until written).
    @inline(__always)
    func mapLanes(along axis: Int,
                  _ body: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>, Int, Int, Int) -> Void) -> [Float] {
        let (lanes, length, stride) = lanes(along: axis)
        var y = [Float](repeating: 0, count: count)
        data.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                for lane in 0..<lanes { body(x, y, Tensor.laneStart(lane, length: length, stride: stride), length, stride) }
            }
        }
        return y
    }

    /// Σ exp(x − m) over the lane, summed in order; `each(index, exp(x[index] − m))` sees every term (softmax keeps
    /// them).
    @inline(__always)
    static func laneExpSum(_ x: UnsafeBufferPointer<Float>, _ start: Int, _ length: Int, _ stride: Int, minus m: Float,
                           _ each: (Int, Float) -> Void = { _, _ in }) -> Float {
        var s: Float = 0
        for k in 0..<length {
            let e = Foundation.exp(x[start + k * stride] - m)
            each(start + k * stride, e)
            s += e
        }
        return s
    }

    /// log Σ exp along `axis`, computed as max + log Σ exp(x − max) so large inputs do not overflow.
    public func logSumExp(axis: Int, keepDims: Bool = false) -> Tensor {
        let ax = axisIndex(axis)
        let (lanes, length, stride) = lanes(along: ax)
        var out = [Float](repeating: 0, count: lanes)
        data.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { out in
                for lane in 0..<lanes {
                    let start = Tensor.laneStart(lane, length: length, stride: stride)
                    let m = Tensor.laneMax(x, start, length, stride)
                    if !m.isFinite { out[lane] = m; continue }
                    out[lane] = m + Foundation.log(Tensor.laneExpSum(x, start, length, stride, minus: m))
                }
            }
        }
        return Tensor.result(out, shape: reducedShape(ax, keepDims: keepDims), inputs: [self]) { result in
            let g = result.grad!
            var gx = [Float](repeating: 0, count: lanes * length)
            self.data.withUnsafeBufferPointer { x in
                gx.withUnsafeMutableBufferPointer { gx in
                    for lane in 0..<lanes {
                        let start = Tensor.laneStart(lane, length: length, stride: stride)
                        for k in 0..<length {
                            let idx = start + k * stride
                            gx[idx] = g[lane] * Foundation.exp(x[idx] - out[lane])
                        }
                    }
                }
            }
            self.accumulateGrad(gx)
        }
    }

    /// softmax along `axis` (max-subtracted).
    public func softmax(axis: Int = -1) -> Tensor {
        let (lanes, length, stride) = lanes(along: axisIndex(axis))
        let y = mapLanes(along: axisIndex(axis)) { x, y, start, length, stride in
            let s = Tensor.laneExpSum(x, start, length, stride, minus: Tensor.laneMax(x, start, length, stride)) { y[$0] = $1 }
            for k in 0..<length { y[start + k * stride] /= s }
        }
        return Tensor.result(y, shape: shape, inputs: [self]) { out in
            let g = out.grad!
            var gx = [Float](repeating: 0, count: y.count)
            gx.withUnsafeMutableBufferPointer { gx in
                for lane in 0..<lanes {
                    let start = Tensor.laneStart(lane, length: length, stride: stride)
                    var dot: Float = 0
                    for k in 0..<length { let idx = start + k * stride; dot += g[idx] * y[idx] }
                    for k in 0..<length { let idx = start + k * stride; gx[idx] = y[idx] * (g[idx] - dot) }
                }
            }
            self.accumulateGrad(gx)
        }
    }

    /// log-softmax along `axis`, computed as PyTorch does: (x − max) − log Σ exp(x − max).
    public func logSoftmax(axis: Int = -1) -> Tensor {
        let (lanes, length, stride) = lanes(along: axisIndex(axis))
        let y = mapLanes(along: axisIndex(axis)) { x, y, start, length, stride in
            let m = Tensor.laneMax(x, start, length, stride)
            let ls = Foundation.log(Tensor.laneExpSum(x, start, length, stride, minus: m))
            for k in 0..<length { let idx = start + k * stride; y[idx] = (x[idx] - m) - ls }
        }
        return Tensor.result(y, shape: shape, inputs: [self]) { out in
            let g = out.grad!
            var gx = [Float](repeating: 0, count: y.count)
            gx.withUnsafeMutableBufferPointer { gx in
                g.withUnsafeBufferPointer { g in
                    y.withUnsafeBufferPointer { y in
                        for lane in 0..<lanes {
                            let start = Tensor.laneStart(lane, length: length, stride: stride)
                            var total: Float = 0
                            for k in 0..<length { total += g[start + k * stride] }
                            for k in 0..<length {
                                let idx = start + k * stride
                                gx[idx] = g[idx] - Foundation.exp(y[idx]) * total
                            }
                        }
                    }
                }
            }
            self.accumulateGrad(gx)
        }
    }
}
