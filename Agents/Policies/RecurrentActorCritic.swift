import Environments
import Foundation
import RLCore
import SeededRandom
import Training

/// The hidden and cell states of an LSTM for `rows` sequences at once, each `[layers, rows, hidden]` as torch lays
/// them out: what a recurrent policy remembers of each episode under way.
public struct LSTMMemory: Equatable, Sendable {
    public let layers: Int, hidden: Int
    public private(set) var rows: Int
    public var h: [Float], c: [Float]

    /// Zeros: the memory at the start of `rows` episodes.
    public init(layers: Int, hidden: Int, rows: Int) {
        (self.layers, self.hidden, self.rows) = (layers, hidden, rows)
        h = [Float](repeating: 0, count: layers * rows * hidden)
        c = h
    }

    /// Values a row holds: h then c, layer after layer.
    public var rowWidth: Int { 2 * layers * hidden }

    /// Zeroes the rows flagged in `begins` (their next observation begins an episode).
    public mutating func forget(_ begins: [Bool]) {
        precondition(begins.count == rows, "one flag per row")
        for r in 0..<rows where begins[r] {
            for l in 0..<layers {
                let at = (l * rows + r) * hidden
                for j in at..<(at + hidden) { h[j] = 0; c[j] = 0 }
            }
        }
    }

    /// The memory of `indices` only, in that order.
    public func selecting(_ indices: [Int]) -> LSTMMemory {
        var kept = LSTMMemory(layers: layers, hidden: hidden, rows: indices.count)
        for (k, r) in indices.enumerated() { kept.setRow(k, to: row(r)) }
        return kept
    }

    /// Row `r`'s values (`rowWidth` of them).
    public func row(_ r: Int) -> [Float] {
        var values: [Float] = []
        values.reserveCapacity(rowWidth)
        for l in 0..<layers { values += h[((l * rows + r) * hidden)..<((l * rows + r + 1) * hidden)] }
        for l in 0..<layers { values += c[((l * rows + r) * hidden)..<((l * rows + r + 1) * hidden)] }
        return values
    }

    /// Sets row `r` from `values` as `row` gives them.
    public mutating func setRow<C: Collection<Float>>(_ r: Int, to values: C) where C.Index == Int {
        let base = values.startIndex, size = layers * hidden
        for l in 0..<layers {
            for j in 0..<hidden {
                h[(l * rows + r) * hidden + j] = values[base + l * hidden + j]
                c[(l * rows + r) * hidden + j] = values[base + size + l * hidden + j]
            }
        }
    }

    /// The states as the LSTM takes them (no gradient).
    var tensors: (h: Tensor, c: Tensor) {
        (Tensor(h, shape: [layers, rows, hidden]), Tensor(c, shape: [layers, rows, hidden]))
    }

    /// The memory after a step, from the LSTM's final states.
    init(h: Tensor, c: Tensor) {
        (layers, rows, hidden) = (h.shape[0], h.shape[1], h.shape[2])
        self.h = h.data
        self.c = c.data
    }
}

/// sb3-contrib's `MlpLstmPolicy` (`RecurrentActorCriticPolicy`): an LSTM before the actor-critic networks. The actor's
/// LSTM (`lstm_actor`, `n_lstm_layers` × `lstm_hidden_size`) reads the observations; the critic has its own LSTM
/// (`enable_critic_lstm`, `lstm_critic`), or reads the actor's LSTM features without backpropagating into them
/// (`shared_lstm`), or has a plain linear layer instead (`critic`, neither). The features then go through SB3's
/// actor-critic networks (`heads`, an `ActorCriticPolicy` whose input is the LSTM's width: `net_arch`,
/// `activation_fn`, `ortho_init`, the categorical or Gaussian head, gSDE). The LSTMs keep torch's initialization.
///
/// A rollout runs one step at a time from the memory of each environment (`rolloutMemory`), which the collector
/// zeroes where an episode begins; the training pass runs whole sequences from the memories recorded at their first
/// step, backpropagating through time through the core's fused LSTM.
///
/// Parameter names: `lstm_actor.*`, `pi.*`, `log_std`, then `lstm_critic.*` or `critic.*`, and `vf.*`.
public final class RecurrentActorCriticPolicy: Module {
    public let actorLSTM: RecurrentLayer
    public let criticLSTM: RecurrentLayer?
    /// The critic's linear layer when it has no LSTM and does not share the actor's.
    public let criticLinear: Linear?
    public let sharedLSTM: Bool
    /// The actor-critic networks after the LSTMs.
    public let heads: ActorCriticPolicy
    public let observationSize: Int

    /// The actor's and the critic's memory of each training environment.
    public internal(set) var rolloutMemory: (actor: LSTMMemory, critic: LSTMMemory?)
    /// While recording: the memories each rollout step started from, row after row of the rollout (`t · n_envs + e`),
    /// `memoryWidth` values a row.
    private(set) var recordedMemory: [Float] = []
    private var recording = false

    public init(for environment: Environment, kwargs: PolicyKwargs, stateDependentExploration: Bool = false,
                using rng: inout SeededGenerator) throws {
        let outputs = switch environment.actionSpace {
        case let .discrete(n): n
        case let .box(low, _, _): low.count
        }
        observationSize = environment.observationSpace.flatCount
        let hidden = kwargs.lstmHiddenSize, layers = kwargs.lstmLayers
        let sizes = try kwargs.hiddenLayers(inputs: hidden, outputs: outputs)
        sharedLSTM = kwargs.sharedLSTM
        heads = ActorCriticPolicy(observationSize: hidden, actionSpace: environment.actionSpace,
                                  policyLayers: sizes.policy, valueLayers: sizes.value, activation: kwargs.activation,
                                  orthogonalInit: kwargs.orthoInit, logStdInit: kwargs.logStdInit,
                                  stateDependentExploration: stateDependentExploration, using: &rng)
        actorLSTM = LSTM(observationSize, hidden, numLayers: layers, using: &rng)
        criticLSTM = kwargs.criticLSTM ? LSTM(observationSize, hidden, numLayers: layers, using: &rng) : nil
        criticLinear = !kwargs.criticLSTM && !kwargs.sharedLSTM ? Linear(observationSize, hidden, using: &rng) : nil
        rolloutMemory = (LSTMMemory(layers: layers, hidden: hidden, rows: 0), nil)
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] { actorParameters + criticParameters }

    private var actorParameters: [(name: String, tensor: Tensor)] {
        var named = prefixed("lstm_actor", actorLSTM.namedParameters()) + prefixed("pi", heads.policyNet.namedParameters())
        if let logStd = heads.logStd { named.append((name: "log_std", tensor: logStd)) }
        return named
    }

    private var criticParameters: [(name: String, tensor: Tensor)] {
        var named: [(name: String, tensor: Tensor)] = []
        if let criticLSTM { named += prefixed("lstm_critic", criticLSTM.namedParameters()) }
        if let criticLinear { named += prefixed("critic", criticLinear.namedParameters()) }
        return named + prefixed("vf", heads.valueNet.namedParameters())
    }

    /// Where the critic's parameters start in `namedParameters()` (the optimizer's split between the cores).
    public var criticParameterIndex: Int { actorParameters.count }

    /// Zero memories for `rows` sequences of the actor's LSTM (acting needs only the actor's).
    public func emptyMemory(rows: Int) -> LSTMMemory {
        LSTMMemory(layers: actorLSTM.numLayers, hidden: actorLSTM.hiddenSize, rows: rows)
    }

    /// Values recorded per rollout row: the actor's memory, then the critic's.
    public var memoryWidth: Int { emptyMemory(rows: 0).rowWidth * (criticLSTM == nil ? 1 : 2) }

    /// Starts `count` training environments' episodes with empty memories.
    public func beginRollouts(count: Int) {
        rolloutMemory = (emptyMemory(rows: count), criticLSTM == nil ? nil : emptyMemory(rows: count))
    }

    /// Records the memory each following rollout step starts from, until `takeRecordedMemory`.
    package func startRecording() {
        recordedMemory = []
        recording = true
    }

    /// The memories recorded since `startRecording`.
    package func takeRecordedMemory() -> [Float] {
        recording = false
        defer { recordedMemory = [] }
        return recordedMemory
    }

    // MARK: One step for a batch of environments (rollouts, acting)

    /// The LSTM's features `[B, H]` for one observation per row `[B, I]` from `memory`, and the memory after it.
    private static func step(_ lstm: RecurrentLayer, _ observations: Tensor, _ memory: LSTMMemory) -> (Tensor, LSTMMemory) {
        let b = observations.shape[0]
        let (h0, c0) = memory.tensors
        let r = lstm.forward(observations.reshaped([b, 1, observations.shape[1]]), h0: h0, c0: c0)
        return (r.output.reshaped([b, lstm.hiddenSize]), LSTMMemory(h: r.hN, c: r.cN!))
    }

    /// The critic's features for one observation per row: through its LSTM from `memory` (and its memory after the
    /// step), through its linear layer, or (shared) the actor's features `actorFeatures()` without gradient.
    private func criticStep(_ observations: Tensor, memory: LSTMMemory?, actorFeatures: () -> Tensor) -> (Tensor, LSTMMemory?) {
        if let criticLSTM, let memory {
            let (features, next) = Self.step(criticLSTM, observations, memory)
            return (features, next)
        }
        if let criticLinear { return (criticLinear(observations), nil) }
        return (actorFeatures().detached(), nil)
    }

    /// Deterministic or sampled actions `[B, actionSize]` for one observation per row, advancing `memory` (the actor's).
    package func act(_ observations: Tensor, memory: inout LSTMMemory, deterministic: Bool, using rng: inout SeededGenerator) -> Tensor {
        Tensor.withoutGrad {
            let (features, next) = Self.step(actorLSTM, observations, memory)
            memory = next
            return deterministic ? heads.distribution(features).actions(deterministic: true, using: &rng)
                : heads.explore(features, using: &rng).actions
        }
    }

    // MARK: Whole sequences (training)

    /// The features of a minibatch of sequences, `observations [S, T, I]` (each padded at its end to T steps),
    /// starting from the memories `start` (`[layers, S, H]` each), at the valid steps `rows` (indices into the S·T
    /// steps, sequence after sequence): `[rows.count, H]`, differentiable through time.
    private static func sequenceFeatures(_ lstm: RecurrentLayer, _ observations: Tensor, start: LSTMMemory,
                                         rows: [Int]) -> Tensor {
        let (h0, c0) = start.tensors
        let out = lstm.forward(observations, h0: h0, c0: c0).output
        let s = observations.shape[0], t = observations.shape[1], hidden = lstm.hiddenSize
        let flat = out.reshaped([s * t, hidden])
        if rows.count == s * t { return flat }
        return flat.gather(axis: 0, indices: rows.flatMap { [Int](repeating: $0, count: hidden) },
                           indexShape: [rows.count, hidden])
    }

    /// The action distribution at the valid steps `rows` of the sequences `observations` (see `sequenceFeatures`).
    package func distribution(sequences observations: Tensor, start: LSTMMemory, rows: [Int]) -> PolicyDistribution {
        heads.distribution(Self.sequenceFeatures(actorLSTM, observations, start: start, rows: rows))
    }

    /// V at the valid steps `rows` of the sequences `observations`, `[rows.count]`: through the critic's LSTM from
    /// `criticStart`, the actor's LSTM without gradient (shared) from `actorStart`, or the critic's linear layer.
    package func value(sequences observations: Tensor, actorStart: LSTMMemory, criticStart: LSTMMemory?, rows: [Int]) -> Tensor {
        let features: Tensor
        if let criticLSTM, let criticStart {
            features = Self.sequenceFeatures(criticLSTM, observations, start: criticStart, rows: rows)
        } else if let criticLinear {
            let flat = observations.reshaped([observations.shape[0] * observations.shape[1], observationSize])
            let picked = flat.gather(axis: 0, indices: rows.flatMap { [Int](repeating: $0, count: observationSize) },
                                     indexShape: [rows.count, observationSize])
            features = criticLinear(picked)
        } else {
            features = Tensor.withoutGrad { Self.sequenceFeatures(actorLSTM, observations, start: actorStart, rows: rows) }
        }
        return heads.value(features)
    }

    /// The checkpoint's description of the acting network: the actor's LSTM, then the policy network. The LSTM's state
    /// starts at zero with each episode and carries from step to step. The LSTM is described as `torch.nn.LSTM` takes
    /// it: its sizes, its parameters under torch's names, and their gate blocks' order (`gates`, i, f, g, o).
    public var actingDescription: (layers: String, action: String) {
        let lstm = actorLSTM
        var tensors: [String] = []
        for l in 0..<lstm.numLayers {
            for name in ["weight_ih_l\(l)", "weight_hh_l\(l)", "bias_ih_l\(l)", "bias_hh_l\(l)"] {
                tensors.append(#""\#(name)": "lstm_actor.\#(name)""#)
            }
        }
        let description = #"{"type": "lstm", "input_size": \#(lstm.inputSize), "hidden_size": \#(lstm.hiddenSize), "#
            + #""num_layers": \#(lstm.numLayers), "gates": ["i", "f", "g", "o"], \#(tensors.joined(separator: ", "))}"#
        let heads = heads.actingDescription
        return ("[" + description + ", " + heads.layers.dropFirst(), heads.action)
    }
}

extension RecurrentActorCriticPolicy: RolloutPolicy {
    public var actionSize: Int { heads.actionSize }
    public var usesStateDependentExploration: Bool { heads.usesStateDependentExploration }
    public func resetNoise(count: Int, using rng: inout SeededGenerator) { heads.resetNoise(count: count, using: &rng) }
    public func environmentAction(_ raw: UnsafeBufferPointer<Float>) -> Action { heads.environmentAction(raw) }

    /// One step of every environment from its memory (recorded first, while recording); the actor's and the critic's
    /// LSTMs are independent, so with a critic LSTM they run on two cores.
    package func rolloutStep(_ observations: Tensor, using rng: inout SeededGenerator) -> (actions: Tensor, logProbs: Tensor, values: Tensor) {
        if recording {
            let rows = observations.shape[0]
            for e in 0..<rows {
                recordedMemory += rolloutMemory.actor.row(e)
                if let critic = rolloutMemory.critic { recordedMemory += critic.row(e) }
            }
        }
        let memory = rolloutMemory
        // Grad mode is per thread: each half turns it off itself.
        let ((actions, logProbs, actorFeatures, actorNext), (values, criticNext)) = ExecutionPolicy.independently({
            Tensor.withoutGrad { () -> (Tensor, Tensor, Tensor, LSTMMemory) in
                let (features, next) = Self.step(actorLSTM, observations, memory.actor)
                let (a, dist) = heads.explore(features, using: &rng)
                return (a, dist.logProb(a), features, next)
            }
        }, {
            Tensor.withoutGrad { () -> (Tensor?, LSTMMemory?) in
                guard let criticLSTM, let criticMemory = memory.critic else { return (nil, nil) }
                let (features, next) = Self.step(criticLSTM, observations, criticMemory)
                return (heads.value(features), next)
            }
        })
        rolloutMemory = (actorNext, criticNext)
        let v = values ?? Tensor.withoutGrad { heads.value(criticStep(observations, memory: nil) { actorFeatures }.0) }
        return (actions, logProbs, v)
    }

    /// V of the observations after the rollout from the current memories, which stay as they are.
    package func bootstrapValues(_ observations: Tensor) -> [Float] {
        Tensor.withoutGrad {
            let features = criticStep(observations, memory: rolloutMemory.critic) {
                Self.step(actorLSTM, observations, rolloutMemory.actor).0
            }.0
            return heads.value(features).data
        }
    }

    package func episodesBegin(_ begins: [Bool]) {
        rolloutMemory.actor.forget(begins)
        rolloutMemory.critic?.forget(begins)
    }
}
