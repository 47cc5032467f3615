import Foundation
import SeededRandom

/// Weight initializers (in place, PyTorch's formulas). Fan-in/out follow torch: for a `[out, in, ...]` weight,
/// fan_in = in · receptive field, fan_out = out · receptive field.
public enum Initializer {
    static func fans(_ t: Tensor) -> (fanIn: Int, fanOut: Int) {
        precondition(t.rank >= 2, "fan in/out need a weight of rank ≥ 2, got \(t.shape)")
        let receptive = t.shape.dropFirst(2).reduce(1, *)
        return (t.shape[1] * receptive, t.shape[0] * receptive)
    }

    /// The recommended gain for a nonlinearity (torch.nn.init.calculate_gain).
    public static func gain(for activation: Activation, negativeSlope: Float = 0.01) -> Float {
        switch activation {
        case .relu: Float(2).squareRoot()
        case .leakyRelu: (2 / (1 + negativeSlope * negativeSlope)).squareRoot()
        case .tanh: 5.0 / 3
        default: 1
        }
    }

    public static func constant(_ t: Tensor, _ value: Float) { t.data = [Float](repeating: value, count: t.count) }

    /// Glorot/Xavier uniform: U(±gain·√(6 / (fan_in + fan_out))).
    public static func xavierUniform(_ t: Tensor, gain: Float = 1, using rng: inout SeededGenerator) {
        let (fi, fo) = fans(t)
        let a = gain * (6 / Float(fi + fo)).squareRoot()
        t.data = (0..<t.count).map { _ in rng.uniform(-a, a) }
    }

    /// Glorot/Xavier normal: N(0, gain²·2 / (fan_in + fan_out)).
    public static func xavierNormal(_ t: Tensor, gain: Float = 1, using rng: inout SeededGenerator) {
        let (fi, fo) = fans(t)
        let std = gain * (2 / Float(fi + fo)).squareRoot()
        t.data = (0..<t.count).map { _ in std * Float(rng.nextGaussian()) }
    }

    /// He/Kaiming uniform: U(±gain·√(3 / fan)), fan = fan_in (default) or fan_out.
    public static func kaimingUniform(_ t: Tensor, gain: Float = Float(2).squareRoot(), fanOut: Bool = false,
                                      using rng: inout SeededGenerator) {
        let (fi, fo) = fans(t)
        let bound = gain * (3 / Float(fanOut ? fo : fi)).squareRoot()
        t.data = (0..<t.count).map { _ in rng.uniform(-bound, bound) }
    }

    /// He/Kaiming normal: N(0, gain² / fan).
    public static func kaimingNormal(_ t: Tensor, gain: Float = Float(2).squareRoot(), fanOut: Bool = false,
                                     using rng: inout SeededGenerator) {
        let (fi, fo) = fans(t)
        let std = gain / Float(fanOut ? fo : fi).squareRoot()
        t.data = (0..<t.count).map { _ in std * Float(rng.nextGaussian()) }
    }

    /// A (semi-)orthogonal matrix scaled by `gain`, as torch.nn.init.orthogonal_: QR of a normal matrix, with the
    /// signs of R's diagonal folded into Q. The weight is viewed as `[rows, everything else]`.
    public static func orthogonal(_ t: Tensor, gain: Float = 1, using rng: inout SeededGenerator) {
        precondition(t.rank >= 2, "orthogonal init needs rank ≥ 2, got \(t.shape)")
        let rows = t.shape[0], cols = t.count / rows
        // Work on the tall orientation: m ≥ n.
        let transpose = rows < cols
        let m = transpose ? cols : rows, n = transpose ? rows : cols
        var a = (0..<(m * n)).map { _ in rng.nextGaussian() } // column-major m×n: a[j*m + i]
        // Modified Gram–Schmidt on the columns gives Q (m×n, orthonormal columns) and R's diagonal.
        var q = [Double](repeating: 0, count: m * n)
        for j in 0..<n {
            for k in 0..<j {
                var dot = 0.0
                for i in 0..<m { dot += q[k * m + i] * a[j * m + i] }
                for i in 0..<m { a[j * m + i] -= dot * q[k * m + i] }
            }
            var norm = 0.0
            for i in 0..<m { norm += a[j * m + i] * a[j * m + i] }
            norm = norm.squareRoot()
            // R[j][j] = norm > 0, so the sign correction of torch (Q·sign(diag R)) is the identity here.
            for i in 0..<m { q[j * m + i] = a[j * m + i] / max(norm, 1e-12) }
        }
        var out = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols {
                // Q is m×n; the weight is rows×cols = Q (not transposed) or Qᵀ (transposed).
                let v = transpose ? q[r * m + c] : q[c * m + r]
                out[r * cols + c] = gain * Float(v)
            }
        }
        t.data = out
    }
}
