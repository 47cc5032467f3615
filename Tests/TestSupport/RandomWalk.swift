import Environments
import SeededRandom

/// `count` observations of a seeded random walk in `environment`, reset with `resetSeed` and again (unseeded) after
/// each episode ends: inputs on which two implementations of one policy must act alike.
public func randomWalkObservations(_ environment: Environment, count: Int, resetSeed: UInt64) throws -> [[Float]] {
    var rng = SeededGenerator(seed: 11)
    var observations: [[Float]] = [], observation = environment.reset(seed: resetSeed)
    for _ in 0..<count {
        observations.append(observation)
        let step = try environment.step(environment.actionSpace.sample(using: &rng))
        observation = step.terminated || step.truncated ? environment.reset() : step.observation
    }
    return observations
}
