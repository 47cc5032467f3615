import Foundation

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

    /// The environments with a tuned config for `agent`.
    public static func environments(agent: String) -> [String] {
        guard let dir = Bundle.module.url(forResource: agent, withExtension: nil, subdirectory: "Configs"),
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        return names.filter { $0.hasSuffix(".yml") }.map { String($0.dropLast(4)) }.sorted()
    }
}
