import RLCore
import SeededRandom
import Testing

/// The moving average of a module's weights: the update rule, on parameters and batch-norm buffers alike, and
/// sampling through it leaves the trained weights in place.
struct MovingAverageTests {
    @Test func averagesParametersAndBuffersAndSwapsBack() {
        var rng = SeededGenerator(seed: 3)
        let net = Sequential([Linear(3, 2, using: &rng), BatchNorm1d(2)])
        let state = net.stateDict()
        let start = state.map(\.tensor.data)
        let average = ExponentialMovingAverage(of: net, decay: 0.75)
        #expect(average.averages.map(\.name) == state.map(\.name))

        // Two "steps": every value moves by +1, then by +2 (buffers included).
        for shift: Float in [1, 2] {
            for (_, t) in state { t.data = t.data.map { $0 + shift } }
            average.update()
        }
        let moved = state.map(\.tensor.data)
        for ((_, avg), initial) in zip(average.averages, start) {
            // a₁ = ¾·x₀ + ¼·(x₀ + 1) = x₀ + ¼;  a₂ = ¾·a₁ + ¼·(x₀ + 3) = x₀ + 15/16.
            for (a, x) in zip(avg.data, initial) { #expect(abs(a - (x + 0.9375)) < 1e-5) }
        }

        let input = Tensor([0.5, -1, 2, 1, 0, -0.5], shape: [2, 3])
        net.eval()
        let trained = net(input).data
        let averaged = average.withAveragedValues { net(input).data }
        #expect(averaged != trained, "the averaged network is another network")
        #expect(net(input).data == trained, "the trained values are back after sampling")
        #expect(net.stateDict().map(\.tensor.data) == moved)
    }
}
