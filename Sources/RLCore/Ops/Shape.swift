/// Shape ops: reshape, permute/transpose, slicing, concatenation, gather, one-hot, where, comparisons.
extension Tensor {
    /// The same elements with a new shape (one dimension may be -1: inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let unknown = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != unknown }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            target[unknown] = count / known
        }
        precondition(target.reduce(1, *) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        return Tensor.result(data, shape: target, inputs: [self]) { out in self.accumulateGrad(out.grad!) }
    }

    /// Reorders the dimensions: result dimension i is input dimension `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permutation \(order) does not fit rank \(rank)")
        let outShape = order.map { shape[$0] }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let strides = order.map { inStrides[$0] }
        // out[i] = in[src[i]]
        var src = [Int](repeating: 0, count: count)
        let zero = [Int](repeating: 0, count: rank)
        Broadcast.forEach(outShape, strides, zero) { o, i, _ in src[o] = i }
        let x = data
        let out = src.map { x[$0] }
        return Tensor.result(out, shape: outShape, inputs: [self]) { result in
            let g = result.grad!
            var gx = [Float](repeating: 0, count: g.count)
            for o in 0..<g.count { gx[src[o]] = g[o] }
            self.accumulateGrad(gx)
        }
    }

    /// Swaps two dimensions (the matrix transpose for rank 2).
    public func transposed(_ a: Int = 0, _ b: Int = 1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(axisIndex(a), axisIndex(b))
        return permuted(order)
    }

    /// Elements `range` along `axis`.
    public func sliced(axis: Int, _ range: Range<Int>) -> Tensor {
        let ax = axisIndex(axis)
        let (outer, length, inner) = split(at: ax)
        precondition(range.lowerBound >= 0 && range.upperBound <= length, "slice \(range) out of bounds for axis \(ax) of \(shape)")
        let n = range.count, run = n * inner
        // Each of the `outer` runs of n·inner values copied whole.
        let out = [Float](unsafeUninitializedCapacity: outer * run) { out, count in
            data.withUnsafeBufferPointer { x in
                for i in 0..<outer where run > 0 {
                    (out.baseAddress! + i * run).initialize(from: x.baseAddress! + (i * length + range.lowerBound) * inner, count: run)
                }
            }
            count = outer * run
        }
        var outShape = shape
        outShape[ax] = n
        return Tensor.result(out, shape: outShape, inputs: [self]) { result in
            var gx = [Float](repeating: 0, count: outer * length * inner)
            result.grad!.withUnsafeBufferPointer { g in
                gx.withUnsafeMutableBufferPointer { gx in
                    for i in 0..<outer where run > 0 {
                        (gx.baseAddress! + (i * length + range.lowerBound) * inner).update(from: g.baseAddress! + i * run, count: run)
                    }
                }
            }
            self.accumulateGrad(gx)
        }
    }

    /// Joins tensors along an existing `axis`; all other dimensions must agree.
    public static func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concat of no tensors")
        let first = tensors[0]
        let ax = first.axisIndex(axis)
        for t in tensors {
            precondition(t.rank == first.rank && (0..<first.rank).allSatisfy { $0 == ax || t.shape[$0] == first.shape[$0] },
                         "concat: shapes \(tensors.map(\.shape)) differ outside axis \(ax)")
        }
        let outer = first.shape[..<ax].reduce(1, *), inner = first.shape[(ax + 1)...].reduce(1, *)
        let lengths = tensors.map { $0.shape[ax] }
        let total = lengths.reduce(0, +)
        var out = [Float](repeating: 0, count: outer * total * inner)
        var offset = 0
        for (t, len) in zip(tensors, lengths) {
            for i in 0..<outer {
                for k in 0..<(len * inner) { out[(i * total + offset) * inner + k] = t.data[i * len * inner + k] }
            }
            offset += len
        }
        var outShape = first.shape
        outShape[ax] = total
        return result(out, shape: outShape, inputs: tensors) { result in
            let g = result.grad!
            var offset = 0
            for (t, len) in zip(tensors, lengths) {
                if t.requiresGrad {
                    var gt = [Float](repeating: 0, count: outer * len * inner)
                    for i in 0..<outer {
                        for k in 0..<(len * inner) { gt[i * len * inner + k] = g[(i * total + offset) * inner + k] }
                    }
                    t.accumulateGrad(gt)
                }
                offset += len
            }
        }
    }

    /// Stacks equally shaped tensors along a new `axis`.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stack of no tensors")
        let shape = tensors[0].shape
        let ax = axis < 0 ? axis + shape.count + 1 : axis
        var expanded = shape
        expanded.insert(1, at: ax)
        return concat(tensors.map { $0.reshaped(expanded) }, axis: ax)
    }

    /// PyTorch's `gather(dim: axis, index)`: `out[..., j, ...] = self[..., index[..., j, ...], ...]` with `index` of
    /// shape `indexShape` (same rank; equal to this shape except along `axis`). Repeated indices accumulate gradient.
    public func gather(axis: Int, indices: [Int], indexShape: [Int]) -> Tensor {
        let ax = axisIndex(axis)
        precondition(indexShape.count == rank && indices.count == indexShape.reduce(1, *),
                     "gather: index shape \(indexShape) does not fit \(shape)")
        let (outer, length, inner) = split(at: ax)
        let m = indexShape[ax]
        precondition(indexShape[..<ax].reduce(1, *) == outer && indexShape[(ax + 1)...].reduce(1, *) == inner,
                     "gather: index shape \(indexShape) must match \(shape) outside axis \(ax)")
        var src = [Int](repeating: 0, count: indices.count)
        for i in 0..<outer { for k in 0..<m { for j in 0..<inner {
            let o = (i * m + k) * inner + j
            let idx = indices[o]
            precondition(idx >= 0 && idx < length, "gather: index \(idx) out of range 0..<\(length)")
            src[o] = (i * length + idx) * inner + j
        } } }
        let out = src.map { data[$0] }
        let n = count
        return Tensor.result(out, shape: indexShape, inputs: [self]) { result in
            let g = result.grad!
            var gx = [Float](repeating: 0, count: n)
            for o in 0..<src.count { gx[src[o]] += g[o] }
            self.accumulateGrad(gx)
        }
    }

    /// Picks one element per row of a `[n, k]` tensor: `out[i] = self[i, columns[i]]` (Q(s, a)). Shape `[n]`.
    public func pick(columns: [Int]) -> Tensor {
        precondition(rank == 2 && columns.count == shape[0], "pick needs [n, k] and n columns; got \(shape), \(columns.count)")
        return gather(axis: 1, indices: columns, indexShape: [shape[0], 1]).reshaped([shape[0]])
    }

    /// One-hot rows `[n, classes]` for integer labels.
    public static func oneHot(_ labels: [Int], classes: Int) -> Tensor {
        var out = [Float](repeating: 0, count: labels.count * classes)
        for (i, l) in labels.enumerated() {
            precondition(l >= 0 && l < classes, "one-hot label \(l) outside 0..<\(classes)")
            out[i * classes + l] = 1
        }
        return Tensor(out, shape: [labels.count, classes])
    }

    /// `condition ? a : b` element-wise (condition non-zero = true); `a` and `b` broadcast to the condition's shape.
    /// The gradient flows to `a` where the condition holds and to `b` elsewhere (never through the other branch,
    /// so an infinite value there does not poison it).
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let zeros = Tensor.zeros(condition.shape)
        let a = a.shape == condition.shape ? a : a + zeros
        let b = b.shape == condition.shape ? b : b + zeros
        let take = condition.data.map { $0 != 0 }
        let out = (0..<take.count).map { take[$0] ? a.data[$0] : b.data[$0] }
        return result(out, shape: condition.shape, inputs: [a, b]) { result in
            let g = result.grad!
            if a.requiresGrad { a.accumulateGrad((0..<g.count).map { take[$0] ? g[$0] : 0 }) }
            if b.requiresGrad { b.accumulateGrad((0..<g.count).map { take[$0] ? 0 : g[$0] }) }
        }
    }

    /// Element-wise comparisons returning 0/1 tensors (no gradient).
    public static func > (a: Tensor, b: Tensor) -> Tensor { compare(a, b) { $0 > $1 } }
    public static func < (a: Tensor, b: Tensor) -> Tensor { compare(a, b) { $0 < $1 } }
    public static func >= (a: Tensor, b: Tensor) -> Tensor { compare(a, b) { $0 >= $1 } }
    public static func <= (a: Tensor, b: Tensor) -> Tensor { compare(a, b) { $0 <= $1 } }
    public func equals(_ other: Tensor) -> Tensor { Tensor.compare(self, other) { $0 == $1 } }

    static func compare(_ a: Tensor, _ b: Tensor, _ op: @escaping (Float, Float) -> Bool) -> Tensor {
        withoutGrad { broadcasting(a, b, "compare", { op($0, $1) ? 1 : 0 }, dA: { _, _, _ in 0 }, dB: { _, _, _ in 0 }) }
    }
}
