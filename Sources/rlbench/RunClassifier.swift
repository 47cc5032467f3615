import ArgumentParser
import CLIKit
import Classifiers
import Foundation
import Training

/// `rlbench run <classifier> --data …`: the classifier half of `run` (mlp, lenet, resnet).
extension Run {
    /// Whether this run trains a classifier: a classifier's name, or a resumed folder holding one.
    func isClassifierRun() -> Bool {
        if let agent { return ClassifierCatalog.names.contains(agent) }
        if let resume { return RunFolder(URL(fileURLWithPath: resume)).recordedKind() == .classifier }
        return false
    }

    func runClassifier() throws {
        let options = try dataRunOptions(kind: .classifier, defaultModel: "lenet", refusing: [(view, "--view")]) {
            let descriptor = try ClassifierCatalog.model(named: $0)
            return (descriptor.name, descriptor.defaultData)
        }
        StopRequest.reset()
        StopRequest.installInterruptHandler()
        let training = try fail { try ClassifierRun(options) }
        let report: [String: Any]
        do {
            report = try training.run()
        } catch ClassifierError.interrupted {
            throw ExitCode(StopRequest.exitCode)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let accuracy = report["test_accuracy"] as? Double ?? .nan, loss = report["test_loss"] as? Double ?? .nan
        print(String(format: "done: %@ on %@; eval.json: test_accuracy %.4f, test_loss %.4f", training.descriptor.name,
                     options.data, accuracy, loss))
    }
}
