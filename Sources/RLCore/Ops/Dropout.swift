import SeededRandom

extension Tensor {
    /// Inverted dropout (PyTorch's `F.dropout` in training mode): each element is zeroed with probability `p` and
    /// the rest are scaled by 1/(1 − p), so the expected value is unchanged and evaluation needs no rescaling. The
    /// mask comes from `rng` (one draw per element, in storage order), so the same generator state gives the same
    /// mask. `p` = 1 zeroes everything.
    public func dropout(_ p: Float, using rng: inout SeededGenerator) -> Tensor {
        precondition(p >= 0 && p <= 1, "dropout probability must be in [0, 1], got \(p)")
        let scale: Float = p < 1 ? 1 / (1 - p) : 0
        let mask = (0..<count).map { _ -> Float in rng.nextFloat() < p ? 0 : scale }
        let y = (0..<count).map { data[$0] * mask[$0] }
        return Tensor.result(y, shape: shape, inputs: [self]) { out in
            let g = out.grad!
            self.accumulateGrad((0..<g.count).map { g[$0] * mask[$0] })
        }
    }
}
