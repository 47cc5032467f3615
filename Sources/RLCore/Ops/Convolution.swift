import CKernels

// 2-D convolution and transposed convolution (PyTorch's `conv2d` / `conv_transpose2d`, NCHW), lowered to GEMM.
//
// Both ops are one geometry seen from two sides: a kernel visits a padded *image*, and each place it visits is one
// cell of a *grid*. `conv2d` reads the image (its input) and writes the grid (its output); `conv_transpose2d` is
// exactly the input-gradient path of `conv2d` run forward (its input is the grid, its output the image). So three
// products cover both ops and all their gradients, per sample and group, with the weight viewed as a matrix F:
//
//     correlate:      grid  = F · lower(image)             conv2d forward,   conv_transpose2d input gradient
//     spread:         image += unlower(Fᵀ · grid)          conv2d input gradient, conv_transpose2d forward
//     filterGradient: dF    = Σ_n grid · lower(image)ᵀ     the weight gradient of both
//
// `lower` (im2col) copies the image cells each kernel tap sees into one row per (channel, tap); `unlower` (col2im)
// adds such rows back into the image. F is `[grid channels, image channels / groups · kH · kW]`: conv2d's weight
// `[out, in/groups, kH, kW]` as stored, and conv_transpose2d's `[in, out/groups, kH, kW]` as stored too.

/// A (height, width) pair for the hyperparameters of image layers (kernel size, stride, padding, dilation), in
/// PyTorch's order. An integer literal means the same value for both, as torch's `kernel_size=3`.
public struct Size2D: Hashable, Sendable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }

    public init(integerLiteral value: Int) { self.init(value, value) }

    /// `[height, width]`, as PyTorch's tuples.
    public init(arrayLiteral elements: Int...) {
        precondition(elements.count == 2, "Size2D needs [height, width], got \(elements)")
        self.init(elements[0], elements[1])
    }

    /// PyTorch's spelling of a pair, `(5, 5)`, so messages read like torch's module reprs.
    public var description: String { "(\(height), \(width))" }

    var both: [Int] { [height, width] }
}

/// A shape or configuration an image op or layer cannot take. The message names the layer and the shapes.
public struct ShapeError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The value of a shape check, or a precondition failure with its message: ops return tensors, so a bad shape there is
/// a programming error (the core's convention); builders that want a thrown error call the check itself.
@discardableResult
func checkedShape<T>(_ check: () throws -> T) -> T {
    do { return try check() } catch { preconditionFailure("\(error)") }
}

/// One spatial axis of a convolution: grid position `o` with kernel tap `t` reads image position
/// `o·stride − padding + t·dilation`, which is padding (zero) outside `0..<image`.
struct ConvolutionAxis: Equatable {
    let image: Int, grid: Int, kernel: Int, stride: Int, padding: Int, dilation: Int

    /// The image position of grid position 0 under tap `t` (negative inside the padding).
    func offset(tap t: Int) -> Int { t * dilation - padding }

    /// The grid positions whose tap `t` lands inside the image (the others read padding).
    func valid(tap t: Int) -> Range<Int> {
        let offset = offset(tap: t)
        let low = offset >= 0 ? 0 : (-offset + stride - 1) / stride
        let high = offset >= image ? 0 : Swift.min(grid, (image - 1 - offset) / stride + 1)
        return low < high ? low..<high : 0..<0
    }

    /// The image extent one kernel covers, dilation included.
    var span: Int { dilation * (kernel - 1) + 1 }
}

/// Where the kernel goes for a whole batch: sizes, groups, and the two axes.
struct ConvolutionGeometry: Equatable {
    let batch: Int, groups: Int
    /// Channels on the image side (conv2d's input, conv_transpose2d's output) and on the grid side (= weight.shape[0]).
    let imageChannels: Int, gridChannels: Int
    let h: ConvolutionAxis, w: ConvolutionAxis

    var imagePlane: Int { h.image * w.image }
    var gridPlane: Int { h.grid * w.grid }
    var imageGroupChannels: Int { imageChannels / groups }
    var gridGroupChannels: Int { gridChannels / groups }
    /// The rows of a lowered image, one per (channel of a group, kernel tap): the inner dimension of every product.
    var depth: Int { imageGroupChannels * h.kernel * w.kernel }
    /// A 1×1 kernel with stride 1 and no padding sees the image as it is stored: lowering would copy it unchanged.
    var lowersToItself: Bool {
        h.kernel == 1 && w.kernel == 1 && h.stride == 1 && w.stride == 1 && h.padding == 0 && w.padding == 0
    }
    var imageShape: [Int] { [batch, imageChannels, h.image, w.image] }
    var gridShape: [Int] { [batch, gridChannels, h.grid, w.grid] }

    /// The first value of image sample `n`, group `g` (and likewise for the grid and the filter).
    func imageStart(_ n: Int, _ g: Int) -> Int { (n * imageChannels + g * imageGroupChannels) * imagePlane }
    func gridStart(_ n: Int, _ g: Int) -> Int { (n * gridChannels + g * gridGroupChannels) * gridPlane }
    func filterStart(_ g: Int) -> Int { g * gridGroupChannels * depth }

    // MARK: Lowering (im2col / col2im)

    /// Visits the lowered matrix `[depth, gridPlane]` one grid row at a time: for each image channel of a group, kernel
    /// tap (i, j) and grid row y, `body` gets the offset of that run in the lowered matrix, the image offset that grid
    /// column 0 maps to (columns step by `w.stride` from there), and the grid columns that read the image (empty when
    /// the whole row is padding). The one traversal behind both `lower` and `unlower`.
    @inline(__always)
    func forEachRun(_ body: (_ lowered: Int, _ image: Int, _ valid: Range<Int>) -> Void) {
        for c in 0..<imageGroupChannels {
            for i in 0..<h.kernel {
                let rows = h.valid(tap: i)
                for j in 0..<w.kernel {
                    let columns = w.valid(tap: j)
                    let row = (c * h.kernel + i) * w.kernel + j
                    for y in 0..<h.grid {
                        let imageRow = y * h.stride + h.offset(tap: i)
                        body(row * gridPlane + y * w.grid, c * imagePlane + imageRow * w.image + w.offset(tap: j),
                             rows.contains(y) ? columns : 0..<0)
                    }
                }
            }
        }
    }

    /// im2col: writes the `[depth, gridPlane]` matrix of the cells each kernel tap sees (zeros for padding) of one
    /// group's image channels.
    func lower(_ image: UnsafePointer<Float>, into lowered: UnsafeMutablePointer<Float>) {
        let stride = w.stride, width = w.grid
        forEachRun { run, start, valid in
            // Plain loops with wrapping arithmetic (the indices are in bounds): runs are short (a grid row, often under
            // 30 values), so calls to memset/memmove and overflow checks would cost as much as the copy.
            let out = lowered + run, source = image + start
            var x = 0
            while x < valid.lowerBound { out[x] = 0; x &+= 1 }
            if stride == 1 {
                while x < valid.upperBound { out[x] = source[x]; x &+= 1 }
            } else {
                while x < valid.upperBound { out[x] = source[x &* stride]; x &+= 1 }
            }
            while x < width { out[x] = 0; x &+= 1 }
        }
    }

    /// col2im: adds a `[depth, gridPlane]` lowered matrix back into one group's image channels (padding cells are
    /// dropped; cells several taps see receive the sum).
    func unlower(_ lowered: UnsafePointer<Float>, into image: UnsafeMutablePointer<Float>) {
        let stride = w.stride
        forEachRun { run, start, valid in
            // Wrapping arithmetic, as in `lower`.
            let target = image + start, source = lowered + run
            var x = valid.lowerBound
            if stride == 1 {
                while x < valid.upperBound { target[x] += source[x]; x &+= 1 }
            } else {
                while x < valid.upperBound { target[x &* stride] += source[x]; x &+= 1 }
            }
        }
    }

    // MARK: The three products

    /// A buffer for one lowered image (nil when lowering is the identity), valid while `body` runs.
    private func withScratch(_ body: (UnsafeMutablePointer<Float>?) -> Void) {
        guard !lowersToItself else { body(nil); return }
        let count = depth * gridPlane
        var lowered = [Float](unsafeUninitializedCapacity: count) { $1 = count }
        lowered.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }

    /// One group's image as a lowered matrix: the image itself when lowering is the identity, else lowered into
    /// `scratch`.
    private func lowering(_ image: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>?) -> UnsafePointer<Float> {
        guard let scratch else { return image }
        lower(image, into: scratch)
        return UnsafePointer(scratch)
    }

    /// The multiply-adds of one of the three products over the whole batch.
    var productSize: Int { batch * gridChannels * gridPlane * depth }

    /// Runs `body` over all samples, as two halves on two cores when the product is at least
    /// `Tensor.splitForwardProduct`. Samples are independent, so the values are the same on one core or two.
    private func splittingSamples(_ body: (Range<Int>) -> Void) {
        guard batch >= 2 && productSize >= Tensor.splitForwardProduct else { body(0..<batch); return }
        _ = ForkJoin.both({ body(0..<(batch / 2)) }, { body((batch / 2)..<batch) })
    }

    /// grid[n, g] = F_g · lower(image[n, g]) for every sample n and group g, overwriting `grid`.
    func correlate(image: [Float], filter: [Float], grid: inout [Float]) {
        guard batch > 0 else { return }  // empty buffers have no base address
        image.withUnsafeBufferPointer { image in filter.withUnsafeBufferPointer { filter in
            grid.withUnsafeMutableBufferPointer { grid in
                let image = image.baseAddress!, filter = filter.baseAddress!, grid = grid.baseAddress!
                splittingSamples { samples in withScratch { scratch in
                    for n in samples {
                        for g in 0..<groups {
                            Gemm.multiply(transA: false, transB: false, m: gridGroupChannels, n: gridPlane, k: depth,
                                          alpha: 1, a: filter + filterStart(g), lda: depth,
                                          b: lowering(image + imageStart(n, g), scratch: scratch), ldb: gridPlane,
                                          beta: 0, c: grid + gridStart(n, g), ldc: gridPlane)
                        }
                    }
                } }
            }
        } }
    }

    /// image[n, g] += unlower(F_gᵀ · grid[n, g]) for every sample n and group g.
    func spread(grid: [Float], filter: [Float], image: inout [Float]) {
        guard batch > 0 else { return }
        grid.withUnsafeBufferPointer { grid in filter.withUnsafeBufferPointer { filter in
            image.withUnsafeMutableBufferPointer { image in
                let image = image.baseAddress!, filter = filter.baseAddress!, grid = grid.baseAddress!
                splittingSamples { samples in withScratch { scratch in
                    for n in samples {
                        for g in 0..<groups {
                            // Without lowering, the product adds straight into the image (beta 1).
                            Gemm.multiply(transA: true, transB: false, m: depth, n: gridPlane, k: gridGroupChannels,
                                          alpha: 1, a: filter + filterStart(g), lda: depth, b: grid + gridStart(n, g),
                                          ldb: gridPlane, beta: scratch == nil ? 1 : 0,
                                          c: scratch ?? image + imageStart(n, g), ldc: gridPlane)
                            if let scratch { unlower(scratch, into: image + imageStart(n, g)) }
                        }
                    }
                } }
            }
        } }
    }

    /// dF_g = Σ_n grid[n, g] · lower(image[n, g])ᵀ for every group g, overwriting `filterGradient` (samples added in
    /// order, on one core: a split would change the order of the sum).
    func filterGradient(image: [Float], grid: [Float], into filterGradient: inout [Float]) {
        guard batch > 0 else { filterGradient = [Float](repeating: 0, count: filterGradient.count); return }
        image.withUnsafeBufferPointer { image in grid.withUnsafeBufferPointer { grid in
            filterGradient.withUnsafeMutableBufferPointer { gradient in
                let image = image.baseAddress!, grid = grid.baseAddress!, gradient = gradient.baseAddress!
                withScratch { scratch in
                    for n in 0..<batch {
                        for g in 0..<groups {
                            Gemm.multiply(transA: false, transB: true, m: gridGroupChannels, n: depth, k: gridPlane,
                                          alpha: 1, a: grid + gridStart(n, g), lda: gridPlane,
                                          b: lowering(image + imageStart(n, g), scratch: scratch), ldb: gridPlane,
                                          beta: n == 0 ? 0 : 1, c: gradient + filterStart(g), ldc: depth)
                        }
                    }
                }
            }
        } }
    }
}

// MARK: - Shape checks

extension ConvolutionGeometry {
    /// Checks that stride and dilation are positive and padding is not negative.
    static func checkSteps(_ name: String, stride: Size2D, padding: Size2D, dilation: Size2D) throws {
        guard stride.height > 0, stride.width > 0, dilation.height > 0, dilation.width > 0,
              padding.height >= 0, padding.width >= 0 else {
            throw ShapeError("\(name): stride \(stride) and dilation \(dilation) must be positive, padding \(padding) ≥ 0")
        }
    }

    /// The two axes of a kernel sliding over the padded planes of an NCHW input (conv2d, pooling), or an error when
    /// the input is not NCHW or the kernel is larger than the padded input.
    static func slidingAxes(_ name: String, input: [Int], kernel: Size2D, stride: Size2D, padding: Size2D,
                            dilation: Size2D) throws -> (h: ConvolutionAxis, w: ConvolutionAxis) {
        guard input.count == 4 else { throw ShapeError("\(name): expects an NCHW input of rank 4, got shape \(input)") }
        guard kernel.height > 0, kernel.width > 0 else { throw ShapeError("\(name): kernel \(kernel) must be positive") }
        try checkSteps(name, stride: stride, padding: padding, dilation: dilation)
        let axes = (0..<2).map { d in
            ConvolutionAxis(image: input[2 + d], grid: 0, kernel: kernel.both[d], stride: stride.both[d],
                            padding: padding.both[d], dilation: dilation.both[d])
        }
        guard axes.allSatisfy({ $0.span <= $0.image + 2 * $0.padding }) else {
            throw ShapeError("\(name): kernel \(kernel) (dilation \(dilation)) is larger than the padded input "
                             + "\(Size2D(input[2] + 2 * padding.height, input[3] + 2 * padding.width)) "
                             + "(input \(input), padding \(padding))")
        }
        let sized = axes.map {
            ConvolutionAxis(image: $0.image, grid: ($0.image + 2 * $0.padding - $0.span) / $0.stride + 1, kernel: $0.kernel,
                            stride: $0.stride, padding: $0.padding, dilation: $0.dilation)
        }
        return (sized[0], sized[1])
    }

    /// The checks of the weight and groups both ops share.
    private static func checkWeight(_ name: String, weight: [Int], groups: Int) throws {
        guard weight.count == 4, weight.allSatisfy({ $0 > 0 }) else {
            throw ShapeError("\(name): weight \(weight) is not a rank-4 shape of positive sizes")
        }
        guard groups > 0, weight[0] % groups == 0 else {
            throw ShapeError("\(name): groups \(groups) must be positive and divide weight \(weight)'s first dimension")
        }
    }

    /// Checks that a bias fits the output channels.
    private static func checkBias(_ name: String, _ bias: [Int]?, channels: Int) throws {
        if let bias, bias != [channels] {
            throw ShapeError("\(name): bias \(bias) does not fit \(channels) output channels")
        }
    }

    /// The geometry of `conv2d(input, weight)`, or an error naming `name` and the shapes.
    static func conv2d(_ name: String, input: [Int], weight: [Int], bias: [Int]?, stride: Size2D, padding: Size2D,
                       dilation: Size2D, groups: Int) throws -> ConvolutionGeometry {
        try checkWeight(name, weight: weight, groups: groups)
        try checkBias(name, bias, channels: weight[0])
        guard input.count != 4 || input[1] == weight[1] * groups else {
            throw ShapeError("\(name): input \(input) has \(input[1]) channels, expected \(weight[1] * groups) "
                             + "(weight \(weight), groups \(groups))")
        }
        let (h, w) = try slidingAxes(name, input: input, kernel: Size2D(weight[2], weight[3]), stride: stride,
                                     padding: padding, dilation: dilation)
        return ConvolutionGeometry(batch: input[0], groups: groups, imageChannels: input[1], gridChannels: weight[0],
                                   h: h, w: w)
    }

    /// The geometry of `convTranspose2d(input, weight)` (the input is the grid, the output the image), or an error.
    static func convTranspose2d(_ name: String, input: [Int], weight: [Int], bias: [Int]?, stride: Size2D,
                                padding: Size2D, outputPadding: Size2D, dilation: Size2D,
                                groups: Int) throws -> ConvolutionGeometry {
        guard input.count == 4 else { throw ShapeError("\(name): expects an NCHW input of rank 4, got shape \(input)") }
        try checkWeight(name, weight: weight, groups: groups)
        try checkBias(name, bias, channels: weight[1] * groups)
        try checkSteps(name, stride: stride, padding: padding, dilation: dilation)
        guard input[1] == weight[0] else {
            throw ShapeError("\(name): input \(input) has \(input[1]) channels, expected \(weight[0]) (weight \(weight))")
        }
        func axis(_ d: Int) throws -> ConvolutionAxis {
            let size = input[2 + d], k = weight[2 + d], s = stride.both[d], p = padding.both[d], dil = dilation.both[d]
            let extra = outputPadding.both[d]
            // PyTorch's rule: the extra rows must be rows some stride or dilation step could have produced.
            guard extra >= 0, extra < s || extra < dil else {
                throw ShapeError("\(name): output padding \(outputPadding) must be smaller than stride \(stride) "
                                 + "or dilation \(dilation)")
            }
            let image = (size - 1) * s - 2 * p + dil * (k - 1) + extra + 1
            guard size > 0, image > 0 else {
                throw ShapeError("\(name): input \(input) with kernel \(Size2D(weight[2], weight[3])), stride \(stride), "
                                 + "padding \(padding) gives an empty output")
            }
            return ConvolutionAxis(image: image, grid: size, kernel: k, stride: s, padding: p, dilation: dil)
        }
        return ConvolutionGeometry(batch: input[0], groups: groups, imageChannels: weight[1] * groups,
                                   gridChannels: weight[0], h: try axis(0), w: try axis(1))
    }
}

// MARK: - Ops

extension Tensor {
    /// PyTorch's `conv2d`: input `[N, C_in, H, W]`, weight `[C_out, C_in/groups, kH, kW]`, optional bias `[C_out]` →
    /// `[N, C_out, H_out, W_out]` with `H_out = ⌊(H + 2·padding − dilation·(kH − 1) − 1)/stride⌋ + 1`.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size2D = 1, padding: Size2D = 0,
                              dilation: Size2D = 1, groups: Int = 1) -> Tensor {
        let geometry = checkedShape {
            try ConvolutionGeometry.conv2d("conv2d", input: x.shape, weight: weight.shape, bias: bias?.shape, stride: stride,
                                           padding: padding, dilation: dilation, groups: groups)
        }
        let count = geometry.gridShape.reduce(1, *)
        var y = [Float](unsafeUninitializedCapacity: count) { $1 = count }  // correlate overwrites every value
        geometry.correlate(image: x.data, filter: weight.data, grid: &y)
        if let bias { addChannelBias(&y, bias.data, batch: geometry.batch, plane: geometry.gridPlane) }
        return result(y, shape: geometry.gridShape, inputs: [x, weight] + (bias.map { [$0] } ?? [])) { out in
            let g = out.grad!
            convolutionBackward(g, x: x, weight: weight, bias: bias, geometry: geometry, outputPlane: geometry.gridPlane,
                                inputGradient: {
                                    var gx = [Float](repeating: 0, count: x.count)
                                    geometry.spread(grid: g, filter: weight.data, image: &gx)
                                    return gx
                                },
                                filterGradient: { geometry.filterGradient(image: x.data, grid: g, into: &$0) })
        }
    }

    /// PyTorch's `conv_transpose2d`: input `[N, C_in, H, W]`, weight `[C_in, C_out/groups, kH, kW]`, optional bias
    /// `[C_out]` → `[N, C_out, H_out, W_out]` with `H_out = (H − 1)·stride − 2·padding + dilation·(kH − 1) +
    /// outputPadding + 1`: the gradient of `conv2d` with respect to its input, run forward (output padding adds rows
    /// and columns at the bottom and right that no input reaches; they hold the bias).
    public static func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size2D = 1,
                                       padding: Size2D = 0, outputPadding: Size2D = 0, dilation: Size2D = 1,
                                       groups: Int = 1) -> Tensor {
        let geometry = checkedShape {
            try ConvolutionGeometry.convTranspose2d("conv_transpose2d", input: x.shape, weight: weight.shape,
                                                    bias: bias?.shape, stride: stride, padding: padding,
                                                    outputPadding: outputPadding, dilation: dilation, groups: groups)
        }
        var y = [Float](repeating: 0, count: geometry.imageShape.reduce(1, *))
        geometry.spread(grid: x.data, filter: weight.data, image: &y)
        if let bias { addChannelBias(&y, bias.data, batch: geometry.batch, plane: geometry.imagePlane) }
        return result(y, shape: geometry.imageShape, inputs: [x, weight] + (bias.map { [$0] } ?? [])) { out in
            let g = out.grad!
            convolutionBackward(g, x: x, weight: weight, bias: bias, geometry: geometry, outputPlane: geometry.imagePlane,
                                inputGradient: {
                                    let count = x.count
                                    var gx = [Float](unsafeUninitializedCapacity: count) { $1 = count }  // overwritten
                                    geometry.correlate(image: g, filter: weight.data, grid: &gx)
                                    return gx
                                },
                                filterGradient: { geometry.filterGradient(image: g, grid: x.data, into: &$0) })
        }
    }

    /// The backward both convolutions share, from the upstream gradient `g` of their output (`[N, C_out, outputPlane]`).
    /// The input gradient (when `x` requires grad) and the weight gradient are independent products: large ones run on
    /// two cores at once, with the same values either way; as in `linear`, the weight gradient stays on the calling
    /// thread, which next reads it. The bias gradient is the per-channel sum of `g`.
    static func convolutionBackward(_ g: [Float], x: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvolutionGeometry,
                                    outputPlane: Int, inputGradient: () -> [Float],
                                    filterGradient: (inout [Float]) -> Void) {
        var gx: [Float]?
        func inputProduct() { gx = inputGradient() }
        func weightProduct() { weight.accumulateGrad(writing: filterGradient) }
        if x.requiresGrad && weight.requiresGrad && geometry.productSize >= parallelBackwardProduct {
            _ = ForkJoin.both(weightProduct, inputProduct)
        } else {
            if x.requiresGrad { inputProduct() }
            weightProduct()
        }
        if let gx { x.accumulateGrad(gx) }
        if let bias, bias.requiresGrad {
            bias.accumulateGrad(channelSums(g, channels: bias.count, batch: geometry.batch, plane: outputPlane))
        }
    }

    /// Adds `bias[c]` to every value of channel c of an `[N, C, plane]` buffer.
    static func addChannelBias(_ y: inout [Float], _ bias: [Float], batch: Int, plane: Int) {
        let channels = bias.count
        y.withUnsafeMutableBufferPointer { y in
            for n in 0..<batch {
                for c in 0..<channels {
                    let values = y.baseAddress! + (n * channels + c) * plane, b = bias[c]
                    var i = 0
                    while i < plane { values[i] += b; i &+= 1 }  // vectorizes (no overflow checks)
                }
            }
        }
    }

    /// The sum of each channel of an `[N, C, plane]` buffer over the batch and the plane: a channel bias's gradient
    /// (each plane summed in order, then the samples in order).
    static func channelSums(_ g: [Float], channels: Int, batch: Int, plane: Int) -> [Float] {
        var planeSums = [Float](repeating: 0, count: batch * channels)
        if plane > 0 {
            g.withUnsafeBufferPointer { g in
                planeSums.withUnsafeMutableBufferPointer { rl_row_sums(g.baseAddress!, batch * channels, plane, $0.baseAddress!) }
            }
        }
        var sums = [Float](repeating: 0, count: channels)
        for n in 0..<batch { for c in 0..<channels { sums[c] += planeSums[n * channels + c] } }
        return sums
    }
}
