import Foundation
import Yams
import Training

/// The tuned hyperparameters shipped with rlbench: `Agents/Configs/<agent>/<env id>.yml`, following
/// rl-baselines3-zoo (its key names and, where the zoo has an entry, its values).
public enum TunedDefaults {
    static let configs = TunedConfigs(.module)

    /// The tuned config text for `agent` on `environment`, if rlbench ships one.
    public static func text(agent: String, environment: String) -> String? { configs.text(agent, for: environment) }

    /// Where the tuned file lives (in the Agents resource bundle), if there is one.
    public static func url(agent: String, environment: String) -> URL? { configs.url(agent, for: environment) }

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
    public static func environments(agent: String) -> [String] { configs.targets(agent) }
}
