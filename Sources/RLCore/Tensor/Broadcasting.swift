/// NumPy/PyTorch broadcasting rules and the gradient reduction that undoes them.
public enum Broadcast {
    /// The broadcast shape of `a` and `b`, or nil when they are incompatible.
    public static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard da == db || da == 1 || db == 1 else { return nil }
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Row-major strides of `shape` laid into `outShape` (rank-aligned on the right), with stride 0
    /// along dimensions that are broadcast.
    public static func strides(of shape: [Int], in outShape: [Int]) -> [Int] {
        let offset = outShape.count - shape.count
        var strides = [Int](repeating: 0, count: outShape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i + offset] = shape[i] == 1 ? 0 : s
            s *= shape[i]
        }
        return strides
    }

    /// Calls `body(outIndex, aIndex, bIndex)` for every element of `outShape`, with flat indices into
    /// two operands of the given broadcast strides. The innermost dimension runs as a tight loop.
    @inlinable
    public static func forEach(_ outShape: [Int], _ aStrides: [Int], _ bStrides: [Int],
                               _ body: (Int, Int, Int) -> Void) {
        let rank = outShape.count
        let total = outShape.reduce(1, *)
        guard total > 0 else { return }
        guard rank > 0 else { body(0, 0, 0); return }
        let inner = outShape[rank - 1], sa = aStrides[rank - 1], sb = bStrides[rank - 1]
        var index = [Int](repeating: 0, count: rank)
        var o = 0, ia = 0, ib = 0
        while o < total {
            for k in 0..<inner { body(o + k, ia + k * sa, ib + k * sb) }
            o += inner
            // Advance the outer multi-index (odometer style).
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                ia += aStrides[d]; ib += bStrides[d]
                if index[d] < outShape[d] { break }
                ia -= aStrides[d] * outShape[d]; ib -= bStrides[d] * outShape[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// Sums `grad` (of `outShape`) down to `shape`, undoing broadcasting: the gradient of an operand.
    public static func reduce(_ grad: [Float], from outShape: [Int], to shape: [Int]) -> [Float] {
        if outShape == shape { return grad }
        var result = [Float](repeating: 0, count: shape.reduce(1, *))
        let strides = strides(of: shape, in: outShape)
        result.withUnsafeMutableBufferPointer { r in
            grad.withUnsafeBufferPointer { g in
                forEach(outShape, strides, strides) { o, i, _ in r[i] += g[o] }
            }
        }
        return result
    }
}
