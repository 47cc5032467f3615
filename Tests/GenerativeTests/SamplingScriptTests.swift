import Foundation
import Generative
import RLCore
import SeededRandom
import Testing
import TestSupport
import Training

/// The numpy script of docs/checkpoints.md (the README points to it) samples a generative checkpoint as rlbench
/// does: the same values from the same noise, for every layer type a generator description uses (conditional models,
/// an autoencoder's code Gaussian, a GAN's tanh mapped to [0, 1], a GAN on points, transposed convolutions and batch
/// norm in eval mode, DCGAN's `dense` layer).
@Suite struct SamplingScriptTests {
    @Test func scriptSamplesAsRlbenchDoes() throws {
        let python = try #require(CLI.executable(named: "python3"))
        let doc = try String(contentsOf: CLI.root.appendingPathComponent("docs/checkpoints.md"), encoding: .utf8)
        let blocks = doc.matches(of: /```python\n([\s\S]*?)```/).map { String($0.1) }
        var rng = SeededGenerator(seed: 5)
        let script = try #require(blocks.first { $0.contains("meta[\"generator\"]") }, "no sampling script in docs/checkpoints.md")
        for (model, data, overrides) in [("vae", "digits", [String]()), ("ae", "digits", ["conditional=true"]),
                                         ("gan", "digits", ["conditional=true"]), ("gan", "ring8", ["epochs=1"]),
                                         ("conv-vae", "digits", []), ("dcgan", "digits", ["conditional=true"]),
                                         ("dcgan", "digits", ["generator_average=0.9", "dense=16"])] {
            let dir = Scratch.directory("readme-\(model)")
            var options = GenerativeRunOptions(model: model, data: data, outputDirectory: dir)
            options.epochs = 1
            options.overrides = overrides
            options.progress = .quiet
            options.scoreSamples = false
            let run = try GenerativeRun(options)
            try run.run()
            let noise = Tensor.normal([16, run.model.latentSize], using: &rng)
            let expected = run.model.generate(noise: noise, labels: [Int](repeating: 3, count: 16))
            try NPY.write(noise, to: dir.appendingPathComponent("noise.npy"))
            try NPY.write(expected, to: dir.appendingPathComponent("expected.npy"))
            try script.write(to: dir.appendingPathComponent("sample.py"), atomically: true, encoding: .utf8)
            let ran = try CLI.runTool(python, ["sample.py", dir.appendingPathComponent("final.safetensors").path, "noise.npy"], in: dir)
            #expect(ran.status == 0, "\(model) on \(data): \(ran.err)")
            let compare = try CLI.runTool(python, ["-c", """
                import numpy as np
                a, b = np.load("samples.npy"), np.load("expected.npy")
                print(a.shape[0] == b.shape[0] and a.size == b.size and float(np.abs(a.reshape(b.shape) - b).max()))
                """], in: dir)
            let difference = Double(compare.out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .infinity
            #expect(difference < 1e-4, "\(model) on \(data): the script's samples differ by \(compare.out) \(compare.err)")
        }
    }
}
