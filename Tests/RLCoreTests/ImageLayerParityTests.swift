import Foundation
import RLCore
import SeededRandom
import Testing

/// The image layers (convolution, transposed convolution, pooling) against the PyTorch recordings: forward values,
/// max-pool indices, and the gradients of L = Σ_k sum(outputs[k] · upstream[k]) w.r.t. the input and the parameters.
/// Every case runs through the layer (`Conv2d`, `MaxPool2d`, ...) built from the file's hyperparameters, with the
/// recorded weight and bias copied into its parameters.
@Suite struct ImageLayerParityTests {
    static let prefixes = ["layers.conv2d", "layers.conv_transpose2d", "layers.max_pool2d", "layers.avg_pool2d",
                           "layers.adaptive_avg_pool2d"]
    /// Float32 arithmetic against float64 recordings, measured as |got − want| / (1 + |want|): the worst measured is
    /// 7.5e-7 (conv2d.rect, d/dweight).
    static let tolerance = 5e-6

    @Test func imageLayersMatchPyTorch() throws {
        let fixtures = try TorchFixture.all(prefixes: Self.prefixes)
        #expect(fixtures.count >= 14, "expected the recorded image-layer fixtures, found \(fixtures.count)")
        for f in fixtures { try check(f) }
    }

    /// A `[height, width]` hyperparameter (or one number for both); nil when absent or null.
    func pair(_ f: TorchFixture, _ key: String) -> Size2D? {
        if let a = f.params[key] as? [NSNumber], a.count == 2 { return Size2D(a[0].intValue, a[1].intValue) }
        if let n = f.params[key] as? NSNumber { return Size2D(n.intValue, n.intValue) }
        return nil
    }

    func int(_ f: TorchFixture, _ key: String) throws -> Int {
        guard let n = f.param(key) else { throw FixtureError.malformed(f.file, "no parameter '\(key)'") }
        return Int(n)
    }

    /// Copies the recorded tensors into the layer's parameters by their PyTorch names (`weight`, `bias`), which must
    /// be the recorded inputs besides `input`, with the same shapes; returns the parameters by name.
    func loaded(_ layer: any Layer, from f: TorchFixture) throws -> [String: Tensor] {
        let named = layer.namedParameters()
        #expect(Set(named.map(\.name)) == Set(f.inputs.keys).subtracting(["input"]), "\(f.name): parameter names")
        for (key, parameter) in named {
            let v = try f.input(key)
            #expect(parameter.shape == v.shape, "\(f.name): \(key) shape \(parameter.shape) vs recorded \(v.shape)")
            parameter.data = v.data.map { Float($0) }
        }
        return Dictionary(uniqueKeysWithValues: named.map { ($0.name, $0.tensor) })
    }

    func check(_ f: TorchFixture) throws {
        let input = try f.input("input").tensor
        input.requiresGrad = true
        var rng = SeededGenerator(seed: 0)
        var parameters: [String: Tensor] = [:]
        var output: Tensor
        var indices: [Int]?
        switch f.op {
        case "conv2d":
            let layer = Conv2d(try int(f, "in_channels"), try int(f, "out_channels"), kernelSize: pair(f, "kernel_size")!,
                               stride: pair(f, "stride") ?? 1, padding: pair(f, "padding") ?? 0,
                               dilation: pair(f, "dilation") ?? 1, groups: Int(f.param("groups") ?? 1),
                               bias: f.params["bias"] as? Bool ?? true, using: &rng)
            parameters = try loaded(layer, from: f)
            output = layer(input)
        case "conv_transpose2d":
            let layer = ConvTranspose2d(try int(f, "in_channels"), try int(f, "out_channels"),
                                        kernelSize: pair(f, "kernel_size")!, stride: pair(f, "stride") ?? 1,
                                        padding: pair(f, "padding") ?? 0, outputPadding: pair(f, "output_padding") ?? 0,
                                        groups: Int(f.param("groups") ?? 1), bias: f.params["bias"] as? Bool ?? true,
                                        dilation: pair(f, "dilation") ?? 1, using: &rng)
            parameters = try loaded(layer, from: f)
            output = layer(input)
        case "max_pool2d":
            #expect(f.params["ceil_mode"] as? Bool != true, "\(f.name): ceil_mode is not supported")
            let layer = MaxPool2d(kernelSize: pair(f, "kernel_size")!, stride: pair(f, "stride"),
                                  padding: pair(f, "padding") ?? 0, dilation: pair(f, "dilation") ?? 1)
            (output, indices) = layer.withIndices(input)
        case "avg_pool2d":
            #expect(f.params["ceil_mode"] as? Bool != true && f.param("divisor_override") == nil,
                    "\(f.name): ceil_mode and divisor_override are not supported")
            output = AvgPool2d(kernelSize: pair(f, "kernel_size")!, stride: pair(f, "stride"), padding: pair(f, "padding") ?? 0,
                               countIncludePad: f.params["count_include_pad"] as? Bool ?? true)(input)
        case "adaptive_avg_pool2d":
            output = AdaptiveAvgPool2d(pair(f, "output_size")!)(input)
        default:
            Issue.record("\(f.name): op '\(f.op)' is not handled by the image-layer parity test")
            return
        }
        for (key, expected) in f.outputs {
            if key == "indices" {
                #expect(indices == expected.ints, "\(f.name): indices")
                continue
            }
            #expect(key == "output", "\(f.name): unexpected output '\(key)'")
            #expect(output.shape == expected.shape, "\(f.name): output shape \(output.shape) vs \(expected.shape)")
            expectClose(output.data, expected.data, tol: Self.tolerance, "\(f.name) output")
        }
        guard let upstream = f.upstream["output"], f.upstream.count == 1 else {
            throw FixtureError.malformed(f.file, "expected one upstream, for 'output'")
        }
        output.backward(gradient: upstream.data.map { Float($0) })
        for (key, expected) in f.grads {
            guard let t = key == "input" ? input : parameters[key] else {
                Issue.record("\(f.name): gradient for unknown input \(key)")
                continue
            }
            expectClose(t.grad ?? [Float](repeating: 0, count: t.count), expected.data, tol: Self.tolerance,
                        "\(f.name) d/d\(key)")
        }
    }
}

/// Finite differences against autodiff for the image ops, on the paths the recordings do not reach: groups, dilation,
/// stride with padding, output padding, the 1×1 shortcut (no lowering), overlapping and adaptive pooling windows.
/// A convolution is linear in each of its inputs, so central differences are exact for any step: a large one keeps
/// the Float32 rounding of the summed loss (hundreds of terms) well below the tolerance.
@Suite struct ImageLayerGradientCheckTests {
    let linearStep: Float = 0.25

    @Test func conv2d() {
        gradientCheck("conv2d 3x3 pad 1", [[2, 3, 6, 7], [4, 3, 3, 3], [4]], h: linearStep) {
            Tensor.conv2d($0[0], weight: $0[1], bias: $0[2], padding: 1)
        }
        gradientCheck("conv2d stride 2 pad 1, rect kernel", [[2, 2, 7, 6], [3, 2, 3, 2], [3]], h: linearStep) {
            Tensor.conv2d($0[0], weight: $0[1], bias: $0[2], stride: [2, 1], padding: [1, 1])
        }
        gradientCheck("conv2d groups 2 dilation 2", [[1, 4, 7, 7], [6, 2, 3, 3], [6]], h: linearStep) {
            Tensor.conv2d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 2, dilation: 2, groups: 2)
        }
        gradientCheck("conv2d 1x1 no bias", [[2, 3, 4, 5], [4, 3, 1, 1]], h: linearStep) { Tensor.conv2d($0[0], weight: $0[1]) }
    }

    @Test func convTranspose2d() {
        gradientCheck("conv_transpose2d stride 2 pad 1 output_padding 1", [[2, 3, 3, 4], [3, 2, 3, 3], [2]], h: linearStep) {
            Tensor.convTranspose2d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 1, outputPadding: 1)
        }
        gradientCheck("conv_transpose2d groups 2 dilation 2", [[1, 4, 3, 3], [4, 3, 3, 2], [6]], h: linearStep) {
            Tensor.convTranspose2d($0[0], weight: $0[1], bias: $0[2], stride: [2, 1], padding: 1, outputPadding: [1, 0],
                                   dilation: 2, groups: 2)
        }
        gradientCheck("conv_transpose2d 1x1", [[2, 3, 2, 3], [3, 2, 1, 1], [2]], h: linearStep) {
            Tensor.convTranspose2d($0[0], weight: $0[1], bias: $0[2])
        }
    }

    /// The forward values against the definitions written as plain loops (in Double), with groups, dilation, stride,
    /// padding and output padding together: the recordings cover none of groups or dilation.
    @Test func forwardMatchesDirectDefinition() {
        var rng = SeededGenerator(seed: 5)
        let (n, groups, s, p, d) = (2, 2, Size2D(2, 1), Size2D(1, 2), Size2D(2, 1))
        let x = Tensor.uniform([n, 4, 7, 6], low: -1, high: 1, using: &rng)
        let w = Tensor.uniform([6, 2, 3, 2], low: -1, high: 1, using: &rng), b = Tensor.uniform([6], using: &rng)
        let y = Tensor.conv2d(x, weight: w, bias: b, stride: s, padding: p, dilation: d, groups: groups)
        let (oh, ow) = ((7 + 2 * 1 - 2 * 2 - 1) / 2 + 1, (6 + 2 * 2 - 1 * 1 - 1) / 1 + 1)
        #expect(y.shape == [n, 6, oh, ow])
        var expected = [Double]()
        for i in 0..<n { for o in 0..<6 { for oy in 0..<oh { for ox in 0..<ow {
            var sum = Double(b.data[o])
            let g = o / 3
            for c in 0..<2 { for ky in 0..<3 { for kx in 0..<2 {
                let iy = oy * s.height - p.height + ky * d.height, ix = ox * s.width - p.width + kx * d.width
                guard (0..<7).contains(iy), (0..<6).contains(ix) else { continue }
                sum += Double(x.data[((i * 4 + g * 2 + c) * 7 + iy) * 6 + ix]) * Double(w.data[((o * 2 + c) * 3 + ky) * 2 + kx])
            } } }
            expected.append(sum)
        } } } }
        expectClose(y.data, expected, tol: 1e-5, "conv2d vs direct")

        // Transposed: every input cell scatters weight · value to output (y·s − p + ky·d, x·s − p + kx·d).
        let xt = Tensor.uniform([n, 4, 3, 6], low: -1, high: 1, using: &rng)
        let wt = Tensor.uniform([4, 3, 3, 2], low: -1, high: 1, using: &rng), bt = Tensor.uniform([6], using: &rng)
        let op = Size2D(1, 0)
        let yt = Tensor.convTranspose2d(xt, weight: wt, bias: bt, stride: s, padding: p, outputPadding: op, dilation: d,
                                        groups: groups)
        let (th, tw) = ((3 - 1) * 2 - 2 * 1 + 2 * 2 + 1 + 1, (6 - 1) * 1 - 2 * 2 + 1 * 1 + 0 + 1)
        #expect(yt.shape == [n, 6, th, tw])
        var scattered = [Double](repeating: 0, count: n * 6 * th * tw)
        for i in 0..<n { for o in 0..<6 { for q in 0..<(th * tw) { scattered[(i * 6 + o) * th * tw + q] = Double(bt.data[o]) } } }
        for i in 0..<n { for c in 0..<4 { for iy in 0..<3 { for ix in 0..<6 {
            let g = c / 2
            for oc in 0..<3 { for ky in 0..<3 { for kx in 0..<2 {
                let oy = iy * s.height - p.height + ky * d.height, ox = ix * s.width - p.width + kx * d.width
                guard (0..<th).contains(oy), (0..<tw).contains(ox) else { continue }
                scattered[((i * 6 + g * 3 + oc) * th + oy) * tw + ox] +=
                    Double(xt.data[((i * 4 + c) * 3 + iy) * 6 + ix]) * Double(wt.data[((c * 3 + oc) * 3 + ky) * 2 + kx])
            } } }
        } } } }
        expectClose(yt.data, scattered, tol: 1e-5, "conv_transpose2d vs direct")
    }

    /// The fast path (several samples lowered into one product, the batch chunked and split over two cores, the
    /// weight gradient summed in two halves) against the definitions as plain loops in Double, for the values and all
    /// three gradients of both ops: a batch large enough for several chunks in each half, with groups and stride.
    @Test func chunkedProductsMatchDirectDefinition() {
        var rng = SeededGenerator(seed: 9)
        let (n, groups, s, p) = (48, 2, Size2D(2, 1), Size2D(1, 1))
        let (imageH, imageW, kH, kW, imageC, gridC) = (31, 16, 3, 3, 8, 16)
        let (gridH, gridW) = ((imageH + 2 * p.height - kH) / s.height + 1, (imageW + 2 * p.width - kW) / s.width + 1)
        let imageCg = imageC / groups, gridCg = gridC / groups
        // A weight gradient is a Float sum of 48 · 256 products (up to 1.6e-5 off here); the other values of 36.
        let weightTolerance = 1e-4
        /// Calls `body(image index, grid index, weight index)` for every product term of the correlation
        /// grid[n, o, y, x] = Σ image[n, g·Cg + c, y·s − p + i, x·s − p + j] · weight[o, c, i, j].
        func forEachTerm(_ body: (Int, Int, Int) -> Void) {
            for b in 0..<n { for o in 0..<gridC { for y in 0..<gridH { for x in 0..<gridW {
                let g = o / gridCg
                for c in 0..<imageCg { for i in 0..<kH { for j in 0..<kW {
                    let iy = y * s.height - p.height + i, ix = x * s.width - p.width + j
                    guard (0..<imageH).contains(iy), (0..<imageW).contains(ix) else { continue }
                    body(((b * imageC + g * imageCg + c) * imageH + iy) * imageW + ix, ((b * gridC + o) * gridH + y) * gridW + x,
                         ((o * imageCg + c) * kH + i) * kW + j)
                } } }
            } } } }
        }
        /// The op's output from its input and weight, and the gradients of Σ output · upstream, as plain loops.
        func direct(image: [Float]?, grid: [Float]?, weight: [Float], upstream: [Float]) -> [[Double]] {
            var out = [Double](repeating: 0, count: upstream.count)
            var gin = [Double](repeating: 0, count: (image ?? grid!).count), gw = [Double](repeating: 0, count: weight.count)
            forEachTerm { im, gr, wi in
                let w = Double(weight[wi])
                if let image {  // conv2d: the grid is the output
                    out[gr] += Double(image[im]) * w
                    gin[im] += Double(upstream[gr]) * w
                    gw[wi] += Double(upstream[gr]) * Double(image[im])
                } else if let grid {  // conv_transpose2d: the image is the output
                    out[im] += Double(grid[gr]) * w
                    gin[gr] += Double(upstream[im]) * w
                    gw[wi] += Double(upstream[im]) * Double(grid[gr])
                }
            }
            return [out, gin, gw]
        }
        let x = Tensor.uniform([n, imageC, imageH, imageW], low: -1, high: 1, using: &rng)
        let w = Tensor.uniform([gridC, imageCg, kH, kW], low: -1, high: 1, using: &rng)
        let u = Tensor.uniform([n, gridC, gridH, gridW], low: -1, high: 1, using: &rng)
        for t in [x, w] { t.requiresGrad = true }
        let y = Tensor.conv2d(x, weight: w, stride: s, padding: p, groups: groups)
        y.backward(gradient: u.data)
        let conv = direct(image: x.data, grid: nil, weight: w.data, upstream: u.data)
        for (actual, expected, what) in zip3([y.data, x.grad!, w.grad!], conv, ["conv2d", "conv2d d/dinput", "conv2d d/dweight"]) {
            expectClose(actual, expected, tol: what.hasSuffix("weight") ? weightTolerance : 1e-5, what)
        }

        // The transposed convolution of a grid-shaped input gives an image-shaped output (rows 2·(16−1) − 2 + 3 = 31).
        let xt = Tensor.uniform([n, gridC, gridH, gridW], low: -1, high: 1, using: &rng)
        let wt = Tensor.uniform([gridC, imageCg, kH, kW], low: -1, high: 1, using: &rng)
        let ut = Tensor.uniform([n, imageC, imageH, imageW], low: -1, high: 1, using: &rng)
        for t in [xt, wt] { t.requiresGrad = true }
        let yt = Tensor.convTranspose2d(xt, weight: wt, stride: s, padding: p, groups: groups)
        #expect(yt.shape == [n, imageC, imageH, imageW])
        yt.backward(gradient: ut.data)
        let transposed = direct(image: nil, grid: xt.data, weight: wt.data, upstream: ut.data)
        for (actual, expected, what) in zip3([yt.data, xt.grad!, wt.grad!], transposed,
                                             ["conv_transpose2d", "conv_transpose2d d/dinput", "conv_transpose2d d/dweight"]) {
            expectClose(actual, expected, tol: what.hasSuffix("weight") ? weightTolerance : 1e-5, what)
        }
    }

    @Test func pooling() {
        gradientCheck("max_pool2d k3 s2 p1", [[2, 2, 6, 7]], h: 1e-3) {
            $0[0].maxPool2d(kernelSize: 3, stride: 2, padding: 1).values
        }
        gradientCheck("max_pool2d dilation 2", [[1, 2, 7, 6]], h: 1e-3) {
            $0[0].maxPool2d(kernelSize: [2, 3], stride: 1, padding: [1, 0], dilation: 2).values
        }
        gradientCheck("avg_pool2d include pad", [[2, 2, 5, 6]]) { $0[0].avgPool2d(kernelSize: 3, stride: 2, padding: 1) }
        gradientCheck("avg_pool2d exclude pad", [[2, 2, 5, 6]]) {
            $0[0].avgPool2d(kernelSize: 3, stride: 2, padding: 1, countIncludePad: false)
        }
        gradientCheck("adaptive_avg_pool2d 3x4 from 7x5", [[2, 2, 7, 5]]) { $0[0].adaptiveAvgPool2d([3, 4]) }
        gradientCheck("adaptive_avg_pool2d 1x1", [[2, 3, 4, 5]]) { $0[0].adaptiveAvgPool2d(1) }
        gradientCheck("upsample nearest", [[2, 2, 3, 2]]) { $0[0].upsampleNearest2d(scaleFactor: [2, 3]) }
    }
}

/// Shapes and configurations the image layers refuse: a `ShapeError` naming the layer, thrown by `outputShape(for:)`
/// before anything runs.
/// The triples of three sequences of equal length.
private func zip3<A, B, C>(_ a: [A], _ b: [B], _ c: [C]) -> [(A, B, C)] { a.indices.map { (a[$0], b[$0], c[$0]) } }

@Suite struct ImageLayerShapeTests {
    func refuses(_ mentions: [String], sourceLocation: SourceLocation = #_sourceLocation, _ check: () throws -> [Int]) {
        do {
            let shape = try check()
            Issue.record("accepted, giving \(shape)", sourceLocation: sourceLocation)
        } catch let error as ShapeError {
            for m in mentions {
                #expect(error.description.contains(m), "'\(error)' does not mention \(m)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("threw \(error), not a ShapeError", sourceLocation: sourceLocation)
        }
    }

    @Test func badShapesThrow() throws {
        var rng = SeededGenerator(seed: 1)
        let conv = Conv2d(1, 6, kernelSize: 5, padding: 2, using: &rng)
        #expect(try conv.outputShape(for: [64, 1, 28, 28]) == [64, 6, 28, 28])
        refuses(["Conv2d(1, 6", "3 channels", "[64, 3, 28, 28]"]) { try conv.outputShape(for: [64, 3, 28, 28]) }
        refuses(["Conv2d(1, 6", "rank 4", "[1, 28, 28]"]) { try conv.outputShape(for: [1, 28, 28]) }
        refuses(["Conv2d(1, 6", "larger than the padded input"]) { try conv.outputShape(for: [2, 1, 0, 0]) }
        refuses(["Conv2d(3, 8", "larger than the padded input", "(4, 4)"]) {
            try Conv2d.outputShape(for: [2, 3, 4, 4], inChannels: 3, outChannels: 8, kernelSize: 5)
        }
        refuses(["Conv2d(4, 6", "groups 4"]) {
            try Conv2d.outputShape(for: [2, 4, 8, 8], inChannels: 4, outChannels: 6, kernelSize: 3, groups: 4)
        }
        refuses(["Conv2d(2, 2", "stride"]) {
            try Conv2d.outputShape(for: [2, 2, 8, 8], inChannels: 2, outChannels: 2, kernelSize: 3, stride: 0)
        }

        let deconv = ConvTranspose2d(128, 64, kernelSize: 4, stride: 2, padding: 1, using: &rng)
        #expect(try deconv.outputShape(for: [64, 128, 7, 7]) == [64, 64, 14, 14])
        refuses(["ConvTranspose2d(128, 64", "64 channels"]) { try deconv.outputShape(for: [64, 64, 7, 7]) }
        refuses(["ConvTranspose2d(2, 2", "output padding"]) {
            try ConvTranspose2d.outputShape(for: [1, 2, 3, 3], inChannels: 2, outChannels: 2, kernelSize: 3, stride: 2,
                                            outputPadding: 2)
        }
        refuses(["ConvTranspose2d(2, 2", "empty output"]) {
            try ConvTranspose2d.outputShape(for: [1, 2, 1, 1], inChannels: 2, outChannels: 2, kernelSize: 1, padding: 1)
        }

        #expect(try MaxPool2d(kernelSize: 2).outputShape(for: [2, 3, 7, 7]) == [2, 3, 3, 3])
        refuses(["MaxPool2d", "larger than the padded input"]) { try MaxPool2d(kernelSize: 3).outputShape(for: [1, 1, 2, 2]) }
        refuses(["MaxPool2d", "at most half"]) { try MaxPool2d(kernelSize: 2, padding: 2).outputShape(for: [1, 1, 8, 8]) }
        refuses(["AvgPool2d", "rank 4"]) { try AvgPool2d(kernelSize: 2).outputShape(for: [4, 4]) }
        refuses(["AdaptiveAvgPool2d", "rank 4"]) { try AdaptiveAvgPool2d(1).outputShape(for: [3, 4, 4]) }
        refuses(["Upsample", "rank 4"]) { try Upsample(scaleFactor: 2).outputShape(for: [3, 4, 4]) }
        refuses(["Flatten"]) { try Flatten(startDim: 2).outputShape(for: [3]) }
        refuses(["Unflatten"]) { try Unflatten(dim: 1, sizes: [4, 5]).outputShape(for: [2, 21]) }
        #expect(try Flatten().outputShape(for: [2, 3, 4, 5]) == [2, 60])
        #expect(try Unflatten(dim: 1, sizes: [3, -1]).outputShape(for: [2, 12]) == [2, 3, 4])
    }

    /// PyTorch's default initialization from the generator passed: bounds ±1/√fan_in with fan_in = weight.shape[1]·kH·kW
    /// (out_channels/groups·kH·kW for a transposed convolution); the same seed gives the same parameters.
    @Test func initializationAndNames() {
        var rng = SeededGenerator(seed: 7)
        let conv = Conv2d(4, 6, kernelSize: [3, 2], groups: 2, using: &rng)
        #expect(conv.namedParameters().map(\.name) == ["weight", "bias"])
        #expect(conv.weight.shape == [6, 2, 3, 2] && conv.bias!.shape == [6])
        let bound = 1 / Float(2 * 3 * 2).squareRoot()
        #expect((conv.weight.data + conv.bias!.data).allSatisfy { abs($0) <= bound })
        #expect((conv.weight.data + conv.bias!.data).contains { abs($0) > 0.8 * bound })

        let deconv = ConvTranspose2d(6, 4, kernelSize: 3, groups: 2, bias: false, using: &rng)
        #expect(deconv.namedParameters().map(\.name) == ["weight"])
        #expect(deconv.weight.shape == [6, 2, 3, 3])
        let deconvBound = 1 / Float(2 * 3 * 3).squareRoot()
        #expect(deconv.weight.data.allSatisfy { abs($0) <= deconvBound })
        #expect(deconv.weight.data.contains { abs($0) > 0.8 * deconvBound })

        var again = SeededGenerator(seed: 7)
        #expect(Conv2d(4, 6, kernelSize: [3, 2], groups: 2, using: &again).weight.data == conv.weight.data)
    }

    /// Max pooling's rules the recordings do not exercise: on a tie the first maximum scanning row by row wins (and
    /// gets the gradient, added up over overlapping windows); padding never wins, even over negative values.
    @Test func maxPoolTiesAndPadding() {
        let x = Tensor([1, 3, 3, 3, 2, 0], shape: [1, 1, 2, 3])
        x.requiresGrad = true
        let (values, indices) = x.maxPool2d(kernelSize: 2, stride: 1)
        #expect(values.data == [3, 3] && indices == [1, 1])
        values.sum().backward()
        #expect(x.grad == [0, 2, 0, 0, 0, 0])
        let negative = Tensor([-5, -4, -3, -2], shape: [1, 1, 2, 2])
        let padded = negative.maxPool2d(kernelSize: 2, stride: 2, padding: 1)
        #expect(padded.values.data == [-5, -4, -3, -2] && padded.indices == [0, 1, 2, 3])
    }

    /// Windows without padding take the scan that skips the bounds tests (LeNet's pools): on values drawn from a few
    /// (ties everywhere, NaN, −∞, signed zeros), each maximum and winner is the rule's — the last NaN of the window if
    /// it has one (torch's `val > max || isnan(val)`), else the first cell scanning row by row that holds the maximum —
    /// for strides below, at and above the kernel, and with dilation; padding 1 (the general loop) agrees as well.
    @Test(arguments: [(2, 2, 1, 0), (2, 1, 1, 0), (3, 2, 1, 0), (2, 3, 1, 0), (2, 1, 2, 0), (3, 2, 1, 1)])
    func maxPoolFollowsItsRuleWithAndWithoutPadding(kernel: Int, stride: Int, dilation: Int, padding: Int) {
        var rng = SeededGenerator(seed: UInt64(kernel * 100 + stride * 10 + dilation))
        let pool: [Float] = [-.infinity, -1, -0.0, 0, 1, 2, .nan]
        let (planes, height, width) = (3, 9, 8)
        let x = Tensor((0..<(planes * height * width)).map { _ in pool[rng.nextInt(below: pool.count)] },
                       shape: [1, planes, height, width])
        let (values, indices) = x.maxPool2d(kernelSize: Size2D(kernel, kernel), stride: Size2D(stride, stride),
                                            padding: Size2D(padding, padding), dilation: Size2D(dilation, dilation))
        let span = dilation * (kernel - 1) + 1, grid = (height + 2 * padding - span) / stride + 1
        let gridWidth = (width + 2 * padding - span) / stride + 1
        #expect(values.shape == [1, planes, grid, gridWidth])
        for p in 0..<planes {
            for oy in 0..<grid {
                for ox in 0..<gridWidth {
                    var cells: [Int] = []
                    for i in 0..<kernel {
                        for j in 0..<kernel {
                            let (y, x) = (oy * stride - padding + i * dilation, ox * stride - padding + j * dilation)
                            if y >= 0 && y < height && x >= 0 && x < width { cells.append(y * width + x) }
                        }
                    }
                    let plane = Array(x.data[(p * height * width)..<((p + 1) * height * width)])
                    let largest = cells.map { plane[$0] }.max()!
                    let winner = cells.last { plane[$0].isNaN } ?? cells.first { plane[$0] == largest }!
                    let o = (p * grid + oy) * gridWidth + ox
                    #expect(indices[o] == winner, "plane \(p), output (\(oy), \(ox))")
                    #expect(values.data[o].bitPattern == plane[winner].bitPattern, "plane \(p), output (\(oy), \(ox))")
                }
            }
        }
    }

    /// Adaptive windows are PyTorch's ⌊i·H/out⌋ ..< ⌈(i+1)·H/out⌉: for 5 rows into 3, rows 0..<2, 1..<4 and 3..<5.
    @Test func adaptiveWindows() {
        let x = Tensor([1, 2, 3, 4, 5, 10, 20, 30, 40, 50], shape: [1, 1, 5, 2])
        expectClose(x.adaptiveAvgPool2d([3, 1]).data, [(1 + 2 + 3 + 4) / 4, (3 + 4 + 5 + 10 + 20 + 30) / 6, (20 + 30 + 40 + 50) / 4],
                    tol: 1e-6, "adaptive 5 → 3 rows")
    }

    /// Large convolutions split the batch between two cores and run the input and weight gradients beside each other:
    /// the values are the same bits as on one core.
    @Test func sameValuesOnOneCoreOrTwo() {
        func run(parallel: Bool) -> [[Float]] {
            ForkJoin.isParallel = parallel
            defer { ForkJoin.isParallel = true }
            var rng = SeededGenerator(seed: 11)
            let conv = Conv2d(8, 16, kernelSize: 3, stride: 2, padding: 1, using: &rng)
            let deconv = ConvTranspose2d(16, 8, kernelSize: 4, stride: 2, padding: 1, using: &rng)
            let x = Tensor.uniform([16, 8, 32, 32], low: -1, high: 1, using: &rng)
            x.requiresGrad = true
            let y = deconv(conv(x))
            (y * y).sum().backward()
            return [y.data, x.grad!] + (conv.parameters + deconv.parameters).map { $0.grad! }
        }
        #expect(run(parallel: true) == run(parallel: false))
    }

    /// Nearest upsampling repeats each cell; Flatten/Unflatten only reshape; a layer stack runs end to end.
    @Test func layersCompose() {
        let x = Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2])
        #expect(Upsample(scaleFactor: [1, 2])(x).data == [1, 1, 2, 2, 3, 3, 4, 4])
        var rng = SeededGenerator(seed: 3)
        let net = Sequential([Conv2d(1, 6, kernelSize: 5, padding: 2, using: &rng), ActivationLayer(.relu),
                              MaxPool2d(kernelSize: 2), Conv2d(6, 16, kernelSize: 5, using: &rng), ActivationLayer(.relu),
                              AvgPool2d(kernelSize: 2), Flatten(), Linear(16 * 5 * 5, 10, using: &rng)])
        let images = Tensor.uniform([3, 1, 28, 28], using: &rng)
        let logits = net(images)
        #expect(logits.shape == [3, 10])
        crossEntropyLoss(logits, labels: [1, 2, 3]).backward()
        #expect(net.namedParameters().map(\.name).prefix(2) == ["0.weight", "0.bias"])
        #expect(net.parameters.allSatisfy { $0.grad != nil })
        let back = Unflatten(dim: 1, sizes: [16, 5, 5])(Flatten()(Tensor.zeros([2, 16, 5, 5])))
        #expect(back.shape == [2, 16, 5, 5])
        // An empty batch gives an empty batch, in both directions.
        #expect(net.layers[0](Tensor.zeros([0, 1, 28, 28])).shape == [0, 6, 28, 28])
        #expect(ConvTranspose2d(6, 1, kernelSize: 5, padding: 2, using: &rng)(Tensor.zeros([0, 6, 28, 28])).shape == [0, 1, 28, 28])
    }
}
