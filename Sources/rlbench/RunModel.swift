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
        if let resume {
            let meta = try? RunFolder(URL(fileURLWithPath: resume)).resumableMetadata()
            return meta?["format"] == GenerativeRun.checkpointFormat
        }
        return false
    }

    func runModel() throws {
        // Flags of agent runs have no meaning here: refuse them rather than ignore them.
        let agentOnly: [(Bool, String)] = [(env != nil, "--env"), (steps != nil, "--steps"), (!envOption.isEmpty, "--env-option"),
                                           (checkpointEvery != nil, "--checkpoint-every"), (evalEpisodes != 100, "--eval-episodes"),
                                           (fps != nil, "--fps")]
        if let (_, flag) = agentOnly.first(where: { $0.0 }) {
            throw ValidationError("\(flag) is for agents; a generative model trains for --epochs on --data")
        }
        var options: GenerativeRunOptions
        if let resume {
            let directory = URL(fileURLWithPath: resume)
            let meta = try fail { try RunFolder(directory).resumableMetadata() }
            guard let model = meta["model"], let data = meta["data"], let own = meta["seed"] else {
                throw fail(GenerativeError.badCheckpoint("\(resume)/last.safetensors is not a generative-model checkpoint"))
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
            options = GenerativeRunOptions(model: model, data: data, outputDirectory: directory)
            options.resume = true
        } else {
            let type = try fail { try ModelCatalog.model(named: agent ?? "vae") }
            let name = type.descriptor.name, data = self.data ?? type.descriptor.defaultData
            let directory = out.map { URL(fileURLWithPath: $0) }
                ?? Run.freshDirectory("runs/\(name)-\(data)-seed\(seed ?? 0)")
            options = GenerativeRunOptions(model: name, data: data, outputDirectory: directory)
            options.seed = seed ?? 0
            options.configFile = config.map { URL(fileURLWithPath: $0) }
            options.overrides = overrides
        }
        options.dataDirectory = dataDir.map { URL(fileURLWithPath: $0) }
        options.epochs = epochs
        options.progress = plain ? .lines : .automatic

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
            throw ExitCode(130)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        print("done: \(training.descriptor.name) on \(options.data); eval.json: "
              + quality.keys.sorted().map { "\($0) \(String(format: "%.4g", quality[$0]!))" }.joined(separator: ", "))
    }
}
