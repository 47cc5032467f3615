import CKernels

// 2-D convolution and transposed convolution (PyTorch's `conv2d` / `conv_transpose2d`, NCHW), lowered to GEMM.
//
// Both ops are one geometry seen from two sides: a kernel visits a padded *image*, and each place it visits is one
// cell of a *grid*. `conv2d` reads the image (its input) and writes the grid (its output); `conv_transpose2d` is
// exactly the input-gradient path of `conv2d` run forward (its input is the grid, its output the image). So three
// products cover both ops and all their gradients, per group, with the weight viewed as a matrix F:
//
//     correlate:      grid  = F · lower(image)             conv2d forward,   conv_transpose2d input gradient
//     spread:         image += unlower(Fᵀ · grid)          conv2d input gradient, conv_transpose2d forward
//     filterGradient: dF    = Σ_n grid · lower(image)ᵀ     the weight gradient of both
//
// `lower` (im2col) copies the image cells each kernel tap sees into one row per (channel, tap); `unlower` (col2im)
// adds such rows back into the image. F is `[grid channels, image channels / groups · kH · kW]`: conv2d's weight
// `[out, in/groups, kH, kW]` as stored, and conv_transpose2d's `[in, out/groups, kH, kW]` as stored too. Each product
// covers a chunk of samples at once, their matrices side by side (see `Chunk`).

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

    /// The axis as the lowering kernels take it.
    var kernelAxis: rl_conv_axis {
        rl_conv_axis(image: image, grid: grid, kernel: kernel, stride: stride, padding: padding, dilation: dilation)
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
    var imageShape: [Int] { [batch, imageChannels, h.image, w.image] }
    var gridShape: [Int] { [batch, gridChannels, h.grid, w.grid] }

    /// The first value of image sample `n`, group `g` (and likewise for the grid and the filter).
    func imageStart(_ n: Int, _ g: Int) -> Int { (n * imageChannels + g * imageGroupChannels) * imagePlane }
    func gridStart(_ n: Int, _ g: Int) -> Int { (n * gridChannels + g * gridGroupChannels) * gridPlane }
    func filterStart(_ g: Int) -> Int { g * gridGroupChannels * depth }

    // MARK: Lowering (im2col / col2im)

    /// im2col: writes one sample's `[depth, gridPlane]` matrix of the cells each kernel tap sees (zeros for padding)
    /// of one group's image channels, its rows `rowStride` apart (the columns of several samples side by side, see
    /// `Chunk`). Row (c·kH + i)·kW + j holds what tap (i, j) of channel c sees from each grid cell.
    func lower(_ image: UnsafePointer<Float>, into lowered: UnsafeMutablePointer<Float>, rowStride: Int) {
        var (h, w) = (h.kernelAxis, w.kernelAxis)
        rl_lower(image, lowered, rowStride, imageGroupChannels, &h, &w)
    }

    /// col2im: adds one sample's lowered matrix (rows `rowStride` apart) back into one group's image channels
    /// (padding cells are dropped; cells several taps see receive the sum).
    func unlower(_ lowered: UnsafePointer<Float>, rowStride: Int, into image: UnsafeMutablePointer<Float>) {
        var (h, w) = (h.kernelAxis, w.kernelAxis)
        rl_unlower(lowered, image, rowStride, imageGroupChannels, &h, &w)
    }

    // MARK: Chunks of samples

    /// Consecutive samples whose matrices sit side by side, so that each product covers them all at once: the lowered
    /// images `[depth, count·gridPlane]` and the grid `[gridGroupChannels, count·gridPlane]` of one group, sample s in
    /// columns `s·gridPlane ..< (s+1)·gridPlane`. Fewer, wider products than one per sample (whose `gridPlane` is 49
    /// columns for a 7×7 output): a few percent faster on the DCGAN's convolutions, with the chunk small enough to
    /// stay in cache between its lowering and its product.
    struct Chunk {
        let samples: Range<Int>
        let geometry: ConvolutionGeometry
        /// The columns of the chunk's matrices (their row stride).
        var columns: Int { samples.count * geometry.gridPlane }

        /// Each sample n with the first column of its lowered matrix (`lowered + offset`).
        func forEachSample(_ body: (_ n: Int, _ column: Int) -> Void) {
            for (s, n) in samples.enumerated() { body(n, s * geometry.gridPlane) }
        }

        /// Lowers group g of the chunk's images into `lowered`.
        func lower(_ image: UnsafePointer<Float>, group g: Int, into lowered: UnsafeMutablePointer<Float>) {
            forEachSample { n, column in
                geometry.lower(image + geometry.imageStart(n, g), into: lowered + column, rowStride: columns)
            }
        }

        /// Adds the lowered matrix back into group g of the chunk's images.
        func unlower(_ lowered: UnsafePointer<Float>, group g: Int, into image: UnsafeMutablePointer<Float>) {
            forEachSample { n, column in
                geometry.unlower(lowered + column, rowStride: columns, into: image + geometry.imageStart(n, g))
            }
        }

        /// Visits the grid planes of group g: the offset of channel c's plane of sample n in the NCHW grid, and of
        /// its run in the chunk's grid matrix.
        private func forEachPlane(group g: Int, _ body: (_ grid: Int, _ matrix: Int) -> Void) {
            let plane = geometry.gridPlane
            forEachSample { n, column in
                for c in 0..<geometry.gridGroupChannels { body(geometry.gridStart(n, g) + c * plane, c * columns + column) }
            }
        }

        /// Copies group g of the chunk's grid into one `[gridGroupChannels, columns]` matrix.
        func gather(_ grid: UnsafePointer<Float>, group g: Int, into matrix: UnsafeMutablePointer<Float>) {
            let plane = geometry.gridPlane
            forEachPlane(group: g) { planeAt, runAt in (matrix + runAt).update(from: grid + planeAt, count: plane) }
        }

        /// Copies such a matrix back into group g of the chunk's grid.
        func scatter(_ matrix: UnsafePointer<Float>, group g: Int, into grid: UnsafeMutablePointer<Float>) {
            let plane = geometry.gridPlane
            forEachPlane(group: g) { planeAt, runAt in (grid + planeAt).update(from: matrix + runAt, count: plane) }
        }
    }

    /// The most floats a chunk's lowered matrix (or grid matrix) may hold: half a megabyte, so that the product reads
    /// what the lowering just wrote from the core's L2 cache (larger chunks made LeNet's step slower, no product
    /// faster).
    static let chunkFloats = 1 << 17

    /// The samples of `range` in consecutive chunks of nearly equal size, each under `chunkFloats` (or of one sample).
    /// They depend only on the range and the geometry, so the values never depend on threads.
    func chunks(_ range: Range<Int>) -> [Chunk] {
        let perSample = Swift.max(depth, gridGroupChannels) * gridPlane
        let largest = Swift.max(1, Self.chunkFloats / Swift.max(perSample, 1))
        let count = (range.count + largest - 1) / largest
        return (0..<count).map { i in
            Chunk(samples: (range.lowerBound + range.count * i / count)..<(range.lowerBound + range.count * (i + 1) / count),
                  geometry: self)
        }
    }

    // MARK: The three products

    /// The multiply-adds of one of the three products over the whole batch.
    var productSize: Int { batch * gridChannels * gridPlane * depth }

    /// The samples in one range, or in two halves when the product is at least `threshold` multiply-adds: a split
    /// decided by the shapes alone, so that the values are the same whether the halves run on one core or two.
    private func halves(atLeast threshold: Int) -> [Range<Int>] {
        ExecutionPolicy.halves(of: batch, from: productSize >= threshold ? 2 : Int.max)
    }

    /// Runs `body` with the first values of two inputs and an output, none of them empty.
    private static func withAddresses(_ a: [Float], _ b: [Float], _ out: inout [Float],
                                      _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
            out.withUnsafeMutableBufferPointer { body(a.baseAddress!, b.baseAddress!, $0.baseAddress!) }
        } }
    }

    /// Runs `body` with the two scratch matrices of a chunk: the lowered images and the grid of one group.
    private func withMatrices(_ chunk: Chunk, _ body: (_ lowered: UnsafeMutablePointer<Float>,
                                                       _ grid: UnsafeMutablePointer<Float>) -> Void) {
        Scratch.with(depth * chunk.columns) { lowered in
            Scratch.with(gridGroupChannels * chunk.columns) { grid in body(lowered, grid) }
        }
    }

    /// Runs `body` for each group of each chunk of the batch with the chunk's scratch matrices, the two halves of the
    /// batch on two cores when the product is at least `ExecutionPolicy.splitForwardProduct`.
    private func forEachChunkAndGroup(_ body: (_ chunk: Chunk, _ group: Int, _ lowered: UnsafeMutablePointer<Float>,
                                               _ grid: UnsafeMutablePointer<Float>) -> Void) {
        ExecutionPolicy.run(halves(atLeast: ExecutionPolicy.splitForwardProduct)) { samples in
            for chunk in chunks(samples) {
                withMatrices(chunk) { lowered, grid in for g in 0..<groups { body(chunk, g, lowered, grid) } }
            }
        }
    }

    /// grid[n, g] = F_g · lower(image[n, g]) for every sample n and group g, overwriting `grid`: one product per chunk
    /// and group.
    func correlate(image: [Float], filter: [Float], grid: inout [Float]) {
        guard batch > 0 else { return }  // empty buffers have no base address
        Self.withAddresses(image, filter, &grid) { image, filter, grid in
            forEachChunkAndGroup { chunk, g, lowered, product in
                chunk.lower(image, group: g, into: lowered)
                Gemm.multiply(transA: false, transB: false, m: gridGroupChannels, n: chunk.columns, k: depth, alpha: 1,
                              a: filter + filterStart(g), lda: depth, b: lowered, ldb: chunk.columns, beta: 0,
                              c: product, ldc: chunk.columns)
                chunk.scatter(product, group: g, into: grid)
            }
        }
    }

    /// image[n, g] += unlower(F_gᵀ · grid[n, g]) for every sample n and group g: one product per chunk and group.
    func spread(grid: [Float], filter: [Float], image: inout [Float]) {
        guard batch > 0 else { return }
        Self.withAddresses(grid, filter, &image) { grid, filter, image in
            forEachChunkAndGroup { chunk, g, lowered, gathered in
                chunk.gather(grid, group: g, into: gathered)
                Gemm.multiply(transA: true, transB: false, m: depth, n: chunk.columns, k: gridGroupChannels, alpha: 1,
                              a: filter + filterStart(g), lda: depth, b: gathered, ldb: chunk.columns, beta: 0,
                              c: lowered, ldc: chunk.columns)
                chunk.unlower(lowered, group: g, into: image)
            }
        }
    }

    /// dF_g = Σ_n grid[n, g] · lower(image[n, g])ᵀ for every group g, overwriting `filterGradient`: one product per
    /// chunk and group, the chunks added in order. A large one sums the two halves of the batch on two cores, then
    /// adds the second half's sum to the first's.
    func filterGradient(image: [Float], grid: [Float], into filterGradient: inout [Float]) {
        guard batch > 0 else { filterGradient = [Float](repeating: 0, count: filterGradient.count); return }
        let parts = halves(atLeast: ExecutionPolicy.parallelBackwardProduct), count = filterGradient.count
        Self.withAddresses(image, grid, &filterGradient) { image, grid, gradient in
            guard parts.count == 2 else {
                sumFilterGradient(parts[0], image: image, grid: grid, into: gradient)
                return
            }
            Scratch.with(count) { second in
                _ = ForkJoin.both({ sumFilterGradient(parts[0], image: image, grid: grid, into: gradient) },
                                  { sumFilterGradient(parts[1], image: image, grid: grid, into: second) })
                var i = 0
                while i < count { gradient[i] += second[i]; i &+= 1 }
            }
        }
    }

    /// dF_g = Σ_{n in samples} grid[n, g] · lower(image[n, g])ᵀ, overwriting `gradient`.
    private func sumFilterGradient(_ samples: Range<Int>, image: UnsafePointer<Float>, grid: UnsafePointer<Float>,
                                   into gradient: UnsafeMutablePointer<Float>) {
        for (index, chunk) in chunks(samples).enumerated() {
            withMatrices(chunk) { lowered, gathered in
                for g in 0..<groups {
                    chunk.lower(image, group: g, into: lowered)
                    chunk.gather(grid, group: g, into: gathered)
                    Gemm.multiply(transA: false, transB: true, m: gridGroupChannels, n: depth, k: chunk.columns,
                                  alpha: 1, a: gathered, lda: chunk.columns, b: lowered, ldb: chunk.columns,
                                  beta: index == 0 ? 0 : 1, c: gradient + filterStart(g), ldc: depth)
                }
            }
        }
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
        if x.requiresGrad && weight.requiresGrad && geometry.productSize >= ExecutionPolicy.parallelBackwardProduct {
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
