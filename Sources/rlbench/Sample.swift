import ArgumentParser
import CLIKit
import Datasets
import Foundation
import Support
import Generative
import Imaging
import RLCore
import SeededRandom
import Viewer

/// `rlbench sample CHECKPOINT`: new samples from a trained generative model, as a picture or as raw values.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw samples from a trained generative model (a checkpoint of `rlbench run <model>`).",
        discussion: """
        Writes a grid PNG (a scatter over the true modes for 2-D data), or with --out ending in .npy or .safetensors \
        the raw samples as one float32 tensor [n, channels, height, width] with values in [0, 1] ([n, 2] for points). \
        --interpolate walks the latent space between pairs of points (a row each), --reconstruct pairs test images \
        with their reconstructions (ae, vae), --manifold draws the decoder over a grid of a 2-D latent space.
        """)

    @Argument(help: "The checkpoint (final.safetensors or last.safetensors of a run folder).")
    var checkpoint: String

    @Option(name: .customLong("n"), parsing: .unconditional, help: "How many samples (default 64).",
            transform: parseCount("--n", in: 1...100_000))
    var count = 64

    @Option(parsing: .unconditional, help: "Seed of the noise (default 0).", transform: parseSeed)
    var seed: UInt64 = 0

    @Option(help: "Output file: .png (default samples.png), .npy or .safetensors.")
    var out = "samples.png"

    @Option(parsing: .unconditional, help: "The class to draw (conditional models only).")
    var label: Int?

    @Flag(help: "Rows that walk the latent space in ten steps between two random points.")
    var interpolate = false

    @Flag(help: "Test images beside their reconstructions (ae, vae).")
    var reconstruct = false

    @Flag(help: "The decoder over a grid of latent values (a model with a 2-D latent space).")
    var manifold = false

    @Option(help: "Folder of the IDX files, for --reconstruct on mnist or fashion-mnist.")
    var dataDir: String?

    @Flag(help: "Show the samples in a window: space draws new noise, arrow keys walk the latent space, S saves a screenshot, Q closes.")
    var view = false

    func validate() throws {
        guard [interpolate, reconstruct, manifold].filter({ $0 }).count <= 1 else {
            throw ValidationError("choose one of --interpolate, --reconstruct and --manifold")
        }
        let ext = URL(fileURLWithPath: out).pathExtension
        guard ["png", "npy", "safetensors"].contains(ext) else {
            throw ValidationError("--out must end in .png, .npy or .safetensors, got '\(out)'")
        }
    }

    func run() throws {
        let loaded = try fail { try GenerativeCheckpoint(contentsOf: URL(fileURLWithPath: checkpoint)) }
        let model = loaded.model, shape = loaded.shape
        if let label {
            guard model.isConditional else {
                throw fail(ValidationError("--label needs a conditional model; this \(loaded.descriptor.name) was trained without labels (--set conditional=true)"))
            }
            guard (0..<shape.classCount).contains(label) else {
                throw fail(ValidationError("--label must be from 0 to \(shape.classCount - 1), got \(label)"))
            }
        }
        var rng = SeededGenerator(seed: seed)
        var columns = 8
        let samples: Tensor
        if reconstruct {
            let test = try fail { try Datasets.load(loaded.data, directory: dataDir.map { URL(fileURLWithPath: $0) }).test }
            let n = min(count, test.count)
            let images = Tensor(Array(test.features[0..<(n * test.featureCount)]), shape: [n, test.featureCount])
            guard let rebuilt = model.reconstruct(images, labels: Array(test.labels[0..<n])) else {
                throw fail(ValidationError("--reconstruct needs an autoencoder (ae, vae); \(loaded.descriptor.name) does not encode"))
            }
            // Rows alternate: originals, then their reconstructions.
            var rows: [Tensor] = []
            for start in stride(from: 0, to: n, by: 8) {
                let r = start..<min(start + 8, n)
                rows += [images.sliced(axis: 0, r), rebuilt.sliced(axis: 0, r)]
            }
            samples = Tensor.concat(rows, axis: 0)
        } else if manifold {
            guard model.latentSize == 2 else {
                throw fail(ValidationError("--manifold needs a 2-D latent space; this model's is \(model.latentSize)-D (train with --set latent_size=2)"))
            }
            columns = 16
            // Latent values at the normal quantiles of an evenly spaced grid of probabilities.
            let q = (0..<columns).map { inverseNormal((Double($0) + 0.5) / Double(columns)) }
            let z = q.reversed().flatMap { y in q.flatMap { x in [Float(x), Float(y)] } }
            samples = model.generate(noise: Tensor(z, shape: [columns * columns, 2]), labels: labelList(columns * columns))
        } else if interpolate {
            columns = 10
            let rows = max(1, count / columns)
            var z: [Float] = []
            for _ in 0..<rows {
                let a = Tensor.normal([model.latentSize], using: &rng).data, b = Tensor.normal([model.latentSize], using: &rng).data
                for step in 0..<columns {
                    let t = Float(step) / Float(columns - 1)
                    z += zip(a, b).map { (1 - t) * $0 + t * $1 }
                }
            }
            samples = model.generate(noise: Tensor(z, shape: [rows * columns, model.latentSize]), labels: labelList(rows * columns))
        } else {
            samples = model.generate(noise: Tensor.normal([count, model.latentSize], using: &rng), labels: labelList(count))
        }
        let url = URL(fileURLWithPath: out)
        let raw = Tensor(samples.data, shape: [samples.shape[0]] + shape.sample)
        try fail {
            switch url.pathExtension {
            case "npy": try NPY.write(raw, to: url)
            case "safetensors": try SafeTensors.write([(name: "samples", tensor: raw)], metadata: ["model": loaded.descriptor.name], to: url)
            default: try picture(samples.data, shape: shape, data: loaded.data, columns: columns).writePNG(to: url)
            }
        }
        print("wrote \(samples.shape[0]) \(loaded.descriptor.name) samples to \(out)")
        if view { try showLive(loaded, first: samples.data, columns: columns) }
    }

    /// The labels to condition on: `--label` for every sample, or 0, 1, 2, … in turn.
    func labelList(_ n: Int) -> [Int]? { label.map { [Int](repeating: $0, count: n) } ?? (0..<n).map { $0 % 10 } }

    func picture(_ samples: [Float], shape: DataShape, data: String, columns: Int) -> RGBImage {
        shape.isImage ? SampleImages.grid(samples, sampleShape: shape.sample, columns: columns, scale: shape.sample[1] <= 8 ? 6 : 3)
            : SampleImages.scatter(samples, modes: Datasets.mixtureModes(data), extent: 5.5)
    }

    /// A window of samples: space draws new noise, the arrow keys move every sample's noise along the first two
    /// latent dimensions, S saves a screenshot, Q closes.
    func showLive(_ loaded: GenerativeCheckpoint, first: [Float], columns: Int) throws {
        let model = loaded.model
        let image = picture(first, shape: loaded.shape, data: loaded.data, columns: columns)
        let window: ViewerWindow
        do { window = try ViewerWindow(title: "rlbench — \(loaded.descriptor.name) samples", width: image.width, height: image.height) } catch {
            print("viewer: \(error)")
            return
        }
        var rng = SeededGenerator(seed: seed &+ 1)
        var noise = Tensor.normal([count, model.latentSize], using: &rng)
        var current = image
        try window.show(current)
        while window.isOpen {
            var redraw = false
            for event in window.pollEvents() {
                switch event {
                case .quit: window.close()
                case .screenshot: if let file = try? window.saveScreenshot() { print("viewer: screenshot saved to \(file.path)") }
                case .togglePause: noise = Tensor.normal([count, model.latentSize], using: &rng); redraw = true
                case .faster, .slower, .restart:
                    let delta: Float = event == .faster ? 0.25 : event == .slower ? -0.25 : 0
                    for i in 0..<count { noise.data[i * model.latentSize] += delta }
                    redraw = true
                }
            }
            if redraw {
                current = picture(model.generate(noise: noise, labels: labelList(count)).data, shape: loaded.shape,
                                  data: loaded.data, columns: columns)
            }
            if window.isOpen { try window.show(current) }
            Thread.sleep(forTimeInterval: 0.03)
        }
    }
}

/// The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).
func inverseNormal(_ p: Double) -> Double {
    let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
    let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
    let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
    let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
    let low = 0.02425
    if p < low {
        let q = (-2 * log(p)).squareRoot()
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    }
    if p > 1 - low { return -inverseNormal(1 - p) }
    let q = p - 0.5, r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
        / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
}
