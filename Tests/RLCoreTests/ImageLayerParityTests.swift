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
    /// Float32 arithmetic against float64 recordings, measured as |got − want| / (1 + |want|).
    static let tolerance = 1e-5

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
