import ArgumentParser
import CLIKit
import Foundation
import Generative
import Training
import Viewer

/// `rlbench run <model> --data …`: the generative-model half of `run`.
extension Run {
    /// Whether this run trains a generative model: a model's name, `--data`, or a resumed folder holding one.
    func isModelRun() throws -> Bool {
        if let agent { return ModelCatalog.names.contains(agent) }
        if data != nil { return true }
        if let resume { return RunFolder(URL(fileURLWithPath: resume)).recordedKind() == .generative }
        return false
    }

    func runModel() throws {
        let options = try dataRunOptions(kind: .generative, defaultModel: "vae", refusing: []) {
            let type = try ModelCatalog.model(named: $0)
            return (type.descriptor.name, type.descriptor.defaultData)
        }
        StopRequest.reset()
        StopRequest.installInterruptHandler()
        let training = try fail { try GenerativeRun(options) }
        let quality: [String: Double]
        do {
            if view {
                quality = try LiveSamples.run(training) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            } else {
                quality = try training.run()
            }
        } catch GenerativeError.interrupted {
            throw ExitCode(StopRequest.exitCode)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        print("done: \(training.descriptor.name) on \(options.data); eval.json: "
              + quality.keys.sorted().map { "\($0) \(String(format: "%.4g", quality[$0]!))" }.joined(separator: ", "))
    }

    /// The options of an epoch-based run (a generative model, a classifier) from `run`'s flags: a new run of the model
    /// named (or `defaultModel`) on `--data` (or its own default), or `--resume` of a folder with its own model, data,
    /// seed and settings. Agents' flags, and `extra` ones (flag given, name), are refused by name.
    func dataRunOptions(kind checkpointKind: CheckpointMetadata.Kind, defaultModel: String, refusing extra: [(Bool, String)],
                        resolve: (String) throws -> (name: String, defaultData: String)) throws -> DataRunOptions {
        let kind = checkpointKind == .generative ? "generative model" : "classifier"
        let refused = [(env != nil, "--env"), (steps != nil, "--steps"), (!envOption.isEmpty, "--env-option"),
                       (checkpointEvery != nil, "--checkpoint-every"), (evalEpisodes != 100, "--eval-episodes"),
                       (fps != nil, "--fps")] + extra
        if let (_, flag) = refused.first(where: { $0.0 }) {
            throw ValidationError("\(flag) is not for a \(kind); a \(kind) trains for --epochs on --data")
        }
        var options: DataRunOptions
        if let resume {
            let directory = URL(fileURLWithPath: resume)
            let meta = try fail { try RunFolder(directory).resumePoint(kind: checkpointKind).metadata }
            let (model, data, own) = try fail { try (meta.value(.model), meta.value(.data), String(meta.value(.seed))) }
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
            options = DataRunOptions(model: model, data: data, outputDirectory: directory)
            options.resume = true
        } else {
            let (name, defaultData) = try fail { try resolve(agent ?? defaultModel) }
            let data = self.data ?? defaultData
            let directory = out.map { URL(fileURLWithPath: $0) } ?? Run.freshDirectory("runs/\(name)-\(data)-seed\(seed ?? 0)")
            options = DataRunOptions(model: name, data: data, outputDirectory: directory)
            options.seed = seed ?? 0
            options.configFile = config.map { URL(fileURLWithPath: $0) }
            options.overrides = overrides
        }
        options.dataDirectory = dataDir.map { URL(fileURLWithPath: $0) }
        options.epochs = epochs
        options.progress = plain ? .lines : .automatic
        options.tensorboardLog = tensorboard
        return options
    }
}
