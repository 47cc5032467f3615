import ArgumentParser
import CLIKit
import Foundation
import Support
import Datasets
import RLCore

/// `rlbench classify --dataset digits`: trains an MLP on the 8×8 handwritten digits.
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an MLP classifier on the handwritten digits (a demonstration of the core).",
        discussion: """
        The 1,797 8x8 digits ship with rlbench. The split is fixed: a permutation drawn from seed 0, the first 80% \
        (1,438 images) for training, the remaining 359 for testing. The network is 64-128-10 with ReLU, trained with \
        cross-entropy and Adam (lr 1e-3, batch 32).
        """)

    @Option(help: "The data set: digits.")
    var dataset = "digits"

    @Option(parsing: .unconditional, help: "Training epochs.", transform: parseCount("--epochs", in: 1...Limits.dataEpochs))
    var epochs = 40

    @Option(parsing: .unconditional, help: "Seed of the network and the minibatch order (the split always uses seed 0).", transform: parseSeed)
    var seed: UInt64 = 0

    @Option(help: "Save the trained network as a safetensors file.")
    var out: String?

    func validate() throws {
        guard dataset == "digits" else { throw ValidationError("unknown dataset '\(dataset)'; known: digits") }
        if let out {
            // Checked before training, so that a long run does not end on a folder that is not there.
            var isDirectory: ObjCBool = false
            let folder = URL(fileURLWithPath: out).deletingLastPathComponent().path
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--out \(out): the folder \(folder) does not exist")
            }
        }
    }

    func run() throws {
        let (train, test) = try fail { try Datasets.load("digits") }
        print("digits: \(train.count) training and \(test.count) test images")
        var setup = ClassifierTraining()
        setup.epochs = epochs
        setup.seed = seed
        let start = Date()
        let (net, history) = setup.run(train: train, test: test) { epoch, loss, accuracy in
            if epoch % 5 == 0 || epoch == 1 {
                print(String(format: "epoch %3d  loss %.4f  test accuracy %.2f%%", epoch, loss, accuracy * 100))
            }
        }
        print(String(format: "final test accuracy %.2f%% (%d/%d) in %.1f s", history.last! * 100,
                     Int((history.last! * Double(test.count)).rounded()), test.count, Date().timeIntervalSince(start)))
        if let out {
            try fail { try SafeTensors.write(net.stateDict(), metadata: ["dataset": "digits", "layers": net.layerDescription(prefix: "")],
                                             to: URL(fileURLWithPath: out)) }
            print("saved \(out)")
        }
    }
}
