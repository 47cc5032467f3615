import Agents
import Classifiers
import ArgumentParser
import Generative
import Training

/// `rlbench list agents | models`: what can be trained, with every setting and its default.
struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List agents and generative models.",
                                                    subcommands: [ListAgents.self, ListModels.self])
}

struct ListAgents: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agents", abstract: "Show the agents, the action spaces they support and their defaults.")

    func run() {
        for type in AgentCatalog.all {
            let d = type.descriptor
            let kinds = d.actionKinds.map(\.rawValue).sorted().joined(separator: ", ")
            print("\(d.name) — \(d.summary)")
            print("  actions: \(kinds)\(d.needsDiscreteObservations ? "; needs discrete observations" : "")")
            print("  default environment: \(d.defaultEnvironment); tuned configs: \(TunedDefaults.environments(agent: d.name).joined(separator: ", "))")
            printSettings(d.help, d.defaults)
        }
        print(tensorboardLogNote)
    }
}

/// The key every trainer takes beside its own settings.
private let tensorboardLogNote = "every agent, model and classifier also takes \(HyperParameters.tensorboardLogKey): a folder "
    + "for TensorBoard event files (as run --tensorboard DIR; not set by default)"

/// One line per setting of a typed config: key, default, help.
private func printSettings(_ help: [(key: String, help: String)], _ defaults: [String: ConfigValue]) {
    let width = help.map(\.key.count).max() ?? 0
    for (key, text) in help {
        let value = defaults[key].map { "\($0)" } ?? ""
        // A long default (a mapping) is shown whole, pushing its help along.
        let column = value + String(repeating: " ", count: max(0, 16 - value.count))
        print("  \(key.padding(toLength: width, withPad: " ", startingAt: 0))  \(column) \(text)")
    }
    print()
}

struct ListModels: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "Show the generative models and the classifiers, their settings and defaults.")

    func run() {
        for type in ModelCatalog.all {
            let d = type.descriptor
            print("\(d.name) — \(d.summary)")
            print("  data: \(d.handlesPoints ? "images and 2-D points" : "images"); default --data \(d.defaultData); "
                  + "tuned configs: \(GenerativeRun.tunedConfigs.targets(d.name).joined(separator: ", "))")
            print("  metrics.csv: epoch, step, \(d.losses.joined(separator: ", ")), wall_time_s")
            printSettings(d.help, d.defaults)
        }
        print("classifiers (rlbench run <name> --data digits | mnist | fashion-mnist):\n")
        for d in ClassifierCatalog.all {
            print("\(d.name) — \(d.summary)")
            print("  default --data \(d.defaultData); tuned configs: \(ClassifierRun.tunedConfigs.targets(d.name).joined(separator: ", "))")
            print("  metrics.csv: \(ClassifierRun.metricColumns.joined(separator: ", "))")
            printSettings(d.help, d.defaults)
        }
        print(tensorboardLogNote)
    }
}
