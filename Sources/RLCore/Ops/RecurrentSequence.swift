import CKernels

/// The cells of `torch.nn.RNN` (tanh), `LSTM` and `GRU`, with PyTorch's gate order in the weight rows.
public enum RecurrentCell: String, Sendable, CaseIterable {
    case rnnTanh = "rnn_tanh", lstm, gru

    /// The number of gate blocks of `hidden` rows in the weights: LSTM i, f, g, o; GRU r, z, n; one for the RNN.
    public var gateCount: Int {
        switch self {
        case .rnnTanh: 1
        case .lstm: 4
        case .gru: 3
        }
    }

    /// The torch class name, for messages.
    public var layerName: String {
        switch self {
        case .rnnTanh: "RNN"
        case .lstm: "LSTM"
        case .gru: "GRU"
        }
    }

    /// Values kept per hidden unit and time step for the backward pass: the LSTM's gates i, f, g, o, its cell c and
    /// tanh(c); the GRU's r, z, n and the hidden term of n (W_hn h + b_hn). The RNN needs only its output.
    var cacheWidth: Int {
        switch self {
        case .rnnTanh: 0
        case .lstm: 6
        case .gru: 4
        }
    }
}

/// One recurrent layer over a whole sequence as a single graph node, with backpropagation through time written by
/// hand. Each step adds one `[B, H] · W_hhᵀ` product to the input projection `x W_ihᵀ + b_ih` (computed up front for
/// every step) and does its gate arithmetic on raw buffers (the LSTM's in one fused C pass, `rl_lstm_forward`),
/// instead of a dozen graph ops per step. In the backward pass the per-step work is the gate derivatives (for the LSTM
/// one pass, `rl_lstm_backward`) and `dh_{t-1} += dHP_t · W_hh`; the weight gradients of all steps come from one
/// product each at the end. A large batch runs as two halves of samples, one per core, each over the whole sequence
/// (`ExecutionPolicy.recurrentSplitBatch`), its input projection included, and the weight gradients as two halves of
/// their rows; both cuts give the values of the uncut pass. The test suite holds it to the same cell written with
/// ordinary tensor ops.
extension Tensor {
    /// Runs `cell` over `x [B, T, I]` (batch first) from `h0`/`c0 [B, H]` (zeros when nil; `c0` only for the LSTM),
    /// with `weightIH [G·H, I]`, `weightHH [G·H, H]` and optional biases `[G·H]`. Returns the hidden states
    /// `output [B, T, H]`, the last hidden state `hN [B, H]` (a slice of `output`) and, for the LSTM, the last cell
    /// state `cN [B, H]`. Sigmoids are computed as 0.5 + 0.5·tanh(x/2) with the vectorized `rl_tanh`.
    public static func recurrent(_ cell: RecurrentCell, input x: Tensor, h0: Tensor? = nil, c0: Tensor? = nil,
                                 weightIH: Tensor, weightHH: Tensor, biasIH: Tensor?, biasHH: Tensor?)
        -> (output: Tensor, hN: Tensor, cN: Tensor?) {
        let name = cell.layerName
        precondition(x.rank == 3, "\(name): input must be [batch, time, features], got \(x.shape)")
        let batch = x.shape[0], steps = x.shape[1], hidden = weightHH.shape.last ?? 0, gates = cell.gateCount * hidden
        // fatalError, not precondition: its message is printed in release builds too.
        if steps == 0 { fatalError("\(name): a sequence of length 0 (input \(x.shape)); the layer needs at least one time step") }
        precondition(batch >= 1, "\(name): an empty batch (input \(x.shape))")
        precondition(weightHH.shape == [gates, hidden] && weightIH.shape == [gates, x.shape[2]],
                     "\(name): weights \(weightIH.shape), \(weightHH.shape) do not fit input \(x.shape) and \(cell.gateCount) gate blocks")
        for b in [biasIH, biasHH].compactMap({ $0 }) { precondition(b.shape == [gates], "\(name): bias \(b.shape), expected [\(gates)]") }
        for s in [h0, c0].compactMap({ $0 }) {
            precondition(s.shape == [batch, hidden], "\(name): initial state \(s.shape), expected [\(batch), \(hidden)]")
        }
        precondition(c0 == nil || cell == .lstm, "\(name): only the LSTM has a cell state c0")

        let pass = RecurrentPass(cell: cell, batch: batch, steps: steps, hidden: hidden)
        let rows = batch * steps
        let initialH = h0?.data ?? [Float](repeating: 0, count: batch * hidden)
        let initialC = c0?.data ?? [Float](repeating: 0, count: cell == .lstm ? batch * hidden : 0)
        // Both written whole by the forward loop. `states`: the hidden states of every step, then (LSTM) the last cell
        // state.
        let (cacheCount, stateCount) = (steps * batch * cell.cacheWidth * hidden, rows * hidden + (cell == .lstm ? batch * hidden : 0))
        var cache = [Float](unsafeUninitializedCapacity: cacheCount) { $1 = cacheCount }
        var states = [Float](unsafeUninitializedCapacity: stateCount) { $1 = stateCount }
        pass.forward(input: x.data, weightIH: weightIH.data, weightHH: weightHH.data, biasIH: biasIH?.data,
                     biasHH: biasHH?.data, h0: initialH, c0: initialC, states: &states, cache: &cache)

        let kept = cache
        let inputs = [x, weightIH, weightHH] + [biasIH, biasHH, h0, c0].compactMap { $0 }
        let node = result(states, shape: cell == .lstm ? [states.count] : [batch, steps, hidden], inputs: inputs) { out in
            let grads = pass.backward(out.grad!, states: out.data, cache: kept, weightHH: weightHH.data, h0: initialH,
                                      c0: initialC, needInitialState: h0?.requiresGrad == true || c0?.requiresGrad == true)
            pass.accumulateWeightGradients(grads, input: x.data, weightIH: weightIH, weightHH: weightHH)
            if x.requiresGrad { x.accumulateGrad(pass.inputGradient(grads.projected, weightIH: weightIH.data)) }
            // The biases' gradients: the column sums of the projections' gradients, one pass for both biases but the
            // GRU's (whose hidden projection has a gradient of its own).
            let biasGradient = RecurrentPass.columnSums(grads.projected, rows: rows)
            biasIH?.accumulateGrad(biasGradient)
            biasHH?.accumulateGrad(cell == .gru ? RecurrentPass.columnSums(grads.hiddenProjected, rows: rows) : biasGradient)
            h0?.accumulateGrad(grads.h0)
            c0?.accumulateGrad(grads.c0)
        }
        let output = cell == .lstm ? node.sliced(axis: 0, 0..<(rows * hidden)).reshaped([batch, steps, hidden]) : node
        let cN = cell == .lstm ? node.sliced(axis: 0, (rows * hidden)..<states.count).reshaped([batch, hidden]) : nil
        return (output, output.sliced(axis: 1, (steps - 1)..<steps).reshaped([batch, hidden]), cN)
    }
}

/// The sizes of one recurrent pass and its forward and backward loops. Layouts: `projected`, `states` and their
/// gradients are batch-first (row `b·T + t`), so step t's rows are strided by T rows; `cache` is time-major
/// (`[T, B, cacheWidth·H]`), each step's values contiguous. Both loops run on a range of samples at a time, which reads
/// and writes only those samples' rows: the two halves of a split batch run at once (`ExecutionPolicy.run`).
struct RecurrentPass {
    let cell: RecurrentCell
    let batch: Int, steps: Int, hidden: Int
    var gates: Int { cell.gateCount * hidden }
    var width: Int { cell.cacheWidth * hidden }
    /// The samples in one range, or two halves for the two cores.
    var parts: [Range<Int>] { ExecutionPolicy.halves(of: batch, from: ExecutionPolicy.recurrentSplitBatch) }

    /// σ(x) = 0.5 + 0.5·tanh(x/2) over `n` values in place, through the vectorized tanh kernel.
    @inline(__always)
    static func sigmoidInPlace(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { p[i] *= 0.5 }
        rl_tanh(p, p, n)
        for i in 0..<n { p[i] = 0.5 + 0.5 * p[i] }
    }

    /// `w [rows, columns]` transposed, `[columns, rows]`, in tiles of 16 × 16: a whole row or column at a time would
    /// touch lines 2 KB apart (W_hh's 512 rows), which share a few L1 sets and evict each other.
    static func transposed(_ w: [Float], rows: Int, columns: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * columns) { t, count in
            w.withUnsafeBufferPointer { w in
                guard let (w, t) = w.baseAddress.flatMap({ w in t.baseAddress.map { (w, $0) } }) else { return }
                for r0 in stride(from: 0, to: rows, by: 16) {
                    for c0 in stride(from: 0, to: columns, by: 16) {
                        for r in r0..<min(r0 + 16, rows) {
                            for c in c0..<min(c0 + 16, columns) { t[c &* rows &+ r] = w[r &* columns &+ c] }
                        }
                    }
                }
            }
            count = rows * columns
        }
    }

    /// Σ over the rows of `g [rows, G·H]`, each column's rows added in order (`rl_column_sums`).
    static func columnSums(_ g: [Float], rows: Int) -> [Float] {
        let columns = g.count / max(rows, 1)
        return [Float](unsafeUninitializedCapacity: columns) { sums, count in
            g.withUnsafeBufferPointer { rl_column_sums($0.baseAddress!, rows, columns, sums.baseAddress!) }
            count = columns
        }
    }

    func forward(input x: [Float], weightIH: [Float], weightHH: [Float], biasIH: [Float]?, biasHH: [Float]?,
                 h0: [Float], c0: [Float], states: inout [Float], cache: inout [Float]) {
        let (H, GH, I) = (hidden, gates, x.count / (batch * steps))
        // W_ihᵀ [I, G·H] and W_hhᵀ [H, G·H], so that the products read their right operands as stored (the panel
        // kernel's case).
        let (wihT, whhT) = (Self.transposed(weightIH, rows: GH, columns: I), Self.transposed(weightHH, rows: GH, columns: H))
        let zeros = [Float](repeating: 0, count: biasIH == nil || biasHH == nil ? GH : 0)
        // The input projection of every step, x W_ihᵀ + b_ih (batch-first, like x), made by each range for its samples.
        var projected = [Float](unsafeUninitializedCapacity: batch * steps * GH) { $1 = batch * steps * GH }
        x.withUnsafeBufferPointer { x in
        wihT.withUnsafeBufferPointer { wihT in
        whhT.withUnsafeBufferPointer { whhT in
        (biasIH ?? zeros).withUnsafeBufferPointer { bih in
        (biasHH ?? zeros).withUnsafeBufferPointer { bhh in
        h0.withUnsafeBufferPointer { h0 in
        c0.withUnsafeBufferPointer { c0 in
        projected.withUnsafeMutableBufferPointer { xp in
        states.withUnsafeMutableBufferPointer { states in
        cache.withUnsafeMutableBufferPointer { cache in
            let buffers = ForwardBuffers(input: x.baseAddress!, inputs: I, weightIHT: wihT.baseAddress!,
                                         weightHHT: whhT.baseAddress!, biasIH: bih.baseAddress!, biasHH: bhh.baseAddress!,
                                         h0: h0.baseAddress!, c0: c0.baseAddress, projected: xp.baseAddress!,
                                         states: states.baseAddress!, cache: cache.baseAddress)
            ExecutionPolicy.run(parts) { forward($0, buffers) }
        } } } } } } } } } }
    }

    /// The buffers of the forward loop, whole-batch layouts as in `forward`.
    private struct ForwardBuffers {
        let input: UnsafePointer<Float>, inputs: Int, weightIHT: UnsafePointer<Float>, weightHHT: UnsafePointer<Float>
        let biasIH: UnsafePointer<Float>, biasHH: UnsafePointer<Float>, h0: UnsafePointer<Float>, c0: UnsafePointer<Float>?
        let projected: UnsafeMutablePointer<Float>, states: UnsafeMutablePointer<Float>, cache: UnsafeMutablePointer<Float>?
    }

    /// The forward loop over time for the samples `samples` (their rows of `projected`, `states` and `cache` only).
    private func forward(_ samples: Range<Int>, _ buffers: ForwardBuffers) {
        let (B, T, H, GH, W, I) = (batch, steps, hidden, gates, width, buffers.inputs)
        let first = samples.lowerBound, count = samples.count
        let (wT, bias, h0, c0, out, cache) = (buffers.weightHHT, buffers.biasHH, buffers.h0, buffers.c0, buffers.states,
                                              buffers.cache)
        // The samples' input projections: their T·count rows, from b_ih plus the product.
        let xp = buffers.projected
        for row in (first * T)..<((first + count) * T) { (xp + row * GH).update(from: buffers.biasIH, count: GH) }
        Gemm.multiply(transA: false, transB: false, m: count * T, n: GH, k: I, alpha: 1, a: buffers.input + first * T * I,
                      lda: I, b: buffers.weightIHT, ldb: GH, beta: 1, c: xp + first * T * GH, ldc: GH)
        // hp = b_hh + h_{t-1} W_hhᵀ for the samples of the range, row b − first for sample b.
        let hp = UnsafeMutablePointer<Float>.allocate(capacity: count * GH)
        defer { hp.deallocate() }
        for t in 0..<T {
            for r in 0..<count { (hp + r * GH).update(from: bias, count: GH) }
            // h_{t-1}: the rows of step t-1 in `states` (or h0).
            Gemm.multiply(transA: false, transB: false, m: count, n: GH, k: H, alpha: 1,
                          a: t == 0 ? h0 + first * H : UnsafePointer(out + (first * T + t - 1) * H), lda: t == 0 ? H : T * H,
                          b: wT, ldb: GH, beta: 1, c: hp, ldc: GH)
            // Step t's rows: sample b's in `projected` and `states` at b·T + t, in `cache` at t·B + b.
            let x = xp + (first * T + t) * GH, y = out + (first * T + t) * H
            switch cell {
            case .rnnTanh:
                for r in 0..<count {
                    let (x, h, y) = (x + r * T * GH, hp + r * GH, y + r * T * H)
                    for j in 0..<H { y[j] = x[j] + h[j] }
                    rl_tanh(y, y, H)
                }
            case .lstm:
                // All the range's samples in one pass of the fused kernel; c_{t-1} is in the previous step's cache.
                let v = cache! + (t * B + first) * W
                let (cPrev, cPrevStride) = t == 0 ? (c0! + first * H, H) : (UnsafePointer(v - B * W + 4 * H), W)
                rl_lstm_forward(count, H, x, T * GH, hp, GH, cPrev, cPrevStride, v, W, y, T * H)
                if t == T - 1 {
                    for r in 0..<count { (out + B * T * H + (first + r) * H).update(from: v + r * W + 4 * H, count: H) }
                }
            case .gru:
                for r in 0..<count {
                    let (x, h, y, v) = (x + r * T * GH, hp + r * GH, y + r * T * H, cache! + (t * B + first + r) * W)
                    let hPrev: UnsafePointer<Float> = t == 0 ? h0 + (first + r) * H : UnsafePointer(y - H)
                    for j in 0..<(2 * H) { v[j] = x[j] + h[j] }
                    RecurrentPass.sigmoidInPlace(v, 2 * H)
                    for j in 0..<H {
                        v[3 * H + j] = h[2 * H + j]
                        v[2 * H + j] = x[2 * H + j] + v[j] * h[2 * H + j]
                    }
                    rl_tanh(v + 2 * H, v + 2 * H, H)
                    for j in 0..<H { let z = v[H + j]; y[j] = (1 - z) * v[2 * H + j] + z * hPrev[j] }
                }
            }
        }
    }

    /// The gradients of one pass: of the input projection `projected` and hidden projection `hiddenProjected` (both
    /// `[B·T, G·H]`, the same values except for the GRU's n block), the hidden state before each step
    /// (`previousStates [B·T, H]`, the right operand of W_hh's gradient), and of h0 and c0.
    struct Gradients {
        var projected: [Float], hiddenProjected: [Float], previousStates: [Float], h0: [Float], c0: [Float]
    }

    /// Adds the weights' gradients, gᵀx for W_ih and g_hᵀ h_prev for W_hh summed over all B·T rows, to those that
    /// require grad. Through the panel kernel whatever the number of rows (`Gemm.multiply` sends more than 256 to
    /// OpenBLAS, whose packing of g costs a quarter of the arithmetic here), each element one sum over the rows in
    /// order; both products cut into the same halves of gate rows, one per core, at one hand-off.
    func accumulateWeightGradients(_ grads: Gradients, input x: [Float], weightIH: Tensor, weightHH: Tensor) {
        guard weightIH.requiresGrad || weightHH.requiresGrad else { return }
        let (rows, GH, H, I) = (batch * steps, gates, hidden, x.count / (batch * steps))
        // Written whole for a weight that requires grad (the other one's is not used).
        var dIH = [Float](unsafeUninitializedCapacity: GH * I) { $1 = GH * I }
        var dHH = [Float](unsafeUninitializedCapacity: GH * H) { $1 = GH * H }
        grads.projected.withUnsafeBufferPointer { g in
        grads.hiddenProjected.withUnsafeBufferPointer { gh in
        grads.previousStates.withUnsafeBufferPointer { previous in
        x.withUnsafeBufferPointer { x in
        dIH.withUnsafeMutableBufferPointer { dIH in
        dHH.withUnsafeMutableBufferPointer { dHH in
            let parts = ExecutionPolicy.weightGradientParts(rows: rows, inputs: I + H, outputs: GH)
            ExecutionPolicy.run(parts) { units in
                let first = units.lowerBound
                if weightIH.requiresGrad && I > 0 {
                    Gemm.panel(transA: true, m: units.count, n: I, k: rows, a: g.baseAddress! + first, lda: GH,
                               b: x.baseAddress!, ldb: I, c: dIH.baseAddress! + first * I, ldc: I)
                }
                if weightHH.requiresGrad {
                    Gemm.panel(transA: true, m: units.count, n: H, k: rows, a: gh.baseAddress! + first, lda: GH,
                               b: previous.baseAddress!, ldb: H, c: dHH.baseAddress! + first * H, ldc: H)
                }
            }
        } } } } } }
        weightIH.accumulateGrad(dIH)
        weightHH.accumulateGrad(dHH)
    }

    /// dL/dx = g W_ih `[B·T, I]`, each range of samples' rows on its core.
    func inputGradient(_ g: [Float], weightIH: [Float]) -> [Float] {
        let (T, GH, I) = (steps, gates, weightIH.count / gates)
        guard I > 0 else { return [] }
        var dx = [Float](unsafeUninitializedCapacity: batch * T * I) { $1 = batch * T * I }  // beta 0 overwrites it
        g.withUnsafeBufferPointer { g in
        weightIH.withUnsafeBufferPointer { w in
        dx.withUnsafeMutableBufferPointer { dx in
            ExecutionPolicy.run(parts) { samples in
                let first = samples.lowerBound * T
                Gemm.multiply(transA: false, transB: false, m: samples.count * T, n: I, k: GH, alpha: 1,
                              a: g.baseAddress! + first * GH, lda: GH, b: w.baseAddress!, ldb: I, beta: 0,
                              c: dx.baseAddress! + first * I, ldc: I)
            }
        } } }
        return dx
    }

    func backward(_ upstream: [Float], states: [Float], cache: [Float], weightHH: [Float], h0: [Float], c0: [Float],
                  needInitialState: Bool) -> Gradients {
        let (B, T, H, GH) = (batch, steps, hidden, gates)
        // Sample b's rows: h0, then its states of steps 0 ..< T − 1.
        let previous = [Float](unsafeUninitializedCapacity: B * T * H) { p, count in
            let p = p.baseAddress!
            for b in 0..<B {
                h0.withUnsafeBufferPointer { (p + b * T * H).initialize(from: $0.baseAddress! + b * H, count: H) }
                states.withUnsafeBufferPointer {
                    (p + (b * T + 1) * H).initialize(from: $0.baseAddress! + b * T * H, count: (T - 1) * H)
                }
            }
            count = B * T * H
        }
        // Both written whole by the backward loop.
        let (gradientCount, gruCount) = (B * T * GH, cell == .gru ? B * T * GH : 0)
        var dProjected = [Float](unsafeUninitializedCapacity: gradientCount) { $1 = gradientCount }
        var dHidden = [Float](unsafeUninitializedCapacity: gruCount) { $1 = gruCount }
        // The gradient reaching h_t (and c_t) from later steps, carried backwards; it ends as dh0 (dc0).
        var dh = [Float](repeating: 0, count: B * H)
        var dc = cell == .lstm ? Array(upstream[(B * T * H)...]) : []
        upstream.withUnsafeBufferPointer { g in
        states.withUnsafeBufferPointer { states in
        cache.withUnsafeBufferPointer { cache in
        weightHH.withUnsafeBufferPointer { whh in
        c0.withUnsafeBufferPointer { c0 in
        previous.withUnsafeBufferPointer { previous in
        dProjected.withUnsafeMutableBufferPointer { dxp in
        dHidden.withUnsafeMutableBufferPointer { dhpGRU in
        dh.withUnsafeMutableBufferPointer { dh in
        dc.withUnsafeMutableBufferPointer { dc in
            let buffers = BackwardBuffers(upstream: g.baseAddress!, states: states.baseAddress!, cache: cache.baseAddress,
                                          weightHH: whh.baseAddress!, c0: c0.baseAddress, previous: previous.baseAddress!,
                                          dProjected: dxp.baseAddress!, dHiddenGRU: dhpGRU.baseAddress,
                                          dh: dh.baseAddress!, dc: dc.baseAddress)
            ExecutionPolicy.run(parts) { backward($0, buffers, needInitialState: needInitialState) }
        } } } } } } } } } }
        return Gradients(projected: dProjected, hiddenProjected: cell == .gru ? dHidden : dProjected,
                         previousStates: previous, h0: dh, c0: dc)
    }

    /// The buffers of the backward loop, whole-batch layouts as in `backward`.
    private struct BackwardBuffers {
        let upstream: UnsafePointer<Float>, states: UnsafePointer<Float>, cache: UnsafePointer<Float>?
        let weightHH: UnsafePointer<Float>, c0: UnsafePointer<Float>?, previous: UnsafePointer<Float>
        let dProjected: UnsafeMutablePointer<Float>, dHiddenGRU: UnsafeMutablePointer<Float>?
        let dh: UnsafeMutablePointer<Float>, dc: UnsafeMutablePointer<Float>?
    }

    /// The backward loop over time for the samples `samples` (their rows of every buffer only).
    private func backward(_ samples: Range<Int>, _ buffers: BackwardBuffers, needInitialState: Bool) {
        let (B, T, H, GH, W) = (batch, steps, hidden, gates, width)
        let g = buffers.upstream, out = buffers.states, dxp = buffers.dProjected, dh = buffers.dh
        let cache = buffers.cache, c0 = buffers.c0, dc = buffers.dc, hPrevAll = buffers.previous
        // The LSTM and RNN send the same pre-activation gradient to both projections.
        let dhp = cell == .gru ? buffers.dHiddenGRU! : dxp
        let first = samples.lowerBound, count = samples.count
        for t in stride(from: T - 1, through: 0, by: -1) {
            // Step t's rows: sample b's in the batch-first buffers at b·T + t, in `cache` at t·B + b.
            let up = g + (first * T + t) * H, dx = dxp + (first * T + t) * GH, carry = dh + first * H
            switch cell {
            case .rnnTanh:
                for r in 0..<count {
                    let (up, dx, carry, y) = (up + r * T * H, dx + r * T * GH, carry + r * H, out + ((first + r) * T + t) * H)
                    for j in 0..<H { dx[j] = (up[j] + carry[j]) * (1 - y[j] * y[j]); carry[j] = 0 }
                }
            case .lstm:
                // All the range's samples in one pass of the fused kernel; c_{t-1} is in the previous step's cache.
                let v = cache! + (t * B + first) * W
                let (cPrev, cPrevStride) = t == 0 ? (c0! + first * H, H) : (v - B * W + 4 * H, W)
                rl_lstm_backward(count, H, up, T * H, carry, H, v, W, cPrev, cPrevStride, dc! + first * H, H, dx, T * GH)
            case .gru:
                for row in 0..<count {
                    let k = (first + row) * T + t
                    let (up, dx, carry, v) = (up + row * T * H, dx + row * T * GH, carry + row * H, cache! + (t * B + first + row) * W)
                    let dhh = dhp + k * GH, hPrev = hPrevAll + k * H
                    for j in 0..<H {
                        let r = v[j], z = v[H + j], n = v[2 * H + j], hn = v[3 * H + j]
                        let dhj = up[j] + carry[j]
                        let dn = dhj * (1 - z) * (1 - n * n)
                        let dz = dhj * (hPrev[j] - n) * z * (1 - z)
                        let dr = dn * hn * r * (1 - r)
                        dx[j] = dr; dx[H + j] = dz; dx[2 * H + j] = dn
                        dhh[j] = dr; dhh[H + j] = dz; dhh[2 * H + j] = dn * r
                        carry[j] = dhj * z
                    }
                }
            }
            // dh_{t-1} += dHP_t W_hh (not needed before the first step unless h0 is differentiated), in slices of
            // the gate rows short enough for the panel kernel (`Gemm.panelDepths`), which reads W_hh in place
            // instead of packing it again at every step.
            if t > 0 || needInitialState {
                let slices = (GH + 255) / 256, depth = (GH + slices - 1) / slices
                for start in stride(from: 0, to: GH, by: depth) {
                    Gemm.multiply(transA: false, transB: false, m: count, n: H, k: min(depth, GH - start), alpha: 1,
                                  a: dhp + (first * T + t) * GH + start, lda: T * GH, b: buffers.weightHH + start * H,
                                  ldb: H, beta: 1, c: dh + first * H, ldc: H)
                }
            }
        }
    }
}
