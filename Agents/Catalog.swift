/// Every agent `rlbench` knows, by command-line name. Add a new algorithm's type here.
public enum AgentCatalog {
    // An immutable list of metatypes: safe to share between threads, though Swift cannot prove it.
    nonisolated(unsafe) public static let all: [any Agent.Type] = [
        PPOAgent.self,
        RecurrentPPOAgent.self,
        DQNAgent.self,
        A2CAgent.self,
        REINFORCEAgent.self,
        QLearningAgent.self,
        SARSAAgent.self,
    ]

    /// The names, in listing order.
    public static var names: [String] { all.map { $0.descriptor.name } }

    /// The agent type called `name`; the error lists the known names.
    public static func agent(named name: String) throws -> any Agent.Type {
        guard let type = all.first(where: { $0.descriptor.name == name.lowercased() }) else {
            throw AgentError.unknownAgent(name, known: names)
        }
        return type
    }
}
