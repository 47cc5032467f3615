import Foundation

/// Learning-rate schedules as PyTorch's schedulers compute them: the value after `step` scheduler steps.
public enum LearningRateSchedule: Sendable {
    case constant
    /// LinearLR: factor moves linearly from `start` to `end` over `totalIters` steps, then stays.
    case linear(start: Double, end: Double, totalIters: Int)
    /// StepLR: multiply by `gamma` every `stepSize` steps.
    case step(stepSize: Int, gamma: Double)
    /// CosineAnnealingLR: η_min + (η₀ − η_min)(1 + cos(π·t/T_max))/2.
    case cosine(tMax: Int, etaMin: Double)

    /// The learning rate after `step` scheduler steps, starting from `base`.
    public func value(base: Double, step: Int) -> Double {
        switch self {
        case .constant:
            return base
        case let .linear(start, end, total):
            let t = min(step, total)
            return base * (start + (end - start) * Double(t) / Double(max(total, 1)))
        case let .step(size, gamma):
            return base * Foundation.pow(gamma, Double(step / max(size, 1)))
        case let .cosine(tMax, etaMin):
            return etaMin + (base - etaMin) * (1 + Foundation.cos(Double.pi * Double(step) / Double(max(tMax, 1)))) / 2
        }
    }
}
