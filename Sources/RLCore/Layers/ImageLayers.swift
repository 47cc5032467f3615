import SeededRandom

// Layers for NCHW images: convolutions, pooling, flattening, upsampling, with PyTorch's names and defaults.
// Each has `outputShape(for:) throws`, which checks an input shape up front and throws a `ShapeError` naming the layer;
// calling a layer on a shape it refuses stops with that same message.

/// The checks of a convolution's configuration that do not need an input.
private func checkConvolutionConfig(_ name: String, inChannels: Int, outChannels: Int, kernelSize: Size2D,
                                    groups: Int) throws {
    guard inChannels > 0, outChannels > 0, kernelSize.height > 0, kernelSize.width > 0 else {
        throw ShapeError("\(name): channels and kernel size must be positive")
    }
    guard groups > 0, inChannels % groups == 0, outChannels % groups == 0 else {
        throw ShapeError("\(name): groups \(groups) must divide both in_channels \(inChannels) and out_channels \(outChannels)")
    }
}

/// A convolution's weight of `shape` and optional bias `[channels]`, as torch initializes them: kaiming_uniform(a=√5)
/// on the weight, which is uniform in ±1/√fan_in, and the bias uniform in the same bound; fan_in = shape[1]·kH·kW
/// (for a transposed convolution that is out_channels/groups·kH·kW). The weight is drawn first.
private func convolutionParameters(_ shape: [Int], biasChannels: Int?,
                                   using rng: inout SeededGenerator) -> (weight: Tensor, bias: Tensor?) {
    let bound = 1 / Float(shape.dropFirst().reduce(1, *)).squareRoot()
    let weight = Tensor.uniform(shape, low: -bound, high: bound, using: &rng)
    weight.requiresGrad = true
    let bias = biasChannels.map { Tensor.uniform([$0], low: -bound, high: bound, using: &rng) }
    bias?.requiresGrad = true
    return (weight, bias)
}

/// torch's repr of a convolution: `Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))`, plus the
/// settings that differ from their defaults.
private func describeConvolution(_ type: String, _ inChannels: Int, _ outChannels: Int, kernelSize: Size2D,
                                 stride: Size2D, padding: Size2D, outputPadding: Size2D = 0, dilation: Size2D,
                                 groups: Int, bias: Bool) -> String {
    var parts = ["\(inChannels)", "\(outChannels)", "kernel_size=\(kernelSize)", "stride=\(stride)", "padding=\(padding)"]
    if outputPadding != 0 { parts.append("output_padding=\(outputPadding)") }
    if dilation != 1 { parts.append("dilation=\(dilation)") }
    if groups != 1 { parts.append("groups=\(groups)") }
    if !bias { parts.append("bias=False") }
    return "\(type)(\(parts.joined(separator: ", ")))"
}

/// A 2-D convolution (`torch.nn.Conv2d`): input `[N, in, H, W]`, weight `[out, in/groups, kH, kW]`, bias `[out]`.
/// Parameters: `weight`, `bias`.
public final class Conv2d: Layer, CustomStringConvertible {
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Size2D, stride: Size2D, padding: Size2D, dilation: Size2D
    public let groups: Int
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2D, stride: Size2D = 1, padding: Size2D = 0,
                dilation: Size2D = 1, groups: Int = 1, bias: Bool = true, using rng: inout SeededGenerator) {
        (self.inChannels, self.outChannels, self.kernelSize) = (inChannels, outChannels, kernelSize)
        (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
        let name = describeConvolution("Conv2d", inChannels, outChannels, kernelSize: kernelSize, stride: stride,
                                       padding: padding, dilation: dilation, groups: groups, bias: bias)
        checkedShape {
            try checkConvolutionConfig(name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize,
                                       groups: groups)
            try ConvolutionGeometry.checkSteps(name, stride: stride, padding: padding, dilation: dilation)
        }
        (weight, self.bias) = convolutionParameters([outChannels, inChannels / groups, kernelSize.height, kernelSize.width],
                                                    biasChannels: bias ? outChannels : nil, using: &rng)
    }

    public var description: String {
        describeConvolution("Conv2d", inChannels, outChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                            dilation: dilation, groups: groups, bias: bias != nil)
    }

    /// The output shape for an input shape, or a `ShapeError` naming the layer: without building one (no random draws),
    /// so a model builder can check a configuration before it creates the layers.
    public static func outputShape(for input: [Int], inChannels: Int, outChannels: Int, kernelSize: Size2D,
                                   stride: Size2D = 1, padding: Size2D = 0, dilation: Size2D = 1,
                                   groups: Int = 1) throws -> [Int] {
        let name = describeConvolution("Conv2d", inChannels, outChannels, kernelSize: kernelSize, stride: stride,
                                       padding: padding, dilation: dilation, groups: groups, bias: true)
        try checkConvolutionConfig(name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize,
                                   groups: groups)
        return try ConvolutionGeometry.conv2d(
            name, input: input, weight: [outChannels, inChannels / groups, kernelSize.height, kernelSize.width], bias: nil,
            stride: stride, padding: padding, dilation: dilation, groups: groups).gridShape
    }

    /// The output shape for an input shape, or a `ShapeError` naming the layer.
    public func outputShape(for input: [Int]) throws -> [Int] {
        try Self.outputShape(for: input, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize,
                             stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        checkedShape { try outputShape(for: x.shape) }
        return Tensor.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                             groups: groups)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        [(name: "weight", tensor: weight)] + (bias.map { [(name: "bias", tensor: $0)] } ?? [])
    }
}

/// A transposed 2-D convolution (`torch.nn.ConvTranspose2d`): input `[N, in, H, W]`, weight `[in, out/groups, kH, kW]`,
/// bias `[out]`, output height `(H − 1)·stride − 2·padding + dilation·(kH − 1) + outputPadding + 1`.
/// Parameters: `weight`, `bias`.
public final class ConvTranspose2d: Layer, CustomStringConvertible {
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Size2D, stride: Size2D, padding: Size2D, outputPadding: Size2D, dilation: Size2D
    public let groups: Int
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2D, stride: Size2D = 1, padding: Size2D = 0,
                outputPadding: Size2D = 0, groups: Int = 1, bias: Bool = true, dilation: Size2D = 1,
                using rng: inout SeededGenerator) {
        (self.inChannels, self.outChannels, self.kernelSize) = (inChannels, outChannels, kernelSize)
        (self.stride, self.padding, self.outputPadding) = (stride, padding, outputPadding)
        (self.dilation, self.groups) = (dilation, groups)
        let name = describeConvolution("ConvTranspose2d", inChannels, outChannels, kernelSize: kernelSize, stride: stride,
                                       padding: padding, outputPadding: outputPadding, dilation: dilation,
                                       groups: groups, bias: bias)
        checkedShape {
            try checkConvolutionConfig(name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize,
                                       groups: groups)
            try ConvolutionGeometry.checkSteps(name, stride: stride, padding: padding, dilation: dilation)
        }
        (weight, self.bias) = convolutionParameters([inChannels, outChannels / groups, kernelSize.height, kernelSize.width],
                                                    biasChannels: bias ? outChannels : nil, using: &rng)
    }

    public var description: String {
        describeConvolution("ConvTranspose2d", inChannels, outChannels, kernelSize: kernelSize, stride: stride,
                            padding: padding, outputPadding: outputPadding, dilation: dilation, groups: groups,
                            bias: bias != nil)
    }

    /// The output shape for an input shape, or a `ShapeError` naming the layer, without building one.
    public static func outputShape(for input: [Int], inChannels: Int, outChannels: Int, kernelSize: Size2D,
                                   stride: Size2D = 1, padding: Size2D = 0, outputPadding: Size2D = 0,
                                   groups: Int = 1, dilation: Size2D = 1) throws -> [Int] {
        let name = describeConvolution("ConvTranspose2d", inChannels, outChannels, kernelSize: kernelSize, stride: stride,
                                       padding: padding, outputPadding: outputPadding, dilation: dilation,
                                       groups: groups, bias: true)
        try checkConvolutionConfig(name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize,
                                   groups: groups)
        return try ConvolutionGeometry.convTranspose2d(
            name, input: input, weight: [inChannels, outChannels / groups, kernelSize.height, kernelSize.width], bias: nil,
            stride: stride, padding: padding, outputPadding: outputPadding, dilation: dilation, groups: groups).imageShape
    }

    /// The output shape for an input shape, or a `ShapeError` naming the layer.
    public func outputShape(for input: [Int]) throws -> [Int] {
        try Self.outputShape(for: input, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize,
                             stride: stride, padding: padding, outputPadding: outputPadding, groups: groups,
                             dilation: dilation)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        checkedShape { try outputShape(for: x.shape) }
        return Tensor.convTranspose2d(x, weight: weight, bias: bias, stride: stride, padding: padding,
                                      outputPadding: outputPadding, dilation: dilation, groups: groups)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        [(name: "weight", tensor: weight)] + (bias.map { [(name: "bias", tensor: $0)] } ?? [])
    }
}

/// Max pooling (`torch.nn.MaxPool2d`, `ceil_mode=False`); the stride defaults to the kernel size. No parameters.
public final class MaxPool2d: Layer {
    public let kernelSize: Size2D, stride: Size2D, padding: Size2D, dilation: Size2D

    public init(kernelSize: Size2D, stride: Size2D? = nil, padding: Size2D = 0, dilation: Size2D = 1) {
        (self.kernelSize, self.stride, self.padding, self.dilation) = (kernelSize, stride ?? kernelSize, padding, dilation)
    }

    /// The output shape for an input shape, or a `ShapeError` naming the layer.
    public func outputShape(for input: [Int]) throws -> [Int] {
        let name = "MaxPool2d(kernel_size=\(kernelSize), stride=\(stride), padding=\(padding), dilation=\(dilation))"
        let (h, w) = try Tensor.poolAxes(name, input: input, kernel: kernelSize, stride: stride, padding: padding,
                                         dilation: dilation)
        return [input[0], input[1], h.grid, w.grid]
    }

    /// The pooled values and, per value, the flat `h·W + w` position of the maximum in its input plane.
    public func withIndices(_ x: Tensor) -> (values: Tensor, indices: [Int]) {
        checkedShape { try outputShape(for: x.shape) }
        return x.maxPool2d(kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { withIndices(x).values }
    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
}

/// Average pooling (`torch.nn.AvgPool2d`, `ceil_mode=False`); the stride defaults to the kernel size. No parameters.
public final class AvgPool2d: Layer {
    public let kernelSize: Size2D, stride: Size2D, padding: Size2D
    public let countIncludePad: Bool

    public init(kernelSize: Size2D, stride: Size2D? = nil, padding: Size2D = 0, countIncludePad: Bool = true) {
        (self.kernelSize, self.stride, self.padding) = (kernelSize, stride ?? kernelSize, padding)
        self.countIncludePad = countIncludePad
    }

    /// The output shape for an input shape, or a `ShapeError` naming the layer.
    public func outputShape(for input: [Int]) throws -> [Int] {
        let name = "AvgPool2d(kernel_size=\(kernelSize), stride=\(stride), padding=\(padding))"
        let (h, w) = try Tensor.poolAxes(name, input: input, kernel: kernelSize, stride: stride, padding: padding)
        return [input[0], input[1], h.grid, w.grid]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        checkedShape { try outputShape(for: x.shape) }
        return x.avgPool2d(kernelSize: kernelSize, stride: stride, padding: padding, countIncludePad: countIncludePad)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
}

/// Adaptive average pooling to a fixed output size (`torch.nn.AdaptiveAvgPool2d`; 1×1 is global average pooling).
public final class AdaptiveAvgPool2d: Layer {
    public let outputSize: Size2D

    public init(_ outputSize: Size2D) { self.outputSize = outputSize }

    /// The output shape for an input shape, or a `ShapeError` naming the layer.
    public func outputShape(for input: [Int]) throws -> [Int] {
        try Tensor.adaptivePoolShape("AdaptiveAvgPool2d(output_size=\(outputSize))", input: input, outputSize: outputSize)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        checkedShape { try outputShape(for: x.shape) }
        return x.adaptiveAvgPool2d(outputSize)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
}

/// Merges dimensions `startDim...endDim` into one (`torch.nn.Flatten`, default: all but the batch dimension).
public final class Flatten: Layer {
    public let startDim: Int, endDim: Int

    public init(startDim: Int = 1, endDim: Int = -1) { (self.startDim, self.endDim) = (startDim, endDim) }

    /// The output shape for an input shape, or a `ShapeError` naming the layer.
    public func outputShape(for input: [Int]) throws -> [Int] {
        let start = startDim < 0 ? startDim + input.count : startDim, end = endDim < 0 ? endDim + input.count : endDim
        guard start >= 0, end < input.count, start <= end else {
            throw ShapeError("Flatten(start_dim=\(startDim), end_dim=\(endDim)): does not fit an input of shape \(input)")
        }
        return Array(input[..<start]) + [input[start...end].reduce(1, *)] + Array(input[(end + 1)...])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.reshaped(checkedShape { try outputShape(for: x.shape) }) }
    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
}

/// Reorders dimensions (torchvision's `ops.Permute`, `x.permute(*dims)`): output dimension i is input dimension
/// `dims[i]`. `Permute([0, 3, 1, 2])` turns HWC images (Gymnasium's layout) into the NCHW the convolutions take.
public final class Permute: Layer {
    public let dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }

    /// The output shape for an input shape, or a `ShapeError` naming the layer.
    public func outputShape(for input: [Int]) throws -> [Int] {
        guard dims.sorted() == Array(0..<input.count) else {
            throw ShapeError("Permute(\(dims)): does not fit an input of shape \(input)")
        }
        return dims.map { input[$0] }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        checkedShape { _ = try outputShape(for: x.shape) }
        return x.permuted(dims)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
}

/// Splits dimension `dim` into `sizes` (`torch.nn.Unflatten`); one size may be -1 (inferred).
public final class Unflatten: Layer {
    public let dim: Int, sizes: [Int]

    public init(dim: Int, sizes: [Int]) { (self.dim, self.sizes) = (dim, sizes) }

    /// The output shape for an input shape, or a `ShapeError` naming the layer.
    public func outputShape(for input: [Int]) throws -> [Int] {
        let d = dim < 0 ? dim + input.count : dim
        let known = sizes.filter { $0 != -1 }.reduce(1, *), unknowns = sizes.filter { $0 == -1 }.count
        guard d >= 0, d < input.count, unknowns <= 1, sizes.allSatisfy({ $0 > 0 || $0 == -1 }), known > 0,
              unknowns == 1 ? input[d] % known == 0 : input[d] == known else {
            throw ShapeError("Unflatten(dim=\(dim), sizes=\(sizes)): does not fit an input of shape \(input)")
        }
        return Array(input[..<d]) + sizes.map { $0 == -1 ? input[d] / known : $0 } + Array(input[(d + 1)...])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.reshaped(checkedShape { try outputShape(for: x.shape) }) }
    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
}

/// Nearest-neighbour upsampling by integer factors (`torch.nn.Upsample(scale_factor=…, mode='nearest')`).
public final class Upsample: Layer {
    public let scaleFactor: Size2D

    public init(scaleFactor: Size2D) { self.scaleFactor = scaleFactor }

    /// The output shape for an input shape, or a `ShapeError` naming the layer.
    public func outputShape(for input: [Int]) throws -> [Int] {
        try Tensor.upsampleShape("Upsample(scale_factor=\(scaleFactor), mode='nearest')", input: input,
                                 scaleFactor: scaleFactor)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        checkedShape { try outputShape(for: x.shape) }
        return x.upsampleNearest2d(scaleFactor: scaleFactor)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] { [] }
}
