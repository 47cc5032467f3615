// Pooling over the planes of an NCHW tensor (PyTorch's `max_pool2d`, `avg_pool2d`, `adaptive_avg_pool2d`, with
// `ceil_mode=False`) and nearest-neighbour upsampling. A pooling window moves over a plane as a convolution kernel
// does, so windows are described with `ConvolutionAxis` (see Convolution.swift).

/// One output position's window along one axis of an average pooling: the input cells it covers, and the length it
/// spans counting padding (what `count_include_pad` divides by).
struct PoolWindow: Equatable {
    let cells: Range<Int>
    let paddedLength: Int

    /// The windows of a kernel sliding along `axis`: output o covers `o·stride − padding ..< + kernel`, clipped.
    static func sliding(_ axis: ConvolutionAxis) -> [PoolWindow] {
        (0..<axis.grid).map { o in
            let start = o * axis.stride - axis.padding
            let end = Swift.min(start + axis.kernel, axis.image + axis.padding)
            return PoolWindow(cells: Swift.max(start, 0)..<Swift.min(end, axis.image), paddedLength: end - start)
        }
    }

    /// PyTorch's adaptive windows: output i of `output` covers `⌊i·input/output⌋ ..< ⌈(i+1)·input/output⌉`.
    static func adaptive(input: Int, output: Int) -> [PoolWindow] {
        (0..<output).map { i in
            let cells = (i * input / output)..<(((i + 1) * input + output - 1) / output)
            return PoolWindow(cells: cells, paddedLength: cells.count)
        }
    }
}

extension Tensor {
    /// The axes of a pooling window over this NCHW tensor, or an error naming `name`: also PyTorch's rule that padding
    /// is at most half the (dilated) kernel, so every window holds at least one input cell.
    static func poolAxes(_ name: String, input: [Int], kernel: Size2D, stride: Size2D?, padding: Size2D,
                         dilation: Size2D = 1) throws -> (h: ConvolutionAxis, w: ConvolutionAxis) {
        let axes = try ConvolutionGeometry.slidingAxes(name, input: input, kernel: kernel, stride: stride ?? kernel,
                                                       padding: padding, dilation: dilation)
        guard [axes.h, axes.w].allSatisfy({ 2 * $0.padding <= $0.span }) else {
            throw ShapeError("\(name): padding \(padding) must be at most half the kernel \(kernel)")
        }
        return axes
    }

    /// PyTorch's `max_pool2d` (with `return_indices`): the maximum of each window, padding never winning. `indices`
    /// holds, per output value, the flat position `h·W + w` of the winner in its input plane: on a tie the first one
    /// scanning row by row (NaN wins, as in torch). The gradient goes to that position; overlapping windows add up.
    public func maxPool2d(kernelSize: Size2D, stride: Size2D? = nil, padding: Size2D = 0,
                          dilation: Size2D = 1) -> (values: Tensor, indices: [Int]) {
        let (h, w) = checkedShape {
            try Tensor.poolAxes("max_pool2d", input: shape, kernel: kernelSize, stride: stride, padding: padding,
                                dilation: dilation)
        }
        let planes = shape[0] * shape[1], inPlane = h.image * w.image, outPlane = h.grid * w.grid
        var values = [Float](repeating: 0, count: planes * outPlane)
        var indices = [Int](repeating: 0, count: planes * outPlane)
        data.withUnsafeBufferPointer { x in values.withUnsafeMutableBufferPointer { values in
            indices.withUnsafeMutableBufferPointer { indices in
                if h.padding == 0 && w.padding == 0 {
                    Tensor.maxPoolInside(x.baseAddress!, planes: planes, h, w, values: values.baseAddress!,
                                         indices: indices.baseAddress!)
                    return
                }
                for p in 0..<planes {
                    let plane = x.baseAddress! + p * inPlane
                    for oy in 0..<h.grid {
                        for ox in 0..<w.grid {
                            var best = -Float.infinity, at = -1
                            for i in 0..<h.kernel {
                                let iy = oy * h.stride + h.offset(tap: i)
                                guard iy >= 0 && iy < h.image else { continue }
                                for j in 0..<w.kernel {
                                    let ix = ox * w.stride + w.offset(tap: j)
                                    guard ix >= 0 && ix < w.image else { continue }
                                    let v = plane[iy * w.image + ix]
                                    if at < 0 || v > best || v.isNaN { best = v; at = iy * w.image + ix }
                                }
                            }
                            values[p * outPlane + oy * w.grid + ox] = best
                            indices[p * outPlane + oy * w.grid + ox] = at
                        }
                    }
                }
            }
        } }
        let pooled = Tensor.result(values, shape: [shape[0], shape[1], h.grid, w.grid], inputs: [self]) { out in
            var gx = [Float](repeating: 0, count: planes * inPlane)
            out.grad!.withUnsafeBufferPointer { g in indices.withUnsafeBufferPointer { indices in
                gx.withUnsafeMutableBufferPointer { gx in
                    for p in 0..<planes {
                        for o in 0..<outPlane { gx[p * inPlane + indices[p * outPlane + o]] += g[p * outPlane + o] }
                    }
                }
            } }
            self.accumulateGrad(gx)
        }
        return (pooled, indices)
    }

    /// `maxPool2d`'s scan when no window reaches into padding (LeNet's 2×2 pools): the taps of each window in the same
    /// order as the general loop (row by row, the first tap taken, then any larger value or a NaN), so the same maxima
    /// and winners, without its per-tap bounds tests or branches.
    static func maxPoolInside(_ x: UnsafePointer<Float>, planes: Int, _ h: ConvolutionAxis, _ w: ConvolutionAxis,
                              values: UnsafeMutablePointer<Float>, indices: UnsafeMutablePointer<Int>) {
        let width = w.image, inPlane = h.image * width, outPlane = h.grid * w.grid
        for p in 0..<planes {
            let plane = x + p * inPlane, out = p * outPlane
            for oy in 0..<h.grid {
                for ox in 0..<w.grid {
                    let first = oy * h.stride * width + ox * w.stride
                    var best = plane[first], at = first
                    for i in 0..<h.kernel {
                        let row = first + i * h.dilation * width
                        for j in (i == 0 ? 1 : 0)..<w.kernel {
                            // Selects, not a branch: on a ReLU's output which tap wins is a coin toss.
                            let k = row + j * w.dilation, v = plane[k]
                            let take = (v > best ? 1 : 0) | (v.isNaN ? 1 : 0) != 0
                            best = take ? v : best
                            at = take ? k : at
                        }
                    }
                    values[out + oy * w.grid + ox] = best
                    indices[out + oy * w.grid + ox] = at
                }
            }
        }
    }

    /// PyTorch's `avg_pool2d`: the mean of each window. With `countIncludePad` (torch's default) padding cells count
    /// as zeros and every window divides by kH·kW; without, a window divides by the input cells it covers.
    public func avgPool2d(kernelSize: Size2D, stride: Size2D? = nil, padding: Size2D = 0,
                          countIncludePad: Bool = true) -> Tensor {
        let (h, w) = checkedShape {
            try Tensor.poolAxes("avg_pool2d", input: shape, kernel: kernelSize, stride: stride, padding: padding)
        }
        return averagePool(rows: PoolWindow.sliding(h), columns: PoolWindow.sliding(w), countPadding: countIncludePad)
    }

    /// PyTorch's `adaptive_avg_pool2d`: pools each plane to `outputSize`, output cell (i, j) averaging rows
    /// `⌊i·H/outH⌋ ..< ⌈(i+1)·H/outH⌉` and the columns likewise (1×1: the global average).
    public func adaptiveAvgPool2d(_ outputSize: Size2D) -> Tensor {
        checkedShape { try Tensor.adaptivePoolShape("adaptive_avg_pool2d", input: shape, outputSize: outputSize) }
        return averagePool(rows: PoolWindow.adaptive(input: shape[2], output: outputSize.height),
                           columns: PoolWindow.adaptive(input: shape[3], output: outputSize.width), countPadding: false)
    }

    /// The output shape of an adaptive pooling, or an error naming `name`.
    @discardableResult
    static func adaptivePoolShape(_ name: String, input: [Int], outputSize: Size2D) throws -> [Int] {
        guard input.count == 4 else { throw ShapeError("\(name): expects an NCHW input of rank 4, got shape \(input)") }
        guard outputSize.height > 0, outputSize.width > 0, input[2] > 0, input[3] > 0 else {
            throw ShapeError("\(name): cannot pool input \(input) to output size \(outputSize)")
        }
        return [input[0], input[1], outputSize.height, outputSize.width]
    }

    /// Output (y, x) of each plane is the sum of input rows `rows[y].cells` × columns `columns[x].cells`, divided by
    /// the padded lengths' product (`countPadding`) or by the number of cells summed.
    func averagePool(rows: [PoolWindow], columns: [PoolWindow], countPadding: Bool) -> Tensor {
        let planes = shape[0] * shape[1], width = shape[3], inPlane = shape[2] * width
        let outPlane = rows.count * columns.count
        let scales: [Float] = rows.flatMap { r in
            columns.map { c in
                1 / Float(countPadding ? r.paddedLength * c.paddedLength : r.cells.count * c.cells.count)
            }
        }
        var out = [Float](repeating: 0, count: planes * outPlane)
        data.withUnsafeBufferPointer { x in
            for p in 0..<planes {
                for (y, r) in rows.enumerated() {
                    for (xo, c) in columns.enumerated() {
                        var sum: Float = 0
                        for iy in r.cells { for ix in c.cells { sum += x[p * inPlane + iy * width + ix] } }
                        let o = y * columns.count + xo
                        out[p * outPlane + o] = sum * scales[o]
                    }
                }
            }
        }
        return Tensor.result(out, shape: [shape[0], shape[1], rows.count, columns.count], inputs: [self]) { result in
            let g = result.grad!
            var gx = [Float](repeating: 0, count: planes * inPlane)
            for p in 0..<planes {
                for (y, r) in rows.enumerated() {
                    for (xo, c) in columns.enumerated() {
                        let o = y * columns.count + xo, share = g[p * outPlane + o] * scales[o]
                        for iy in r.cells { for ix in c.cells { gx[p * inPlane + iy * width + ix] += share } }
                    }
                }
            }
            self.accumulateGrad(gx)
        }
    }

    /// PyTorch's `interpolate(mode='nearest')` with integer scale factors: every input cell becomes a
    /// `scaleFactor.height × scaleFactor.width` block; its gradient is the sum over the block.
    public func upsampleNearest2d(scaleFactor: Size2D) -> Tensor {
        checkedShape { try Tensor.upsampleShape("upsample_nearest2d", input: shape, scaleFactor: scaleFactor) }
        let planes = shape[0] * shape[1], height = shape[2], width = shape[3]
        let sh = scaleFactor.height, sw = scaleFactor.width, outWidth = width * sw, outPlane = height * sh * outWidth
        // out[y, x] = in[y / sh, x / sw], as `source[o]` positions within a plane.
        let source = (0..<outPlane).map { o in (o / outWidth / sh) * width + (o % outWidth) / sw }
        var out = [Float](repeating: 0, count: planes * outPlane)
        data.withUnsafeBufferPointer { x in
            for p in 0..<planes { for o in 0..<outPlane { out[p * outPlane + o] = x[p * height * width + source[o]] } }
        }
        return Tensor.result(out, shape: [shape[0], shape[1], height * sh, outWidth], inputs: [self]) { result in
            let g = result.grad!
            var gx = [Float](repeating: 0, count: planes * height * width)
            for p in 0..<planes { for o in 0..<outPlane { gx[p * height * width + source[o]] += g[p * outPlane + o] } }
            self.accumulateGrad(gx)
        }
    }

    /// The output shape of nearest upsampling, or an error naming `name`.
    @discardableResult
    static func upsampleShape(_ name: String, input: [Int], scaleFactor: Size2D) throws -> [Int] {
        guard input.count == 4 else { throw ShapeError("\(name): expects an NCHW input of rank 4, got shape \(input)") }
        guard scaleFactor.height > 0, scaleFactor.width > 0 else {
            throw ShapeError("\(name): scale factor \(scaleFactor) must be positive")
        }
        return [input[0], input[1], input[2] * scaleFactor.height, input[3] * scaleFactor.width]
    }
}
