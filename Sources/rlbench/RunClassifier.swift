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
        if let resume {
            let meta = try? RunFolder(URL(fileURLWithPath: resume)).resumableMetadata()
            return meta?["format"] == ClassifierRun.checkpointFormat
        }
        return false
    }

    func runClassifier() throws {
        // Flags of agent runs and the live window have no meaning here: refuse them rather than ignore them.
        let refused: [(Bool, String)] = [(env != nil, "--env"), (steps != nil, "--steps"), (!envOption.isEmpty, "--env-option"),
                                         (checkpointEvery != nil, "--checkpoint-every"), (evalEpisodes != 100, "--eval-episodes"),
                                         (fps != nil, "--fps"), (view, "--view")]
        if let (_, flag) = refused.first(where: { $0.0 }) {
            throw ValidationError("\(flag) is not for classifiers; a classifier trains for --epochs on --data")
        }
        var options: ClassifierRunOptions
        if let resume {
            let directory = URL(fileURLWithPath: resume)
            let meta = try fail { try RunFolder(directory).resumableMetadata() }
            guard let model = meta["model"], let data = meta["data"], let own = meta["seed"] else {
                throw fail(ClassifierError.badCheckpoint("\(resume)/last.safetensors is not a classifier checkpoint"))
            }
            func conflict(_ what: String, _ given: String, _ value: String) -> ValidationError {
                ValidationError("--resume continues the run in \(resume) with its own \(what) (\(value)); drop \(given)")
            }
            if let agent, agent != model { throw conflict("model", "'\(agent)'", model) }
            if let d = self.data, d != data { throw conflict("data set", "--data \(d)", data) }
            if let seed, String(seed) != own { throw conflict("seed", "--seed \(seed)", own) }
            if config != nil || !overrides.isEmpty {
                throw conflict("settings", config != nil ? "--config" : "--set", "\(resume)/config.yml")
            }
            if out != nil { throw ValidationError("--resume writes into the run's own folder; drop --out") }
            options = ClassifierRunOptions(model: model, data: data, outputDirectory: directory)
            options.resume = true
        } else {
            let descriptor = try fail { try ClassifierCatalog.model(named: agent ?? "lenet") }
            let data = self.data ?? descriptor.defaultData
            let directory = out.map { URL(fileURLWithPath: $0) }
                ?? Run.freshDirectory("runs/\(descriptor.name)-\(data)-seed\(seed ?? 0)")
            options = ClassifierRunOptions(model: descriptor.name, data: data, outputDirectory: directory)
            options.seed = seed ?? 0
            options.configFile = config.map { URL(fileURLWithPath: $0) }
            options.overrides = overrides
        }
        options.dataDirectory = dataDir.map { URL(fileURLWithPath: $0) }
        options.epochs = epochs
        options.progress = plain ? .lines : .automatic

        StopRequest.reset()
        StopRequest.installInterruptHandler()
        let training = try fail { try ClassifierRun(options) }
        let report: [String: Any]
        do {
            report = try training.run()
        } catch ClassifierError.interrupted {
            throw ExitCode(130)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let accuracy = report["test_accuracy"] as? Double ?? .nan, loss = report["test_loss"] as? Double ?? .nan
        print(String(format: "done: %@ on %@; eval.json: test_accuracy %.4f, test_loss %.4f", training.descriptor.name,
                     options.data, accuracy, loss))
    }
}
