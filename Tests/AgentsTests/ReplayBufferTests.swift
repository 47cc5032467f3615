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
        buffer.gather([5, 3, 0, 5], into: &batch, steps: 1, gamma: 0.9)
        #expect(batch.observations == [5, -5, 3, -3, 0, 0, 5, -5])
        #expect(batch.nextObservations == [6, -6, 4, -4, 1, -1, 6, -6])
        #expect(batch.actions == [2, 0, 0, 2])
        #expect(batch.rewards == [0.5, 0.3, 0, 0.5])
        #expect(batch.terminated == [1, 0, 1, 1])
        #expect(batch.discounts == [0.9, 0.9, 0.9, 0.9])
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
        buffer.gather([1, 4, 6, 9, 11, 12], into: &batch, steps: 3, gamma: gamma)
        // 1 → 1, 2, 3 (three steps); 4 → 4, 5 (5 terminates); 6 → 6, 7 (7 is truncated); 9 → 9, 10 (10 terminates);
        // 11 → 11, 12, 13 (three steps, the last the newest); 12 → 12, 13 (the newest).
        #expect(batch.ends == [3, 5, 7, 10, 13, 13])
        #expect(batch.observations == [1, -1, 4, -4, 6, -6, 9, -9, 11, -11, 12, -12])
        #expect(batch.nextObservations == [4, -4, 6, -6, 8, -8, 11, -11, 14, -14, 14, -14])
        // The target pass reads the next observations at `ends`: the same rows.
        #expect(buffer.nextObservations(at: batch.ends) == batch.nextObservations)
        #expect(batch.terminated == [0, 1, 0, 1, 0, 0])
        #expect(batch.discounts == [0.125, 0.25, 0.25, 0.25, 0.125, 0.25])
        #expect(batch.actions == [1, 1, 0, 0, 2, 0])
        let r: (Int) -> Float = { Float(Double($0) / 10) }
        let expected: [Float] = [r(1) + gamma * r(2) + gamma * gamma * r(3), r(4) + gamma * r(5), r(6) + gamma * r(7),
                                 r(9) + gamma * r(10), r(11) + gamma * r(12) + gamma * gamma * r(13), r(12) + gamma * r(13)]
        #expect(batch.rewards == expected)

        // One step is the stored transition with discount γ; a terminal first transition spans only itself.
        var single = ReplayBuffer.Batch(size: 2, observationSize: 2)
        buffer.gather([5, 9], into: &single, steps: 1, gamma: gamma)
        #expect(single.rewards == [r(5), r(9)] && single.discounts == [gamma, gamma] && single.ends == [5, 9])
        buffer.gather([5, 9], into: &single, steps: 4, gamma: gamma)
        #expect(single.ends == [5, 10] && single.discounts == [gamma, gamma * gamma])
    }

    /// With γ = 0.99 the powers γᵏ, the discounted reward sums and γᵐ are SB3's (values recorded from its
    /// `NStepReplayBuffer` arithmetic in numpy float32): repeated multiplication is an ulp off from γ³ on, and so is
    /// the four-step sum.
    @Test func nStepDiscountsAreSB3sFloat32Powers() {
        let buffer = filled(capacity: 16, count: 10)  // t = 1...4 carry rewards 0.1...0.4 and do not end
        var batch = ReplayBuffer.Batch(size: 1, observationSize: 2)
        buffer.gather([1], into: &batch, steps: 3, gamma: 0.99)
        #expect(batch.discounts[0].bitPattern == 0x3F78_6584 && batch.rewards[0].bitPattern == 0x3F17_8F48)
        buffer.gather([1], into: &batch, steps: 4, gamma: 0.99)
        #expect(batch.discounts[0].bitPattern == 0x3F75_E99F && batch.rewards[0].bitPattern == 0x3F7A_EB16)
    }

    /// Once the ring has wrapped, an n-step transition runs on across the end of the storage but never past the
    /// newest transition into the oldest, also when the newest is in the last slot.
    @Test func nStepTransitionsWrapAroundTheRing() {
        let r: (Int) -> Float = { Float(Double($0) / 10) }
        let wrapped = filled(capacity: 4, count: 7)  // slots hold t = 4, 5, 6, 3; the newest (6) is in slot 2
        var batch = ReplayBuffer.Batch(size: 2, observationSize: 2)
        wrapped.gather([3, 2], into: &batch, steps: 3, gamma: 0.5)
        // t = 3 (slot 3) → 4 (slot 0) → 5 (slot 1, terminates); t = 6 (slot 2) is the newest: it cannot run on into
        // slot 3 (t = 3).
        #expect(batch.ends == [1, 2])
        #expect(batch.rewards == [r(3) + 0.5 * r(4) + 0.25 * r(5), r(6)])
        #expect(batch.discounts == [0.125, 0.5] && batch.terminated == [1, 0])
        #expect(batch.nextObservations == [6, -6, 7, -7])

        let full = filled(capacity: 4, count: 8)  // slots hold t = 4, 5, 6, 7; the newest (7) is in the last slot
        var three = ReplayBuffer.Batch(size: 3, observationSize: 2)
        full.gather([2, 3, 0], into: &three, steps: 3, gamma: 0.5)
        // t = 6 → 7 (the newest); t = 7 is the newest; t = 4 → 5 (terminates).
        #expect(three.ends == [3, 3, 1])
        #expect(three.rewards == [r(6) + 0.5 * r(7), r(7), r(4) + 0.5 * r(5)])
        #expect(three.discounts == [0.25, 0.5, 0.25] && three.terminated == [0, 0, 1])
        #expect(three.nextObservations == [8, -8, 8, -8, 6, -6])
    }

    @Test func fullBufferOverwritesTheOldest() {
        let buffer = filled(capacity: 4, count: 6)  // slots hold t = 4, 5, 2, 3
        #expect(buffer.count == 4)
        #expect(buffer.nextObservations(at: [0, 1, 2, 3]) == [5, -5, 6, -6, 3, -3, 4, -4])
    }

    /// DQN draws a whole update's minibatches at once: the same transitions, draw for draw, as drawing them one
    /// minibatch after the other.
    @Test func drawingAllMinibatchesAtOnceIsDrawingThemOneByOne() {
        let buffer = filled(capacity: 100, count: 37)
        var a = SeededGenerator(seed: 4), b = SeededGenerator(seed: 4)
        let whole = buffer.sampleIndices(32, using: &b)
        #expect(whole.allSatisfy { (0..<37).contains($0) })
        #expect(Set(whole).count > 16, "draws spread over the buffer")
        #expect(buffer.sampleIndices(16, using: &a) + buffer.sampleIndices(16, using: &a) == whole)
    }

    /// A saved buffer (also wrapped around: its write position is not its fill) restored into one of the same capacity
    /// draws and gathers exactly what the original does; only the filled rows are saved. A larger capacity takes a
    /// buffer that never wrapped around (as if it had been that large from the start), not one that did.
    @Test func savedBufferRestoresExactly() throws {
        for count in [5, 13] {
            let original = filled(capacity: 8, count: count, truncatedAt: [3, 9])
            var state = TrainingState()
            original.save(into: &state)
            let saved = try #require(state.tensors.first { $0.name == "replay.observations" }?.tensor)
            #expect(saved.shape == [min(count, 8), 2])
            let restored = try ReplayBuffer(capacity: 8, observationSize: 2, from: state)
            #expect(restored.count == original.count)
            var a = SeededGenerator(seed: 1), b = a
            let indices = original.sampleIndices(32, using: &a)
            #expect(restored.sampleIndices(32, using: &b) == indices)
            var x = ReplayBuffer.Batch(size: 32, observationSize: 2), y = x
            original.gather(indices, into: &x, steps: 3, gamma: 0.9)
            restored.gather(indices, into: &y, steps: 3, gamma: 0.9)
            #expect(x.observations == y.observations && x.nextObservations == y.nextObservations && x.actions == y.actions
                    && x.rewards == y.rewards && x.discounts == y.discounts && x.terminated == y.terminated && x.ends == y.ends)
            if count > 8 {
                #expect(throws: TrainingStateError.self) { try ReplayBuffer(capacity: 9, observationSize: 2, from: state) }
            } else {
                var larger = try ReplayBuffer(capacity: 9, observationSize: 2, from: state)
                var grown = filled(capacity: 9, count: count, truncatedAt: [3, 9])
                let s: [Float] = [7, 7]
                s.withUnsafeBufferPointer { o in
                    larger.add(observation: o, action: 1, reward: 1, nextObservation: o, terminated: false, truncated: false)
                    grown.add(observation: o, action: 1, reward: 1, nextObservation: o, terminated: false, truncated: false)
                }
                var c = SeededGenerator(seed: 2), d = c
                let drawn = grown.sampleIndices(40, using: &c)
                #expect(larger.sampleIndices(40, using: &d) == drawn)
                var g = ReplayBuffer.Batch(size: 40, observationSize: 2), h = g
                grown.gather(drawn, into: &g, steps: 2, gamma: 0.9)
                larger.gather(drawn, into: &h, steps: 2, gamma: 0.9)
                #expect(g.observations == h.observations && g.rewards == h.rewards && g.ends == h.ends)
            }
        }
    }
}
