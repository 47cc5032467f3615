import Datasets
import Foundation
import Generative
import RLCore
import Testing
import TestSupport
import Training

/// Training runs of the generative models: learning, determinism, resume, the run folder and bad input.
@Suite(.serialized) struct GenerativeRunTests {
    func options(_ model: String, _ data: String, epochs: Int, _ overrides: [String] = [], in dir: URL) -> GenerativeRunOptions {
        var o = GenerativeRunOptions(model: model, data: data, outputDirectory: dir)
        o.epochs = epochs
        o.overrides = overrides
        o.progress = .quiet
        o.scoreSamples = false
        return o
    }

    /// The VAE learns the digits: its test −ELBO falls from about 44 nats (the untrained decoder) to below 31, and its
    /// samples look like digits of several classes to rlbench's LeNet.
    @Test func vaeLearnsTheDigits() throws {
        let dir = Scratch.directory("vae")
        var o = options("vae", "digits", epochs: 8, in: dir)
        o.scoreSamples = true
        let quality = try GenerativeRun(o).run()
        // rlbench's LeNet sees digits of several classes in its samples (the untrained decoder's blur: none).
        #expect(quality["classifier_entropy"]! > 1.2 && quality["classifier_confident_fraction"]! > 0.3, "\(quality)")
        #expect(quality["frechet_distance"]!.isFinite)
        let negELBO = try #require(quality["test_neg_elbo"])
        #expect(negELBO < 31, "test −ELBO \(negELBO)")
        #expect(abs(negELBO - quality["test_reconstruction"]! - quality["test_kl"]!) < 1e-6)
        for file in ["config.yml", "metrics.csv", "final.safetensors", "last.safetensors", "loss_curve.png", "progress.gif",
                     "eval.json", "samples/epoch_0001.png", "samples/epoch_0008.png", "checkpoints/step_000000084.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(file).path), "\(file) missing")
        }
        let rows = try String(contentsOf: dir.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "epoch,step,loss,reconstruction,kl,wall_time_s" && rows.count == 9)
    }

    /// Same seed, same bytes; and a run stopped in the middle of an epoch and resumed ends with the uninterrupted run's
    /// bytes.
    @Test func runsAreDeterministicAndResumeExactly() throws {
        // The GANs also with the generator's moving average (DCGAN's holds batch-norm statistics too, here also those
        // of its `dense` layer).
        for (model, settings) in [("ae", []), ("vae", []), ("conv-vae", []), ("gan", []), ("gan", ["generator_average=0.9"]),
                                  ("dcgan", ["generator_average=0.9", "dense=16"])] {
            let settings = ["batch_size=64"] + settings
            let a = Scratch.directory(model), b = Scratch.directory(model)
            try GenerativeRun(options(model, "digits", epochs: 3, settings, in: a)).run()
            let interrupted = try GenerativeRun(options(model, "digits", epochs: 3, settings, in: b))
            // Stops in the middle of the second epoch.
            var steps = 0
            interrupted.shouldStop = { steps += 1; return steps > 23 + 11 }
            #expect(throws: GenerativeError.self) { try interrupted.run() }
            var resume = options(model, "digits", epochs: 3, in: b)
            resume.overrides = []
            resume.resume = true
            try GenerativeRun(resume).run()
            let first = try Data(contentsOf: a.appendingPathComponent("final.safetensors"))
            let second = try Data(contentsOf: b.appendingPathComponent("final.safetensors"))
            #expect(first == second, "\(model): the resumed run differs from the uninterrupted one")
            // The metrics too, but for the wall time.
            func rows(_ dir: URL) throws -> [String] {
                try String(contentsOf: dir.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
                    .map { $0.split(separator: ",").dropLast().joined(separator: ",") }
            }
            #expect(try rows(a) == rows(b), "\(model): the resumed run's metrics differ")
            let c = Scratch.directory(model)
            try GenerativeRun(options(model, "digits", epochs: 3, settings, in: c)).run()
            #expect(try Data(contentsOf: c.appendingPathComponent("final.safetensors")) == first, "\(model): same seed, other bytes")
        }
    }

    /// `generator_learning_rate` gives the generator its own Adam step size (0: the shared one), and the decay (a setting
    /// of every GAN) scales each player's own.
    @Test func theGeneratorMayHaveItsOwnStepSize() throws {
        let own = try GenerativeRun(options("gan", "digits", epochs: 1, ["generator_learning_rate=1e-3", "learning_rate=2e-4",
                                                                        "learning_rate_decay=true"], in: Scratch.directory("glr")))
        let gan = try #require(own.model as? GAN)
        #expect(gan.generatorOptimizer.learningRate == Float(1e-3) && gan.discriminatorOptimizer.learningRate == Float(2e-4))
        gan.trainingRemaining(0.5)
        #expect(gan.generatorOptimizer.learningRate == Float(5e-4) && gan.discriminatorOptimizer.learningRate == Float(1e-4))
        let shared = try GenerativeRun(options("dcgan", "digits", epochs: 1, ["learning_rate=3e-4", "learning_rate_decay=true"],
                                               in: Scratch.directory("glr")))
        let dcgan = try #require(shared.model as? DCGAN)
        #expect(dcgan.generatorOptimizer.learningRate == Float(3e-4) && dcgan.discriminatorOptimizer.learningRate == Float(3e-4))
        dcgan.trainingRemaining(0.25)
        #expect(dcgan.generatorOptimizer.learningRate == Float(7.5e-5) && dcgan.discriminatorOptimizer.learningRate == Float(7.5e-5))
    }

    /// A checkpoint rebuilds the model: its samples are the run's own.
    @Test func checkpointsRebuildTheModel() throws {
        let dir = Scratch.directory("gan")
        let run = try GenerativeRun(options("gan", "digits", epochs: 1, ["conditional=true"], in: dir))
        try run.run()
        let loaded = try GenerativeCheckpoint(contentsOf: dir.appendingPathComponent("final.safetensors"))
        #expect(loaded.descriptor.name == "gan" && loaded.data == "digits" && loaded.shape.sample == [1, 8, 8] && loaded.model.isConditional)
        let noise = run.fixedNoise
        #expect(loaded.model.generate(noise: noise.noise, labels: noise.labels).data
                == run.model.generate(noise: noise.noise, labels: noise.labels).data)
    }

    @Test func badInputIsAClearError() throws {
        let dir = Scratch.directory("bad")
        func message(_ o: GenerativeRunOptions) -> String {
            do { _ = try GenerativeRun(o); return "" } catch { return "\(error)" }
        }
        #expect(message(options("diffusion", "digits", epochs: 1, in: dir)).contains("unknown model 'diffusion'; known: ae, vae, conv-vae, gan, dcgan"))
        #expect(message(options("vae", "cifar", epochs: 1, in: dir)).contains("unknown data set 'cifar'"))
        #expect(message(options("vae", "ring8", epochs: 1, in: dir)).contains("holds 2-D points"))
        #expect(message(options("gan", "ring8", epochs: 1, ["conditional=true"], in: dir)).contains("needs labelled data"))
        #expect(message(options("vae", "digits", epochs: 1, ["latent_size=100000"], in: dir)).contains("latent_size"))
        #expect(message(options("vae", "digits", epochs: 1, ["hiden=[3]"], in: dir)).contains("hiden"))
        var missing = options("vae", "mnist", epochs: 1, in: dir)
        missing.dataDirectory = dir
        #expect(message(missing).contains("no mnist files"))
    }

    /// `--resume` validates the checkpoint's metadata before writing anything: bad keys in every checkpoint are all
    /// named and the folder keeps its bytes; a valid periodic checkpoint is used when last.safetensors is bad.
    @Test func resumeValidatesTheCheckpointFirst() throws {
        let dir = Scratch.directory("bad-resume")
        try GenerativeRun(options("gan", "ring8", epochs: 2, in: dir)).run()
        let folder = RunFolder(dir)
        var resume = options("gan", "ring8", epochs: 3, in: dir)
        resume.resume = true
        func rewrite(_ file: URL, _ change: (inout [String: String]) -> Void) throws {
            let loaded = try SafeTensors.read(from: file)
            var meta = loaded.metadata
            change(&meta)
            try SafeTensors.write(loaded.tensors, metadata: meta, to: file)
        }
        let periodic = try FileManager.default.contentsOfDirectory(at: folder.checkpoints, includingPropertiesForKeys: nil)
            .sorted { $0.path < $1.path }
        try rewrite(folder.last) { $0["epoch"] = "-1"; $0["loss_sums"] = "{" }
        // The newest periodic checkpoint (epoch 2) is used instead, and the run says so.
        let fallback = try folder.resumePoint(kind: .generative)
        #expect(fallback.file == periodic.last && fallback.note?.contains("epoch \"-1\"") == true, "\(fallback.note ?? "")")

        for file in periodic { try rewrite(file) { $0["rng_state"] = "1,2" } }
        let files = [folder.config, folder.metrics, folder.last]
        let before = try files.map { try Data(contentsOf: $0) }
        let message: String
        do { _ = try GenerativeRun(resume).run(); message = "" } catch { message = "\(error)" }
        for problem in ["epoch \"-1\"", "loss_sums \"{\"", "rng_state \"1,2\""] {
            #expect(message.contains(problem), "\(problem) not in \(message)")
        }
        #expect(try files.map { try Data(contentsOf: $0) } == before)
    }
}

@Suite struct MixtureCoverageTests {
    /// Samples of the true mixture cover every mode with nearly all samples of high quality; a collapsed generator
    /// covers one.
    @Test func coverageTellsCollapseFromCoverage() throws {
        let data = try Datasets.load("ring8", seed: 1).test
        let modes = Datasets.mixtureModes("ring8")
        let real = MixtureCoverage(points: Array(data.features.prefix(5000)), modes: modes, std: Datasets.mixtureStd)
        #expect(real.modesCovered == 8 && real.highQualityFraction > 0.98)
        let collapsed: [Float] = (0..<5000).map { $0 % 2 == 0 ? 2 : 0.01 }
        let c = MixtureCoverage(points: collapsed, modes: modes, std: Datasets.mixtureStd)
        #expect(c.modesCovered == 1 && c.highQualityFraction == 1)
        let nowhere = MixtureCoverage(points: [Float](repeating: 0, count: 100), modes: modes, std: Datasets.mixtureStd)
        #expect(nowhere.modesCovered == 0 && nowhere.highQualityFraction == 0)
    }
}

@Suite struct RunFolderLockTests {
    /// A run folder has one owner: a second claim fails at once naming the owner's pid, and the folder is free again
    /// once the owner lets go.
    @Test func oneOwnerPerFolder() throws {
        let folder = RunFolder(Scratch.directory("lock").appendingPathComponent("run"))
        var first: RunFolderLock? = try folder.claim(resuming: false)
        #expect(first != nil)
        #expect { try folder.claim(resuming: false) } throws: { "\($0)".contains("in use by another rlbench run (pid \(getpid()))") }
        first = nil
        _ = try folder.claim(resuming: false)
    }
}
