/// The one place where rlbench decides how work runs: which of a network's equivalent executions runs, and where
/// work is cut between the two cores.
///
/// The reference is layer by layer: each of a `Sequential`'s layers an op of the graph, with its own tensor and
/// backward closure. The other executions in this folder compute the same products and activation functions without
/// that bookkeeping (`Tensor.chain`, `Tensor.inferenceChain`, `Tensor.denseArrays`) or share them between the cores
/// by hidden units (`Tensor.splitChain`); `FastPathTests` and `SplitChainTests` hold them to the reference (the same
/// bits, or the same up to the rounding of a sum cut in two). Every choice and every cut here depends only on the
/// sizes, never on timing or on whether the helper core is free, so a run's values are the same on one core or two.
public enum ExecutionPolicy {
    /// The smallest `n · in · out` of a `linear` (or a convolution's lowered product) whose two backward products run
    /// on two cores at once: about a million multiply-adds (a 64 × 256 × 256 DQN layer), where the hand-off costs far
    /// less than it saves.
    public static let parallelBackwardProduct = 1 << 20

    /// The smallest `n · in · out` of a `linear` whose forward product is cut into two halves of output columns
    /// (each a GEMM of its own, on two cores when the helper is free): four million multiply-adds, so a
    /// 64 × 256 × 256 DQN layer is split and PPO's 256 × 64 × 64 layers, already run beside each other, are not.
    public static let splitForwardProduct = 1 << 22

    /// The smallest number of parameter elements whose optimizer update is split over two cores (DQN's 67k-parameter
    /// network, not PPO's 9k one, where the hand-off would cost more than it saves). An actor-critic cuts instead at
    /// its value network (`Optimizer.helperPartition`).
    public static let parallelUpdateElements = 1 << 15

    /// Rows from which an MLP outside a graph runs transposed, through the panel kernel (`Tensor.inferenceChain`);
    /// fewer rows go through `Tensor.denseArrays`.
    public static let transposedInferenceRows = 256

    /// Runs two pieces of work that share no mutable state (an actor's and a critic's passes, each with its own
    /// backward pass), on two cores when the helper is free; the results are the same bits either way (`ForkJoin`).
    public static func independently<A, B>(_ first: () -> A, _ second: () -> B) -> (A, B) {
        ForkJoin.both(first, second)
    }

    /// The smallest batch whose recurrent pass (`Tensor.recurrent`) runs as two halves of samples, one per core: each
    /// half runs the whole sequence on its own rows, so the two meet once per pass rather than once per time step, and
    /// each half's per-step products keep the 16 rows from which they go to the panel kernel (whose values do not
    /// depend on the number of rows), so the halves give the bits of the whole.
    public static let recurrentSplitBatch = 32

    /// The samples `0..<batch` in two halves when `batch` is at least `threshold`, else in one range: a cut decided by
    /// the sizes alone.
    static func halves(of batch: Int, from threshold: Int) -> [Range<Int>] {
        batch >= max(threshold, 2) ? [0..<(batch / 2), (batch / 2)..<batch] : [0..<batch]
    }

    /// The rows of a weight gradient `[outputs, inputs]` (from `rows` input rows) computed alone, without an input
    /// gradient to run beside it (a `linear`'s, or a recurrent layer's W_ih and W_hh together): two halves of the
    /// weight's rows, one per core, when the product has at least `splitForwardProduct` multiply-adds, cut at a
    /// multiple of 16 rows (both products keep the kernels of the whole, which sum each element over the input rows in
    /// the same order whatever the number of weight rows); else one.
    public static func weightGradientParts(rows: Int, inputs: Int, outputs: Int) -> [Range<Int>] {
        guard rows * inputs * outputs >= splitForwardProduct, outputs >= 64 else { return [0..<outputs] }
        let half = (outputs / 2 + 15) / 16 * 16
        return [0..<half, half..<outputs]
    }

    /// Runs `body` over every range of `parts`, the two of a split on two cores (`ForkJoin`).
    static func run(_ parts: [Range<Int>], _ body: (Range<Int>) -> Void) {
        if parts.count == 2 {
            _ = ForkJoin.both({ body(parts[0]) }, { body(parts[1]) })
        } else {
            parts.forEach(body)
        }
    }

    /// A large inference pass (DQN's target network over a replay batch) goes in chunks of rows whose widest layer
    /// holds about this many values (256 KB, within a core's L2 cache), and of at least `transposedInferenceRows`
    /// rows: the rows are cut evenly, so that no chunk is left with a few rows, which `Sequential` would pass through
    /// OpenBLAS (whose small-matrix kernels round differently) instead of its transposed path.
    public static let inferenceChunkValues = 1 << 16

    /// The outputs of a network applied to `rows` independent rows, `pass(chunk)` giving the outputs of the rows in
    /// `chunk`, row after row: the rows are cut into two halves, one per core (the first on this thread), each passed
    /// in chunks (`inferenceChunkValues`) for a network whose widest layer (or input) has `width` values.
    public static func inference(rows: Int, width: Int, _ pass: (Range<Int>) -> [Float]) -> [Float] {
        let chunkRows = max(transposedInferenceRows, inferenceChunkValues / max(width, 1))
        func passInChunks(_ rows: Range<Int>) -> [Float] {
            let chunks = max(1, rows.count / chunkRows)
            return (0..<chunks).flatMap { c in
                pass(rows.lowerBound + rows.count * c / chunks ..< rows.lowerBound + rows.count * (c + 1) / chunks)
            }
        }
        let half = (rows + 1) / 2
        let (first, second) = ForkJoin.both({ passInChunks(0..<half) }, { passInChunks(half..<rows) })
        return first + second
    }

    /// How a `Sequential` runs on an input.
    enum SequentialExecution {
        /// The reference: one op per layer.
        case layerByLayer
        /// In a graph, an MLP of Linear and ReLU/tanh layers as one node.
        case chain([Tensor.ChainStep])
        /// In a graph, an MLP with a narrow input and two wide hidden layers (DQN's), shared by hidden units.
        case splitChain(Tensor.SplitChainLayers)
        /// Outside a graph, Linear layers and activations on plain arrays.
        case arrays
        /// Outside a graph, an MLP on many rows (DQN's target pass), transposed.
        case transposedChain([Tensor.ChainStep])
    }

    /// The execution of `network` on `x`: the fused ones for batches `[n, features]` of dense stacks, else the
    /// reference.
    static func execution(of network: Sequential, on x: Tensor) -> SequentialExecution {
        guard x.rank == 2 else { return .layerByLayer }
        let (rows, inputs) = (x.shape[0], x.shape[1])
        if Tensor.isGradEnabled {
            guard let chain = network.chain else { return .layerByLayer }
            if let split = Tensor.SplitChainLayers(chain, rows: rows, inputs: inputs) { return .splitChain(split) }
            return .chain(chain)
        }
        guard network.isDense else { return .layerByLayer }
        if let chain = network.chain, rows >= transposedInferenceRows { return .transposedChain(chain) }
        return .arrays
    }
}
