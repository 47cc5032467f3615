import Foundation
import Yams
import Training

/// The tuned hyperparameters shipped with rlbench: `Agents/Configs/<agent>/<env id>.yml`, following
/// rl-baselines3-zoo (its key names and, where the zoo has an entry, its values).
public enum TunedDefaults {
    /// The tuned config text for `agent` on `environment`, if rlbench ships one.
    public static func text(agent: String, environment: String) -> String? {
        guard let url = url(agent: agent, environment: environment) else { return nil }
        return try? String(contentsOf: url, encoding: .utf8)
    }

    /// Where the tuned file lives (in the Agents resource bundle), if there is one.
    public static func url(agent: String, environment: String) -> URL? {
        Bundle.module.url(forResource: environment, withExtension: "yml", subdirectory: "Configs/\(agent)")
    }

    /// The keys of the tuned file for `agent` on `environment` as one JSON object (the zoo's names and values, e.g.
    /// `{"n_envs": 8, "learning_rate": "lin_0.001", ...}`), for handing the same hyperparameters to another library.
    public static func json(agent: String, environment: String) throws -> String? {
        guard let text = text(agent: agent, environment: environment) else { return nil }
        let source = "Configs/\(agent)/\(environment).yml"
        guard let mapping = try Yams.load(yaml: text) as? [String: Any] else {
            throw ConfigError.malformed(source: source, reason: "expected a mapping of key: value lines")
        }
        let data = try JSONSerialization.data(withJSONObject: mapping, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// The environments with a tuned config for `agent`.
    public static func environments(agent: String) -> [String] {
        guard let dir = Bundle.module.url(forResource: agent, withExtension: nil, subdirectory: "Configs"),
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        return names.filter { $0.hasSuffix(".yml") }.map { String($0.dropLast(4)) }.sorted()
    }
}
