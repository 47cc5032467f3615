import Classifiers
import Datasets
import Foundation
import RLCore
import SeededRandom
import Testing
import TestSupport
import Training

/// The classifier runs: learning, determinism, resume, and bad input. Serialized: they share both cores.
@Suite(.serialized) struct ClassifierRunTests {
    static let mnist = CLI.root.deletingLastPathComponent().appendingPathComponent("shared/data/mnist")

    func options(_ model: String, _ data: String, in dir: URL, _ overrides: [String] = []) -> ClassifierRunOptions {
        var o = ClassifierRunOptions(model: model, data: data, outputDirectory: dir)
        o.dataDirectory = data == "mnist" ? Self.mnist : nil
        o.overrides = overrides
        o.progress = .quiet
        return o
    }

    func json(_ url: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    /// One epoch on 10,000 MNIST images reaches 95% on the 10,000 test images; the run folder has every file.
    @Test func lenetLearnsMNISTInOneEpoch() throws {
        let dir = Scratch.directory("lenet-mnist")
        let report = try ClassifierRun(options("lenet", "mnist", in: dir, ["train_subset=10000", "epochs=1", "batch_size=32",
                                                                          "lr_schedule=constant"])).run()
        let accuracy = report["test_accuracy"] as! Double
        #expect(accuracy >= 0.95, "test accuracy \(accuracy)")
        for file in ["config.yml", "metrics.csv", "final.safetensors", "last.safetensors", "learning_curve.png",
                     "confusion_matrix.png", "eval.json"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(file).path), "\(file) is missing")
        }
        let eval = try json(dir.appendingPathComponent("eval.json"))
        #expect((eval["per_class_accuracy"] as? [Double])?.count == 10)
        let metrics = try String(contentsOf: dir.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
        #expect(metrics.first == "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,wall_time_s")
        #expect(metrics.count == 2)
        let meta = try SafeTensors.read(from: dir.appendingPathComponent("final.safetensors")).metadata
        #expect(meta["model"] == "lenet" && meta["data"] == "mnist" && meta["seed"] == "0")
        #expect(meta["layers"]?.contains("Conv2d(1, 6, kernel_size=(5, 5)") == true)
    }

    /// LeNet with its tuned settings on the 8×8 digits; a validation split is carved from the training images.
    @Test func lenetLearnsTheDigits() throws {
        let dir = Scratch.directory("lenet-digits")
        let run = try ClassifierRun(options("lenet", "digits", in: dir, ["epochs=15", "validation_fraction=0.1"]))
        #expect(run.train.count + run.validation!.count == 1438 && run.test.count == 359)
        let accuracy = try run.run()["test_accuracy"] as! Double
        #expect(accuracy >= 0.95, "test accuracy \(accuracy)")
        let rows = try String(contentsOf: dir.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 16 && !rows[15].contains(",,"), "validation columns filled: \(rows.last ?? "")")
    }

    /// Same seed, same bytes; a run stopped mid-epoch by Ctrl-C and resumed ends with the uninterrupted run's bytes,
    /// with dropout, augmentation, a schedule and a penalty all in play.
    @Test func runsAreDeterministicAndResumeExactly() throws {
        let settings = ["epochs=3", "dropout=0.3", "augment=1", "lr_schedule=step", "lr_step_epochs=1", "l2=0.0001",
                        "train_subset=400", "batch_size=50", "validation_fraction=0.2"]
        let (a, b, c) = (Scratch.directory("same-a"), Scratch.directory("same-b"), Scratch.directory("resumed"))
        try ClassifierRun(options("lenet", "digits", in: a, settings)).run()
        try ClassifierRun(options("lenet", "digits", in: b, settings)).run()
        let interrupted = try ClassifierRun(options("lenet", "digits", in: c, settings))
        // 320 training images in batches of 50: step 10 is in the middle of epoch 2. (Not `StopRequest`: it is
        // process-wide, and would stop the runs of other suites running in parallel.)
        var stepsDone = 0
        interrupted.onStep = { stepsDone = $0 }
        interrupted.shouldStop = { stepsDone == 10 }
        #expect(throws: ClassifierError.self) { try interrupted.run() }
        let meta = try SafeTensors.read(from: c.appendingPathComponent("last.safetensors")).metadata
        #expect(meta["epoch"] == "1" && meta["batch"] == "3", "stopped at epoch \(meta["epoch"] ?? "?") batch \(meta["batch"] ?? "?")")
        var resume = options("lenet", "digits", in: c)
        resume.resume = true
        try ClassifierRun(resume).run()
        let bytes = { (dir: URL) in try Data(contentsOf: dir.appendingPathComponent("final.safetensors")) }
        #expect(try bytes(a) == bytes(b), "two runs with one seed differ")
        #expect(try bytes(a) == bytes(c), "the resumed run differs from the uninterrupted one")
        let metrics = { (dir: URL) in
            try String(contentsOf: dir.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
                .map { $0.split(separator: ",", omittingEmptySubsequences: false).dropLast().joined(separator: ",") }
        }
        #expect(try metrics(a) == metrics(c), "the resumed run's metrics differ (wall time aside)")
    }

    @Test func badInputIsAClearError() throws {
        func message(_ o: ClassifierRunOptions) -> String {
            do { _ = try ClassifierRun(o); return "no error" } catch { return "\(error)" }
        }
        let dir = Scratch.directory("bad")
        #expect(message(options("alexnet", "digits", in: dir)).contains("unknown classifier 'alexnet'; known: mlp, lenet, resnet"))
        #expect(message(options("lenet", "cifar", in: dir)).contains("unknown data set 'cifar'"))
        #expect(message(options("lenet", "ring8", in: dir)).contains("holds 2-D points"))
        #expect(message(options("lenet", "digits", in: dir, ["optimizer=rmsprop"])).contains("'rmsprop' is not one of adam, adamw, sgd"))
        #expect(message(options("lenet", "digits", in: dir, ["dropout=2"])).contains("bad value for 'dropout' in --set"))
        #expect(message(options("lenet", "digits", in: dir, ["hidden=[3]"])).contains("unknown key 'hidden'"))
        var missing = options("lenet", "mnist", in: dir)
        missing.dataDirectory = dir
        #expect(message(missing).contains("no mnist files"))
        var resume = options("lenet", "digits", in: dir)
        resume.resume = true
        #expect(message(resume).contains("nothing to resume"))
    }

    /// Every model and option builds and takes a step (a small MLP with hinge and focal losses, SGD, AdamW, elastic net).
    @Test func everyModelAndOptionTrains() throws {
        for (model, extra) in [("mlp", ["loss=hinge", "optimizer=sgd", "l1=0.0001", "l2=0.0001"]),
                               ("mlp", ["loss=focal", "optimizer=adamw", "lr_schedule=cosine", "flip=true"]),
                               ("resnet", ["widths=[4, 8]", "blocks=1", "validation_fraction=0.25", "early_stopping_patience=1"])] {
            let run = try ClassifierRun(options(model, "digits", in: Scratch.directory(model), extra + ["epochs=4", "train_subset=300", "learning_rate=0.01"]))
            let report = try run.run()
            #expect((report["test_accuracy"] as! Double) > 0.2, "\(model) \(extra): \(report)")
        }
    }

    /// (In this serialized suite: another test's Ctrl-C would stop the scorer's training.)
    /// The digits scorer trains once, is cached, reloads from the cache, and retrains over a corrupt cache; its own test
    /// images score as confident and spread over the classes, with a distance of 0 to themselves.
    @Test func digitsScorerIsCachedAndScoresRealImages() throws {
        let cache = Scratch.directory("cache")
        setenv("RLBENCH_CACHE", cache.path, 1)
        defer { unsetenv("RLBENCH_CACHE") }
        let first = try ClassifierScore.scorer(data: "digits", directory: nil)
        let file = cache.appendingPathComponent("classifiers/digits-lenet.safetensors")
        let bytes = try Data(contentsOf: file)
        let test = first.reference
        let score = first.score(samples: test.features, count: test.count, reference: test)
        #expect(score.confidentFraction > 0.85 && score.classEntropy > 2.2 && abs(score.frechetDistance) < 1e-6, "\(score)")
        let again = try ClassifierScore.scorer(data: "digits", directory: nil)
        #expect(again.score(samples: test.features, count: test.count, reference: test) == score)
        try Data("not a checkpoint".utf8).write(to: file)
        _ = try ClassifierScore.scorer(data: "digits", directory: nil)
        #expect(try Data(contentsOf: file) == bytes, "the retrained scorer differs")
        // Noise is far from the digits.
        var rng = SeededGenerator(seed: 5)
        let noise = (0..<(200 * 64)).map { _ in rng.nextFloat() }
        #expect(first.score(samples: noise, count: 200, reference: test).frechetDistance > 1)
    }
}

@Suite struct ScoreTests {
    /// A Gaussian sample of `n` points in `d` dimensions with the given means and standard deviations.
    func sample(_ n: Int, means: [Double], stds: [Double], seed: UInt64) -> [Double] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).flatMap { _ in zip(means, stds).map { $0 + $1 * rng.nextGaussian() } }
    }

    @Test func frechetDistanceOfIdenticalSetsIsZero() {
        let x = sample(500, means: [1, 2, 3, 4], stds: [1, 0.5, 2, 0.1], seed: 1)
        #expect(abs(Frechet.distance(x, count: 500, x, count: 500, dimension: 4)) < 1e-9)
    }

    /// For diagonal covariances the distance is Σ (μ₁ − μ₂)² + (σ₁ − σ₂)²; rotating both Gaussians keeps it.
    @Test func frechetDistanceMatchesTheClosedForm() {
        let d = 3
        let (m1, m2) = ([0.0, 1, -2], [1.0, 3, 0])
        let (v1, v2) = ([1.0, 4, 0.25], [9.0, 1, 1])
        let expected = zip(m1, m2).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            + zip(v1, v2).reduce(0) { $0 + ($1.0.squareRoot() - $1.1.squareRoot()) * ($1.0.squareRoot() - $1.1.squareRoot()) }
        func diagonal(_ v: [Double]) -> [Double] { (0..<(d * d)).map { $0 % (d + 1) == 0 ? v[$0 / (d + 1)] : 0 } }
        let direct = Frechet.distance(mean: m1, covariance: diagonal(v1), mean: m2, covariance: diagonal(v2))
        #expect(abs(direct - expected) < 1e-9, "\(direct) vs \(expected)")
        // A rotation R about the z axis: means R·μ, covariances R·Σ·Rᵀ (no longer diagonal).
        let (c, s) = (cos(0.7), sin(0.7))
        let r = [c, -s, 0, s, c, 0, 0, 0, 1]
        func rotate(_ m: [Double]) -> [Double] { (0..<d).map { i in (0..<d).reduce(0) { $0 + r[i * d + $1] * m[$1] } } }
        func rotate(covariance v: [Double]) -> [Double] {
            let sigma = diagonal(v)
            return (0..<(d * d)).map { ij in
                let (i, j) = (ij / d, ij % d)
                return (0..<d).reduce(0) { acc, k in acc + (0..<d).reduce(0) { $0 + r[i * d + k] * sigma[k * d + $1] * r[j * d + $1] } }
            }
        }
        let rotated = Frechet.distance(mean: rotate(m1), covariance: rotate(covariance: v1), mean: rotate(m2), covariance: rotate(covariance: v2))
        #expect(abs(rotated - expected) < 1e-9, "\(rotated) vs \(expected)")
        // Fitted from samples, close to the same value.
        let n = 20_000
        let fitted = Frechet.distance(sample(n, means: m1, stds: v1.map { $0.squareRoot() }, seed: 2), count: n,
                                      sample(n, means: m2, stds: v2.map { $0.squareRoot() }, seed: 3), count: n, dimension: d)
        #expect(abs(fitted - expected) < 0.1 * expected, "\(fitted) vs \(expected)")
    }

    @Test func confidenceAndEntropyOfHandMadeProbabilities() {
        let p: [Double] = [0.95, 0.05, 0, 0.5, 0.5, 0, 0, 0.05, 0.95, 0.1, 0.85, 0.05]
        #expect(Scorer.confidentFraction(p, classes: 3) == 0.5)
        // Predicted classes 0, 0 (ties go to the first), 2, 1: frequencies ½, ¼, ¼.
        #expect(abs(Scorer.classEntropy(p, classes: 3) - (0.5 * log(2) + 0.5 * log(4))) < 1e-12)
        #expect(Scorer.classEntropy([1, 0, 1, 0], classes: 2) == 0)
    }

    @Test func eigenDecompositionRebuildsTheMatrix() {
        let a: [Double] = [4, 1, 2, 1, 3, 0.5, 2, 0.5, 5]
        let (values, vectors) = Frechet.symmetricEigen(a, dimension: 3)
        for i in 0..<3 {
            for j in 0..<3 {
                let rebuilt = (0..<3).reduce(0) { $0 + vectors[i * 3 + $1] * values[$1] * vectors[j * 3 + $1] }
                #expect(abs(rebuilt - a[i * 3 + j]) < 1e-12)
            }
        }
    }
}
