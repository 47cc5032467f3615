import Agents
import SeededRandom
import Testing

@Suite struct ReplayBufferTests {
    /// A buffer of `count` transitions of 2-float observations: transition t has s = (t, −t), s' = (t + 1, −t − 1),
    /// action t mod 3, reward t/10, terminates when t is a multiple of 5 and is truncated when t is in `truncatedAt`.
    func filled(capacity: Int, count: Int, truncatedAt: Set<Int> = []) -> ReplayBuffer {
        var buffer = ReplayBuffer(capacity: capacity, observationSize: 2)
        for t in 0..<count {
            let s: [Float] = [Float(t), -Float(t)], next: [Float] = [Float(t + 1), -Float(t + 1)]
            s.withUnsafeBufferPointer { o in
                next.withUnsafeBufferPointer { n in
                    buffer.add(observation: o, action: t % 3, reward: Double(t) / 10, nextObservation: n,
                               terminated: t % 5 == 0, truncated: truncatedAt.contains(t))
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
        #expect(batch.discounts == [1, 1, 1, 1])  // γ = 1 unless given
        #expect(batch.ends == [5, 3, 0, 5])
        #expect(buffer.nextObservations(at: [1, 4]) == [2, -2, 5, -5])
    }

    /// n-step transitions (SB3's NStepReplayBuffer): each runs on for up to n steps and stops at a termination, a
    /// truncation or the newest transition; rewards are discounted sums and the discount is γ to the steps spanned.
    @Test func nStepTransitionsStopAtEpisodeEndsAndTheNewestTransition() {
        // t = 0…13; terminations at 0, 5, 10; a truncation at 7; 13 is the newest.
        let buffer = filled(capacity: 16, count: 14, truncatedAt: [7])
        let gamma: Float = 0.5
        var batch = ReplayBuffer.Batch(size: 6, observationSize: 2)
        buffer.gather([1, 3, 6, 8, 11, 12], into: &batch, steps: 3, gamma: gamma)
        // 1 → 1, 2, 3 (three steps); 3 → 3, 4, 5 (5 terminates); 6 → 6, 7 (7 is truncated); 8 → 8, 9, 10 (10
        // terminates, as the third step); 11 → 11, 12, 13; 12 → 12, 13 (the newest).
        #expect(batch.ends == [3, 5, 7, 10, 13, 13])
        #expect(batch.observations == [1, -1, 3, -3, 6, -6, 8, -8, 11, -11, 12, -12])
        #expect(batch.nextObservations == [4, -4, 6, -6, 8, -8, 11, -11, 14, -14, 14, -14])
        #expect(batch.terminated == [0, 1, 0, 1, 0, 0])
        #expect(batch.discounts == [0.125, 0.125, 0.25, 0.125, 0.125, 0.25])
        #expect(batch.actions == [1, 0, 0, 2, 2, 0])
        let r: (Int) -> Float = { Float(Double($0) / 10) }
        let expected: [Float] = [r(1) + gamma * r(2) + gamma * gamma * r(3), r(3) + gamma * r(4) + gamma * gamma * r(5),
                                 r(6) + gamma * r(7), r(8) + gamma * r(9) + gamma * gamma * r(10),
                                 r(11) + gamma * r(12) + gamma * gamma * r(13), r(12) + gamma * r(13)]
        #expect(batch.rewards == expected)

        // One step is the stored transition with discount γ; a terminal first transition spans only itself.
        var single = ReplayBuffer.Batch(size: 2, observationSize: 2)
        buffer.gather([5, 9], into: &single, steps: 1, gamma: gamma)
        #expect(single.rewards == [r(5), r(9)] && single.discounts == [gamma, gamma] && single.ends == [5, 9])
        buffer.gather([5, 9], into: &single, steps: 4, gamma: gamma)
        #expect(single.ends == [5, 10] && single.discounts == [gamma, gamma * gamma])
    }

    /// Once the ring has wrapped, an n-step transition runs on across the end of the storage but never past the
    /// newest transition into the oldest.
    @Test func nStepTransitionsWrapAroundTheRing() {
        let buffer = filled(capacity: 4, count: 7)  // slots hold t = 4, 5, 6, 3; the newest (6) is in slot 2
        var batch = ReplayBuffer.Batch(size: 2, observationSize: 2)
        buffer.gather([3, 1], into: &batch, steps: 3, gamma: 1)
        // t = 3 (slot 3) → 4 (slot 0) → 5 (slot 1, terminates); t = 5 terminates at once.
        #expect(batch.ends == [1, 1])
        #expect(batch.rewards == [Float(0.3) + Float(0.4) + Float(0.5), Float(0.5)])
        buffer.gather([0, 2], into: &batch, steps: 3, gamma: 1)
        // t = 4 (slot 0) ends at 5 (terminates); t = 6 (slot 2) is the newest: it cannot run on into slot 3 (t = 3).
        #expect(batch.ends == [1, 2])
        #expect(batch.nextObservations == [6, -6, 7, -7])
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
