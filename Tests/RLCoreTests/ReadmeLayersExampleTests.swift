import RLCore
import SeededRandom
import Testing

/// The README's "Building a model from layers" example, as written there: LeNet-5 builds, trains, and overfits a
/// small batch.
@Suite struct ReadmeLayersExampleTests {
    @Test func lenetFromTheReadmeTrains() throws {
        var rng = SeededGenerator(seed: 0)
        let lenet = Sequential([
            Conv2d(1, 6, kernelSize: 5, padding: 2, using: &rng), ActivationLayer(.relu), MaxPool2d(kernelSize: 2),
            Conv2d(6, 16, kernelSize: 5, using: &rng), ActivationLayer(.relu), MaxPool2d(kernelSize: 2),
            Flatten(), Linear(16 * 5 * 5, 120, using: &rng), ActivationLayer(.relu), Linear(120, 10, using: &rng)])
        let optimizer = Adam(lenet.namedParameters(), learningRate: 1e-3)
        let images = Tensor.uniform([8, 1, 28, 28], using: &rng)
        let labels = Array(0..<8)
        var losses: [Float] = []
        for _ in 0..<100 {
            let loss = crossEntropyLoss(lenet(images), labels: labels)
            optimizer.zeroGrad()
            loss.backward(); optimizer.step()
            losses.append(loss.item)
        }
        #expect(lenet(images).shape == [8, 10])
        #expect(losses.first! > 2 && losses.last! < 0.5, "losses \(losses.first!) → \(losses.last!)")
    }
}
