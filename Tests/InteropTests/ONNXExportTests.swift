import Agents
import Environments
import Foundation
import Generative
import Interop
import RLCore
import SeededRandom
import Testing
import TestSupport
import Training

/// `rlbench export --onnx`: onnxruntime runs the exported networks and gives rlbench's outputs on a batch of inputs:
/// the same greedy actions, the same clipped Gaussian means, DQN's Q-values and the generators' samples to 1e-5.
@Suite struct ONNXExportTests {
    /// Runs `model.onnx` in `dir` on the inputs in `inputs.json` ({name: [rows]}, label rows as integers) with
    /// onnxruntime; returns each output as a flat list of numbers.
    static func onnxruntime(_ model: URL, _ inputs: [String: Any], in dir: URL) throws -> [String: [Double]] {
        let python = try #require(CLI.executable(named: "python3"))
        let file = dir.appendingPathComponent("inputs.json")
        try JSONSerialization.data(withJSONObject: inputs).write(to: file)
        let ran = try CLI.runTool(python, ["-c", """
            import json, sys, numpy as np, onnxruntime as ort
            session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            raw = json.load(open(sys.argv[2]))
            feeds = {i.name: np.asarray(raw[i.name], dtype=np.int64 if i.type == "tensor(int64)" else np.float32)
                     for i in session.get_inputs()}
            names = [o.name for o in session.get_outputs()]
            print(json.dumps({n: np.asarray(v, dtype=np.float64).ravel().tolist() for n, v in zip(names, session.run(names, feeds))}))
            """, model.path, file.path])
        #expect(ran.status == 0, "onnxruntime failed on \(model.lastPathComponent): \(ran.err)")
        let last = ran.out.split(separator: "\n").last.map(String.init) ?? ""
        return try #require(JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: [Double]], "no outputs: \(ran.out) \(ran.err)")
    }

    static func trainAgent(_ agent: String, _ environment: String, steps: Int, _ overrides: [String] = [],
                           options environmentOptions: [String: String] = [:]) throws -> URL {
        var options = RunOptions(agent: agent, environment: environment, outputDirectory: Scratch.directory("onnx-\(agent)"))
        options.steps = steps
        options.overrides = overrides
        options.environmentOptions = environmentOptions
        options.evaluationEpisodes = 0
        options.progress = .quiet
        return try TrainingRun(options).run().finalCheckpoint
    }

    @Test(arguments: [
        ("ppo", "CartPole-v1", ["normalize=true"], [String: String]()),   // logits, with observation normalization
        ("ppo", "Pendulum-v1", ["normalize=true", "n_steps=256"], [:]),    // gSDE's Gaussian mean, clipped to [-2, 2]
        ("dqn", "CartPole-v1", ["dueling=true", "learning_starts=100"], [:]),   // Q = V + A - mean(A)
        ("dqn", "MountainCar-v0", ["policy_kwargs.activation_fn=softplus"], [:]),
        ("qlearning", "FrozenLake-v1", [], ["is_slippery": "false"]),      // a Q-table lookup
        ("dqn", "MinAtar/Breakout-v1", ["learning_starts=1800"], [:]),     // MinAtarCNN: unflatten, permute, conv2d
    ])
    func agentActsAsRlbenchDoes(agent: String, environment: String, overrides: [String], options: [String: String]) throws {
        let checkpoint = try Self.trainAgent(agent, environment, steps: 2048, overrides, options: options)
        let dir = checkpoint.deletingLastPathComponent()
        let model = dir.appendingPathComponent("policy.onnx")
        let signature = try ONNXExport.write(checkpoint: checkpoint, to: model)
        #expect(signature.inputs.map(\.name) == ["observation"])

        let saved = try SavedAgent.load(checkpoint)
        let observations = try randomWalkObservations(try saved.environment.make(), count: 200, resetSeed: 3)
        let actions = saved.agent.act(batch: observations.flatMap { $0 }, count: observations.count, deterministic: true)
        let outputs = try Self.onnxruntime(model, ["observation": observations.map { $0.map(Double.init) }], in: dir)
        let onnxActions = try #require(outputs["action"])
        switch actions[0] {
        case .discrete:
            #expect(signature.outputs.map(\.name) == ["scores", "action"])
            #expect(onnxActions == actions.map { action -> Double in
                guard case let .discrete(a) = action else { return -1 }
                return Double(a)
            }, "\(agent) on \(environment): onnxruntime's greedy actions differ from rlbench's")
            if let dqn = saved.agent as? DQNAgent {  // max_a Q(s, a), as rlbench computes it
                let scores = try #require(outputs["scores"]), n = scores.count / observations.count
                for (i, observation) in observations.enumerated() {
                    let best = scores[(i * n)..<((i + 1) * n)].max()!, expected = dqn.stateValue(observation)
                    #expect(abs(best - expected) <= 1e-5 * max(1, abs(expected)), "row \(i): onnxruntime \(best), rlbench \(expected)")
                }
            }
        case .continuous:
            #expect(signature.outputs.map(\.name) == ["mean", "action"])
            let expected = actions.flatMap { action -> [Double] in
                guard case let .continuous(a) = action else { return [] }
                return a.map(Double.init)
            }
            #expect(onnxActions.count == expected.count)
            let worst = zip(onnxActions, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-5, "\(agent) on \(environment): onnxruntime's actions differ from rlbench's by \(worst)")
            // Not every mean is at a bound: the comparison saw the network's values, not only the clipping.
            #expect(expected.contains { abs($0) < 1.99 })
        }
    }

    /// A recurrent PPO policy: the model takes the LSTM's state and gives the next one, and fed its own state back
    /// over three recorded random walks of 220 steps side by side (each row's state zeroed where its episode begins), onnxruntime
    /// gives rlbench's actions and states at every step, to 1e-5: one layer with normalized observations and logits,
    /// and two layers with a clipped gSDE mean.
    @Test(arguments: [
        ("CartPoleNoVel-v1", [String]()),
        ("PendulumNoVel-v1", ["n_steps=256", "policy_kwargs.n_lstm_layers=2", "policy_kwargs.shared_lstm=true",
                              "policy_kwargs.enable_critic_lstm=false"]),
    ])
    func recurrentPolicyCarriesItsState(environment: String, overrides: [String]) throws {
        let checkpoint = try Self.trainAgent("recurrent-ppo", environment, steps: 2048, overrides)
        let dir = checkpoint.deletingLastPathComponent()
        let model = dir.appendingPathComponent("policy.onnx")
        let signature = try ONNXExport.write(checkpoint: checkpoint, to: model)
        let saved = try SavedAgent.load(checkpoint)
        let agent = try #require(saved.agent as? RecurrentPPOAgent)
        let state = agent.actingMemory
        #expect(signature.inputs.map(\.name) == ["observation", "h", "c"])
        #expect(signature.inputs[1].shape == [state.layers, -1, state.hidden])
        #expect(signature.outputs.map(\.name).suffix(3) == ["action", "h_next", "c_next"])

        let rows = 3, steps = 220
        let walks = try (0..<rows).map { try randomWalk(try saved.environment.make(), count: steps, resetSeed: 3 + UInt64($0)) }
        #expect(walks.allSatisfy { $0.dropFirst().contains { $0.begins } }, "a walk crosses no episode boundary")
        var actions: [Double] = [], h: [Double] = [], c: [Double] = []
        agent.beginEpisodes(count: rows)
        for t in 0..<steps {
            agent.actingMemory.forget(walks.map { $0[t].begins })
            actions += agent.act(batch: walks.flatMap { $0[t].observation }, count: rows, deterministic: true).flatMap(\.numbers)
            h += agent.actingMemory.h.map(Double.init)
            c += agent.actingMemory.c.map(Double.init)
        }

        let python = try #require(CLI.executable(named: "python3"))
        let file = dir.appendingPathComponent("walks.json")
        let observations: [[[Double]]] = (0..<steps).map { t in walks.map { $0[t].observation.map(Double.init) } }
        let begins: [[Bool]] = (0..<steps).map { t in walks.map { $0[t].begins } }
        try JSONSerialization.data(withJSONObject: ["observations": observations, "begins": begins] as [String: Any]).write(to: file)
        let ran = try CLI.runTool(python, ["-c", """
            import json, sys, numpy as np, onnxruntime as ort
            session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            walks = json.load(open(sys.argv[2]))
            layers, _, hidden = session.get_inputs()[1].shape
            h = c = np.zeros((layers, len(walks["begins"][0]), hidden), np.float32)
            outputs = {"action": [], "h_next": [], "c_next": []}
            for observations, begins in zip(walks["observations"], walks["begins"]):
                keep = 1 - np.asarray(begins, np.float32)[:, None]   # zero where an episode begins
                h, c = h * keep, c * keep
                values = session.run(list(outputs), {"observation": np.asarray(observations, np.float32), "h": h, "c": c})
                for name, value in zip(outputs, values):
                    outputs[name] += np.asarray(value, np.float64).ravel().tolist()
                h, c = values[1], values[2]
            print(json.dumps(outputs))
            """, model.path, file.path])
        #expect(ran.status == 0, "onnxruntime failed: \(ran.err)")
        let printed = ran.out.split(separator: "\n").last.map(String.init) ?? ""
        let outputs = try #require(JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: [Double]], "no outputs: \(ran.out)")
        for (name, expected) in [("action", actions), ("h_next", h), ("c_next", c)] {
            let theirs = try #require(outputs[name])
            #expect(theirs.count == expected.count, "\(name): \(theirs.count) values, rlbench \(expected.count)")
            let worst = zip(theirs, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-5, "\(environment): onnxruntime's \(name) differs from rlbench's by \(worst)")
        }

        // docs/interop.md's snippet, on the first row's first episode, ends in rlbench's state.
        let interop = try String(contentsOf: CLI.root.appendingPathComponent("docs/interop.md"), encoding: .utf8)
        let snippet = try #require(interop.matches(of: /```python\n([\s\S]*?)```/).map { String($0.1) }
            .first { $0.contains("*_, action, h, c") })
        let length = try #require(walks[0].dropFirst().firstIndex { $0.begins })
        let episode = walks[0][..<length].map { $0.observation.map(Double.init) }
        try JSONSerialization.data(withJSONObject: episode).write(to: dir.appendingPathComponent("episode.json"))
        let snipped = try CLI.runTool(python, ["-c", "import json\nepisode = json.load(open('episode.json'))\n" + snippet
                                               + "\nprint(json.dumps(np.asarray(h, np.float64).ravel().tolist()))"], in: dir)
        let last = snipped.out.split(separator: "\n").last.map(String.init) ?? ""
        let final = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [Double], "\(snipped.out) \(snipped.err)")
        let width = state.layers * rows * state.hidden, row0 = (0..<state.layers).flatMap { l in
            h[((length - 1) * width + l * rows * state.hidden)...].prefix(state.hidden)
        }
        #expect(final.count == row0.count && zip(final, row0).allSatisfy { abs($0 - $1) <= 1e-5 }, "the snippet's h \(final), rlbench's \(row0)")
    }

    @Test(arguments: [
        ("conv-vae", ["conditional=false"]),                   // transposed convolutions, unflatten, flatten, sigmoid
        ("dcgan", ["conditional=true", "dense=16"]),           // batch norm (running statistics), a label, tanh → [0, 1]
        ("ae", ["conditional=true"]),                          // the code Gaussian's scale and shift as tensors
    ])
    func generatorSamplesAsRlbenchDoes(model name: String, overrides: [String]) throws {
        var options = GenerativeRunOptions(model: name, data: "digits", outputDirectory: Scratch.directory("onnx-\(name)"))
        options.epochs = 1
        options.overrides = overrides
        options.progress = .quiet
        options.scoreSamples = false
        try GenerativeRun(options).run()
        let checkpoint = options.outputDirectory.appendingPathComponent("final.safetensors")
        let model = options.outputDirectory.appendingPathComponent("generator.onnx")
        let signature = try ONNXExport.write(checkpoint: checkpoint, to: model)

        let loaded = try GenerativeCheckpoint(contentsOf: checkpoint)
        var rng = SeededGenerator(seed: 9)
        let count = 24, latent = loaded.model.latentSize
        let noise = Tensor.normal([count, latent], using: &rng)
        let labels = loaded.model.isConditional ? (0..<count).map { $0 % loaded.shape.classCount } : nil
        let expected = loaded.model.generate(noise: noise, labels: labels).data
        var inputs: [String: Any] = ["noise": (0..<count).map { Array(noise.data[($0 * latent)..<(($0 + 1) * latent)]).map(Double.init) }]
        if let labels { inputs["label"] = labels }
        #expect(signature.inputs.map(\.name) == (labels == nil ? ["noise"] : ["noise", "label"]))
        #expect(signature.outputs.map(\.name) == ["samples"])
        #expect(signature.outputs[0].shape == [-1] + loaded.shape.sample)
        let samples = try #require(try Self.onnxruntime(model, inputs, in: options.outputDirectory)["samples"])
        #expect(samples.count == expected.count)
        let worst = zip(samples, expected).map { abs($0 - Double($1)) }.max() ?? .infinity
        #expect(worst <= 1e-5, "\(name): onnxruntime's samples differ from rlbench's by \(worst)")
    }

    /// Every layer kind a checkpoint's list may hold, also those no shipped generator uses yet (conv2d,
    /// upsample_nearest, groups, dilation, output padding, batch norm without affine parameters, elu, softplus), in a
    /// generative checkpoint written here: onnxruntime gives the values of rlbench's own layers.
    @Test func everyLayerKind() throws {
        var rng = SeededGenerator(seed: 4)
        let norm = BatchNorm2d(4, affine: false)
        norm.runningMean.data = (0..<4).map { Float($0) * 0.1 - 0.2 }
        norm.runningVar.data = (0..<4).map { 0.5 + Float($0) * 0.3 }
        let net = Sequential([
            Linear(6, 2 * 3 * 3, using: &rng), ActivationLayer(.elu), Unflatten(dim: 1, sizes: [2, 3, 3]),
            Upsample(scaleFactor: 2),
            Conv2d(2, 4, kernelSize: 3, padding: 2, dilation: 2, groups: 2, using: &rng), norm, ActivationLayer(.softplus),
            ConvTranspose2d(4, 2, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1, groups: 2, using: &rng),
            LeakyReLU(slope: 0.2), Flatten(startDim: 2), Flatten()])
        net.setTraining(false)
        let dir = Scratch.directory("onnx-layers")
        let checkpoint = dir.appendingPathComponent("layers.safetensors")
        var meta = CheckpointMetadata(dataRun: .generative, model: "test", data: "none", seed: 0, epoch: 1, batch: 0, step: 1)
        meta[.rngState] = rng
        meta[.hyperparameters] = "{}"
        meta[.generator] = net.layerDescription(prefix: "net")
        meta[.latentSize] = 6
        meta[.sampleShape] = [2, 12, 12]
        meta[.classes] = 1
        meta[.conditional] = false
        try SafeTensors.write(prefixed("net", net.namedParameters() + net.namedBuffers()), metadata: meta.values, to: checkpoint)

        let model = dir.appendingPathComponent("layers.onnx")
        let signature = try ONNXExport.write(checkpoint: checkpoint, to: model)
        #expect(signature.outputs[0].shape == [-1, 2, 12, 12])
        let noise = Tensor.normal([5, 6], using: &rng)
        let expected = Tensor.withoutGrad { net(noise) }.data
        let rows = (0..<5).map { Array(noise.data[($0 * 6)..<(($0 + 1) * 6)]).map(Double.init) }
        let samples = try #require(try Self.onnxruntime(model, ["noise": rows], in: dir)["samples"])
        #expect(samples.count == expected.count)
        let worst = zip(samples, expected).map { abs($0 - Double($1)) }.max() ?? .infinity
        #expect(worst <= 1e-5, "onnxruntime's values differ from rlbench's layers by \(worst)")
    }

    /// The command line writes the model, and docs/interop.md's onnxruntime snippet acts with it as rlbench does.
    @Test func commandLineAndDocumentedSnippet() throws {
        let checkpoint = try Self.trainAgent("ppo", "CartPole-v1", steps: 256, ["n_envs=1", "n_steps=128"])
        let dir = checkpoint.deletingLastPathComponent()
        let exported = try CLI.run(["export", checkpoint.path, "--onnx", dir.appendingPathComponent("policy.onnx").path])
        #expect(exported.status == 0 && exported.out.contains("observation [N, 4] → scores [N, 2], action [N]"), "\(exported.out) \(exported.err)")
        let none = try CLI.run(["export", checkpoint.path])
        #expect(none.status != 0 && none.err.contains("--onnx FILE"), "\(none.err)")

        let python = try #require(CLI.executable(named: "python3"))
        let docs = try String(contentsOf: CLI.root.appendingPathComponent("docs/interop.md"), encoding: .utf8)
        let snippet = try #require(docs.matches(of: /```python\n([\s\S]*?)```/).map { String($0.1) }
            .first { $0.contains("onnxruntime") && $0.contains("\"scores\", \"action\"") })
        let ran = try CLI.runTool(python, ["-c", snippet], in: dir)
        let saved = try SavedAgent.load(checkpoint)
        let expected = saved.agent.act(batch: [Float](repeating: 0, count: 12), count: 3, deterministic: true).map { action -> Int in
            guard case let .discrete(a) = action else { return -1 }
            return a
        }
        #expect(ran.status == 0 && ran.out.trimmingCharacters(in: .whitespacesAndNewlines) == "\(expected)", "\(ran.out) \(ran.err)")
    }

    @Test func badInputIsAClearError() throws {
        let dir = Scratch.directory("onnx-bad")
        let target = dir.appendingPathComponent("out.onnx")
        func message(_ file: URL) -> String {
            do { try ONNXExport.write(checkpoint: file, to: target) } catch { return "\(error)" }
            return "no error"
        }
        let junk = dir.appendingPathComponent("junk.safetensors")
        try Data("not a safetensors file".utf8).write(to: junk)
        #expect(message(junk).contains("is not a checkpoint rlbench can read"), "\(message(junk))")

        let plain = dir.appendingPathComponent("plain.safetensors")
        try SafeTensors.write([(name: "w", tensor: Tensor([1, 2], shape: [2]))], metadata: [:], to: plain)
        #expect(message(plain).contains("format is missing"), "\(message(plain))")

        // A checkpoint whose policy has a layer the export does not know.
        let checkpoint = try Self.trainAgent("ppo", "CartPole-v1", steps: 256, ["n_envs=1", "n_steps=128"])
        let loaded = try SafeTensors.read(from: checkpoint)
        var metadata = loaded.metadata
        metadata["policy"] = #"[{"type": "linear", "weight": "pi.0.weight", "bias": "pi.0.bias"}, {"type": "swish"}]"#
        let unknown = dir.appendingPathComponent("unknown.safetensors")
        try SafeTensors.write(loaded.tensors, metadata: metadata, to: unknown)
        #expect(message(unknown).contains("layer 1 (swish): the ONNX export does not know the layer type 'swish'"), "\(message(unknown))")
        // A tensor the layer list names but the file lacks.
        metadata["policy"] = #"[{"type": "linear", "weight": "pi.9.weight"}]"#
        try SafeTensors.write(loaded.tensors, metadata: metadata, to: unknown)
        #expect(message(unknown).contains("the checkpoint has no tensor 'pi.9.weight'"), "\(message(unknown))")
        // An LSTM anywhere but first in an agent's policy (whose state the model's h and c are).
        metadata["policy"] = #"[{"type": "linear", "weight": "pi.0.weight", "bias": "pi.0.bias"}, {"type": "lstm"}]"#
        try SafeTensors.write(loaded.tensors, metadata: metadata, to: unknown)
        #expect(message(unknown).contains("layer 1 (lstm): an lstm layer is exported only as the first layer of an agent's policy"),
                "\(message(unknown))")
        // An LSTM whose weights are not the sizes it declares.
        metadata["policy"] = #"[{"type": "lstm", "input_size": 4, "hidden_size": 8, "num_layers": 1, "weight_ih_l0": "pi.0.weight", "#
            + #""weight_hh_l0": "pi.2.weight"}, {"type": "linear", "weight": "pi.4.weight"}]"#
        try SafeTensors.write(loaded.tensors, metadata: metadata, to: unknown)
        #expect(message(unknown).contains("the tensor 'pi.0.weight' is [64, 4], the LSTM needs [32, 4]"), "\(message(unknown))")
        // An LSTM whose gate blocks are in another order than torch's.
        metadata["policy"] = #"[{"type": "lstm", "input_size": 4, "hidden_size": 16, "num_layers": 1, "gates": ["i", "o", "f", "c"]}]"#
        try SafeTensors.write(loaded.tensors, metadata: metadata, to: unknown)
        #expect(message(unknown).contains(#"layer 0 (lstm): "gates" must be ["i", "f", "g", "o"]"#), "\(message(unknown))")
        #expect(!FileManager.default.fileExists(atPath: target.path), "a failed export left a file")

        // The command line says so in one line.
        let cli = try CLI.run(["export", junk.path, "--onnx", target.path])
        #expect(cli.status != 0 && cli.err.hasPrefix("error: ") && cli.err.contains("is not a checkpoint rlbench can read"), "\(cli.err)")
    }
}
