import Environments
import SeededRandom

/// `count` observations of a seeded random walk in `environment`, reset with `resetSeed` and again (unseeded) after
/// each episode ends: inputs on which two implementations of one policy must act alike.
public func randomWalkObservations(_ environment: Environment, count: Int, resetSeed: UInt64) throws -> [[Float]] {
    try randomWalk(environment, count: count, resetSeed: resetSeed).map(\.observation)
}

/// The random walk of `randomWalkObservations`, each observation with whether it begins an episode (the first one
/// does): what a recurrent policy must forget its memory at.
public func randomWalk(_ environment: Environment, count: Int, resetSeed: UInt64) throws -> [(observation: [Float], begins: Bool)] {
    var rng = SeededGenerator(seed: 11)
    var steps: [(observation: [Float], begins: Bool)] = [], observation = environment.reset(seed: resetSeed), begins = true
    for _ in 0..<count {
        steps.append((observation, begins))
        let step = try environment.step(environment.actionSpace.sample(using: &rng))
        begins = step.terminated || step.truncated
        observation = begins ? environment.reset() : step.observation
    }
    return steps
}

extension Action {
    /// The action as numbers, as a Python script prints it: `[index]` or the continuous values.
    public var numbers: [Double] {
        switch self {
        case let .discrete(a): [Double(a)]
        case let .continuous(a): a.map(Double.init)
        }
    }
}
