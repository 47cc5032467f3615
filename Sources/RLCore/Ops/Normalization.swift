/// Batch and layer normalization (PyTorch's `F.batch_norm` and `F.layer_norm`): both normalize groups of elements
/// with a mean and a biased variance, then apply a per-feature affine map; they differ only in what a group is and
/// which index the affine parameters follow, so one op (`normalized`) does the arithmetic and its backward for both.
extension Tensor {
    /// Where the elements of a normalization live: the tensor seen as `[outer, groups, inner]`; the statistics of group
    /// g run over all `(o, i)` of `x[o, g, i]`. Batch norm: `[N, C, spatial]` (a group is a channel); layer norm:
    /// `[1, rows, normalized]` (a group is a row).
    struct NormalizationLayout {
        let outer: Int, groups: Int, inner: Int
        /// The number of elements in each group.
        var groupSize: Int { outer * inner }

        /// Calls `body(group, start)` for each run of `inner` consecutive elements of a group in `groups`, the run
        /// starting at flat index `start`; a group's runs come in storage order. With `split` and enough elements, the
        /// two halves of `groups` run on the two cores: each group's elements and sums are its own, so the values are
        /// those of one core.
        func forEachRun(groups: Range<Int>? = nil, split: Bool = false, _ body: (_ group: Int, _ start: Int) -> Void) {
            let groups = groups ?? 0..<self.groups
            if split && groups.count >= 2 && outer * groups.count * inner >= 1 << 15 {
                let middle = groups.lowerBound + groups.count / 2
                _ = ForkJoin.both({ forEachRun(groups: groups.lowerBound..<middle, body) },
                                  { forEachRun(groups: middle..<groups.upperBound, body) })
                return
            }
            for o in 0..<outer {
                for g in groups { body(g, (o * self.groups + g) * inner) }
            }
        }

        /// The mean and biased variance of each group of `x`, accumulated in Double (two passes: no cancellation).
        func statistics(_ x: [Float]) -> (mean: [Double], variance: [Double]) {
            var sum = [Double](repeating: 0, count: groups), squares = [Double](repeating: 0, count: groups)
            let n = Double(groupSize)
            x.withUnsafeBufferPointer { x in
                sum.withUnsafeMutableBufferPointer { sum in
                    // Each run summed in a register, then added to its group's sum.
                    forEachRun(split: true) { g, start in
                        var s = 0.0
                        for k in start..<(start + inner) { s += Double(x[k]) }
                        sum[g] += s
                    }
                }
                let mean = sum.map { $0 / n }
                squares.withUnsafeMutableBufferPointer { squares in
                    forEachRun(split: true) { g, start in
                        let m = mean[g]
                        var s = 0.0
                        for k in start..<(start + inner) { let d = Double(x[k]) - m; s += d * d }
                        squares[g] += s
                    }
                }
            }
            return (sum.map { $0 / n }, squares.map { $0 / n })
        }
    }

    /// Which index of an element the affine weight and bias follow: its group (batch norm's channel) or its position
    /// inside the group (layer norm's normalized feature).
    enum AffineIndex { case group, inner }

    /// `(x − mean[g]) · invStd[g] · weight[p] + bias[p]` for every element, with p its group or inner index. With
    /// `batchStatistics`, mean and invStd were computed from `x` itself, so the input gradient includes the paths
    /// through them; otherwise (batch norm in eval mode) they are constants.
    static func normalized(_ x: Tensor, layout: NormalizationLayout, mean: [Double], invStd: [Double],
                           batchStatistics: Bool, weight: Tensor?, bias: Tensor?, affine: AffineIndex) -> Tensor {
        let parameterCount = affine == .group ? layout.groups : layout.inner
        for p in [weight, bias].compactMap({ $0 }) {
            precondition(p.count == parameterCount, "normalization: affine parameter \(p.shape) for \(parameterCount) features of \(x.shape)")
        }
        // Missing parameters act as weight 1 and bias 0: the same products and sums, so the same values.
        let w = weight?.data ?? [Float](repeating: 1, count: parameterCount)
        let b = bias?.data ?? [Float](repeating: 0, count: parameterCount)
        let byGroup = affine == .group, inner = layout.inner, count = x.count
        // Every value of these is written below.
        var normalizedValues = [Float](unsafeUninitializedCapacity: count) { $1 = count }
        var y = [Float](unsafeUninitializedCapacity: count) { $1 = count }
        x.data.withUnsafeBufferPointer { xs in normalizedValues.withUnsafeMutableBufferPointer { xhats in
            y.withUnsafeMutableBufferPointer { ys in w.withUnsafeBufferPointer { w in b.withUnsafeBufferPointer { b in
                layout.forEachRun(split: true) { g, start in
                    let m = mean[g], s = invStd[g]
                    if byGroup {
                        // One weight and bias for the whole run: the loop vectorizes.
                        let wg = w[g], bg = b[g]
                        for k in start..<(start + inner) {
                            let xhat = Float((Double(xs[k]) - m) * s)
                            xhats[k] = xhat
                            ys[k] = xhat * wg + bg
                        }
                    } else {
                        for i in 0..<inner {
                            let k = start + i
                            let xhat = Float((Double(xs[k]) - m) * s)
                            xhats[k] = xhat
                            ys[k] = xhat * w[i] + b[i]
                        }
                    }
                }
            } } }
        } }
        let inputs = [x] + [weight, bias].compactMap { $0 }
        return result(y, shape: x.shape, inputs: inputs) { out in
            var gw = [Double](repeating: 0, count: parameterCount), gb = gw
            var gxhat = [Float](unsafeUninitializedCapacity: count) { $1 = count }  // written below, as gx
            var gx = [Float](unsafeUninitializedCapacity: x.requiresGrad ? count : 0) { $1 = x.requiresGrad ? count : 0 }
            var meanG = [Double](repeating: 0, count: layout.groups), meanGX = meanG
            out.grad!.withUnsafeBufferPointer { g in normalizedValues.withUnsafeBufferPointer { xhat in
                gw.withUnsafeMutableBufferPointer { gw in gb.withUnsafeMutableBufferPointer { gb in
                    gxhat.withUnsafeMutableBufferPointer { gxhat in w.withUnsafeBufferPointer { w in
                        // Per-feature sums: split over the cores only when the features are the groups.
                        layout.forEachRun(split: byGroup) { group, start in
                            if byGroup {
                                // The run's sums in registers, then added to the group's.
                                let wg = w[group]
                                var sw = 0.0, sb = 0.0
                                for k in start..<(start + inner) {
                                    sw += Double(g[k] * xhat[k])
                                    sb += Double(g[k])
                                    gxhat[k] = g[k] * wg
                                }
                                gw[group] += sw
                                gb[group] += sb
                            } else {
                                for i in 0..<inner {
                                    let k = start + i
                                    gw[i] += Double(g[k] * xhat[k])
                                    gb[i] += Double(g[k])
                                    gxhat[k] = g[k] * w[i]
                                }
                            }
                        }
                    } }
                    guard x.requiresGrad else { return }
                    gx.withUnsafeMutableBufferPointer { gx in
                        guard batchStatistics else {
                            layout.forEachRun(split: true) { group, start in
                                for k in start..<(start + inner) { gx[k] = Float(Double(gxhat[k]) * invStd[group]) }
                            }
                            return
                        }
                        // dx = invStd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), the means over the element's group.
                        meanG.withUnsafeMutableBufferPointer { meanG in meanGX.withUnsafeMutableBufferPointer { meanGX in
                            layout.forEachRun(split: true) { group, start in
                                var sg = 0.0, sgx = 0.0
                                for k in start..<(start + inner) {
                                    sg += Double(gxhat[k])
                                    sgx += Double(gxhat[k]) * Double(xhat[k])
                                }
                                meanG[group] += sg
                                meanGX[group] += sgx
                            }
                            let n = Double(layout.groupSize)
                            layout.forEachRun(split: true) { group, start in
                                let mg = meanG[group] / n, mgx = meanGX[group] / n, s = invStd[group]
                                for k in start..<(start + inner) {
                                    let centred = Double(gxhat[k]) - mg - Double(xhat[k]) * mgx
                                    gx[k] = Float(s * centred)
                                }
                            }
                        } }
                    }
                } }
            } }
            if let weight { weight.accumulateGrad(gw.map { Float($0) }) }
            if let bias { bias.accumulateGrad(gb.map { Float($0) }) }
            if x.requiresGrad { x.accumulateGrad(gx) }
        }
    }

    /// Batch normalization of `[N, C]`, `[N, C, L]` or `[N, C, H, W]` over every axis but the channel axis 1
    /// (PyTorch's `F.batch_norm`). In training mode (or without running statistics) it normalizes with the batch mean
    /// and biased variance, and updates `runningMean`/`runningVar` in place (outside the graph) with `momentum`, the
    /// variance unbiased as PyTorch does. In eval mode it normalizes with the running statistics.
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 2, "batchNorm needs [N, C, ...], got \(shape)")
        let layout = NormalizationLayout(outer: shape[0], groups: shape[1], inner: shape[2...].reduce(1, *))
        precondition((runningMean == nil) == (runningVar == nil), "batchNorm: give both running statistics or neither")
        for s in [runningMean, runningVar].compactMap({ $0 }) {
            precondition(s.count == layout.groups, "batchNorm: running statistic \(s.shape) for \(layout.groups) channels")
        }
        let useBatch = training || runningMean == nil
        let mean: [Double], variance: [Double]
        if useBatch {
            precondition(layout.groupSize > 1, "batchNorm in training mode needs more than one value per channel, got \(shape)")
            (mean, variance) = layout.statistics(data)
            if training, let runningMean, let runningVar {
                let n = Double(layout.groupSize), m = Double(momentum)
                for c in 0..<layout.groups {
                    runningMean.data[c] = Float((1 - m) * Double(runningMean.data[c]) + m * mean[c])
                    runningVar.data[c] = Float((1 - m) * Double(runningVar.data[c]) + m * variance[c] * n / (n - 1))
                }
            }
        } else {
            mean = runningMean!.data.map { Double($0) }
            variance = runningVar!.data.map { Double($0) }
        }
        let invStd = variance.map { 1 / ($0 + Double(eps)).squareRoot() }
        return Tensor.normalized(self, layout: layout, mean: mean, invStd: invStd, batchStatistics: useBatch,
                                 weight: weight, bias: bias, affine: .group)
    }

    /// Layer normalization over the last `normalizedShape.count` dimensions, which must equal `normalizedShape`
    /// (PyTorch's `F.layer_norm`): biased variance, eps inside the square root, element-wise `weight` and `bias`
    /// of shape `normalizedShape`.
    public func layerNorm(normalizedShape: [Int], weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(!normalizedShape.isEmpty && rank >= normalizedShape.count
                     && Array(shape.suffix(normalizedShape.count)) == normalizedShape,
                     "layerNorm: input \(shape) does not end with the normalized shape \(normalizedShape)")
        let features = normalizedShape.reduce(1, *)
        let layout = NormalizationLayout(outer: 1, groups: count / Swift.max(features, 1), inner: features)
        let (mean, variance) = layout.statistics(data)
        let invStd = variance.map { 1 / ($0 + Double(eps)).squareRoot() }
        return Tensor.normalized(self, layout: layout, mean: mean, invStd: invStd, batchStatistics: true,
                                 weight: weight, bias: bias, affine: .inner)
    }
}
