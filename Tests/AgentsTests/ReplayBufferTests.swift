import Agents
import SeededRandom
import Testing

@Suite struct ReplayBufferTests {
    /// A buffer of `count` transitions of 2-float observations: transition t has s = (t, −t), s' = (t + 1, −t − 1),
    /// action t mod 3, reward t/10 and terminates when t is a multiple of 5.
    func filled(capacity: Int, count: Int) -> ReplayBuffer {
        var buffer = ReplayBuffer(capacity: capacity, observationSize: 2)
        for t in 0..<count {
            let s: [Float] = [Float(t), -Float(t)], next: [Float] = [Float(t + 1), -Float(t + 1)]
            s.withUnsafeBufferPointer { o in
                next.withUnsafeBufferPointer { n in
                    buffer.add(observation: o, action: t % 3, reward: Double(t) / 10, nextObservation: n, terminated: t % 5 == 0)
                }
            }
        }
        return buffer
    }

    @Test func gatheredRowsAreTheStoredTransitions() {
        let buffer = filled(capacity: 8, count: 6)
        var batch = ReplayBuffer.Batch(size: 4, observationSize: 2)
        buffer.gather([5, 3, 0, 5], into: &batch)
        #expect(batch.observations == [5, -5, 3, -3, 0, 0, 5, -5])
        #expect(batch.nextObservations == [6, -6, 4, -4, 1, -1, 6, -6])
        #expect(batch.actions == [2, 0, 0, 2])
        #expect(batch.rewards == [0.5, 0.3, 0, 0.5])
        #expect(batch.terminated == [1, 0, 1, 1])
        #expect(buffer.nextObservations(at: [1, 4]) == [2, -2, 5, -5])
    }

    @Test func fullBufferOverwritesTheOldest() {
        let buffer = filled(capacity: 4, count: 6)  // slots hold t = 4, 5, 2, 3
        #expect(buffer.count == 4)
        #expect(buffer.nextObservations(at: [0, 1, 2, 3]) == [5, -5, 6, -6, 3, -3, 4, -4])
    }

    /// Drawing the indices and gathering them is what `sample` does, draw for draw: DQN draws a whole update's
    /// minibatches at once and must see the same transitions as sampling them one by one.
    @Test func samplingIsDrawingIndicesThenGathering() {
        let buffer = filled(capacity: 100, count: 37)
        var a = SeededGenerator(seed: 4), b = SeededGenerator(seed: 4)
        var sampled = ReplayBuffer.Batch(size: 16, observationSize: 2), gathered = sampled
        var whole = ReplayBuffer.Batch(size: 32, observationSize: 2)
        let indices = buffer.sampleIndices(32, using: &b)
        #expect(indices.allSatisfy { (0..<37).contains($0) })
        buffer.gather(indices, into: &whole)
        for half in 0..<2 {
            buffer.sample(into: &sampled, using: &a)
            buffer.gather(Array(indices[half * 16 ..< half * 16 + 16]), into: &gathered)
            #expect(sampled.observations == gathered.observations)
            #expect(sampled.actions == gathered.actions)
            #expect(Array(whole.rewards[half * 16 ..< half * 16 + 16]) == sampled.rewards)
        }
    }
}
