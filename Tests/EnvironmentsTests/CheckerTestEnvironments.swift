import Environments
import Imaging
import SeededRandom

/// A tiny, fully specified environment for testing wrappers, vectors and the checker.
///
/// Observation `[start + count, Float(lastAction)]` in Box([-1, 0], [1000, 1]); `start` is drawn in [0, 1) from the
/// seeded generator at reset. Action Discrete(2); reward = action + 1 (so 1 or 2). Terminates after `length`
/// steps (a fixed `length`, or one drawn in 1...maxLength at reset when `randomLength`). Defects can be switched on.
final class CounterEnvironment: Environment {
    struct Defects: OptionSet {
        let rawValue: Int
        /// Writes one value past the declared observation.
        static let longObservation = Defects(rawValue: 1 << 0)
        /// Writes only the first observation value.
        static let shortObservation = Defects(rawValue: 1 << 1)
        /// The count observation leaves the space (negative).
        static let outsideSpace = Defects(rawValue: 1 << 2)
        /// Ignores the seed: draws the start from a generator that is never reseeded.
        static let unseeded = Defects(rawValue: 1 << 3)
        /// Keeps stepping after the episode ended.
        static let stepsAfterEnd = Defects(rawValue: 1 << 4)
        /// Returns NaN rewards.
        static let nanReward = Defects(rawValue: 1 << 5)
        /// Accepts any action index.
        static let acceptsAnyAction = Defects(rawValue: 1 << 6)
        /// Renders an image whose pixel buffer is empty.
        static let emptyRender = Defects(rawValue: 1 << 7)
    }

    var spec: EnvSpec?
    let length: Int
    let randomLength: Bool
    let defects: Defects
    private var rng = SeededGenerator(seed: 0)
    private var unseededRNG = SeededGenerator(seed: 99)
    private(set) var count = 0
    private var start: Float = 0
    private var episodeLength = 0
    private var ended = true
    /// Every reset seed received (nil for unseeded resets), for vector tests.
    private(set) var seeds: [UInt64?] = []

    init(length: Int = 5, randomLength: Bool = false, defects: Defects = []) {
        self.length = length; self.randomLength = randomLength; self.defects = defects
    }

    var observationSpace: Space { .box(low: [-1, 0], high: [1000, 1], shape: [2]) }
    var actionSpace: Space { .discrete(2) }

    func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {
        seeds.append(seed)
        if let seed { rng = SeededGenerator(seed: seed) }
        start = defects.contains(.unseeded) ? unseededRNG.nextFloat() : rng.nextFloat()
        episodeLength = randomLength ? 1 + rng.nextInt(below: length) : length
        count = 0
        ended = false
        write(lastAction: 0, observation)
    }

    func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        if ended && !defects.contains(.stepsAfterEnd) { throw EnvironmentError.stepAfterEnd("Counter") }
        guard case let .discrete(a) = action, defects.contains(.acceptsAnyAction) || (a == 0 || a == 1) else {
            throw EnvironmentError.invalidAction("Counter takes 0 or 1, got \(action)")
        }
        count += 1
        write(lastAction: a, observation)
        ended = count >= episodeLength
        return StepOutcome(reward: defects.contains(.nanReward) ? .nan : Double(a + 1), terminated: ended, truncated: false)
    }

    private func write(lastAction: Int, _ o: UnsafeMutableBufferPointer<Float>) {
        o[0] = defects.contains(.outsideSpace) ? -5 - Float(count) : start + Float(count)
        if defects.contains(.shortObservation) { return }
        o[1] = Float(lastAction)
        if defects.contains(.longObservation) { o.baseAddress![2] = 7 }
    }

    func render() -> RGBImage {
        var image = RGBImage(width: 4, height: 3)
        if defects.contains(.emptyRender) { image.pixels = [] }
        return image
    }
}

/// An environment with a Discrete(n) observation (state = number of steps mod n), for `OneHotObservation`.
final class DiscreteStateEnvironment: Environment {
    var spec: EnvSpec?
    let n: Int
    private var state = 0
    init(n: Int) { self.n = n }
    var observationSpace: Space { .discrete(n) }
    var actionSpace: Space { .discrete(1) }
    func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) { state = 0; observation[0] = 0 }
    func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
        state = (state + 1) % n
        observation[0] = Float(state)
        return StepOutcome(reward: 0, terminated: false, truncated: false)
    }
    func render() -> RGBImage { RGBImage(width: 1, height: 1) }
}
