import Foundation

/// A Float32 tensor of any rank: contiguous, row-major storage plus an optional place in the autodiff graph.
///
/// Computation is define-by-run: every op on tensors that require gradients records how to send
/// gradients back to its inputs (its backward lives next to its forward, in `Ops/`). Calling
/// `backward()` on a scalar result walks that graph in reverse topological order, accumulates
/// `grad` on every tensor that requires it, and frees the graph.
///
/// Tensors are reference types so that a parameter can be shared by a model, its optimizer and
/// the graphs built from it. Values live in `data`; mutate them in place only outside a graph
/// (optimizer steps, initialization, loading).
public final class Tensor {
    /// The size of each dimension; `[]` is a scalar.
    public let shape: [Int]
    /// The elements in row-major order (`shape.reduce(1, *)` of them).
    public var data: [Float]
    /// The accumulated gradient (same count as `data`), set by `backward()`; nil until then.
    public var grad: [Float]?
    /// Whether gradients flow to this tensor. Parameters set it; op results inherit it from their inputs.
    public var requiresGrad: Bool
    /// An optional label (a parameter's state-dict name), used in error messages.
    public var name: String?

    /// The storage of the gradient that `zeroGrad()` last cleared, which the next gradient written through
    /// `accumulateGrad(writing:)` reuses: the same memory at every step, still in the cache of the core that wrote it,
    /// instead of memory freshly allocated (which the other core may have written last).
    @usableFromInline internal var spareGrad: [Float]?

    /// The inputs this tensor was computed from (empty for leaves and outside a graph).
    @usableFromInline internal var parents: [Tensor] = []
    /// Sends `self.grad` back to `parents`; receives the output tensor itself so the closure holds no cycle.
    @usableFromInline internal var backwardFn: ((Tensor) -> Void)?

    /// A tensor holding `data` with `shape`. The element count must match the shape.
    public init(_ data: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(data.count == shape.reduce(1, *),
                     "\(data.count) values do not fill shape \(shape) (\(shape.reduce(1, *)) elements)")
        self.shape = shape
        self.data = data
        self.requiresGrad = requiresGrad
    }

    /// A rank-0 tensor.
    public convenience init(scalar: Float, requiresGrad: Bool = false) {
        self.init([scalar], shape: [], requiresGrad: requiresGrad)
    }

    /// A 1-D tensor of `values`.
    public convenience init(_ values: [Float]) { self.init(values, shape: [values.count]) }

    /// A 2-D tensor from rows of equal length.
    public convenience init(rows: [[Float]]) {
        let cols = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == cols }, "rows of unequal length")
        self.init(rows.flatMap { $0 }, shape: [rows.count, cols])
    }

    /// A tensor of `shape` filled with `value`.
    public static func full(_ value: Float, shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor([Float](repeating: value, count: shape.reduce(1, *)), shape: shape, requiresGrad: requiresGrad)
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(0, shape: shape, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(1, shape: shape, requiresGrad: requiresGrad)
    }

    /// The number of elements.
    @inlinable public var count: Int { data.count }
    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }
    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(data.count == 1, "item needs a one-element tensor, this one has shape \(shape)")
        return data[0]
    }

    /// A tensor sharing no graph with this one: same values, no gradient flow (PyTorch's `detach`).
    public func detached() -> Tensor { Tensor(data, shape: shape) }

    /// Clears the accumulated gradient (keeping its storage for `accumulateGrad(writing:)`).
    public func zeroGrad() {
        if grad != nil { spareGrad = grad }
        grad = nil
    }

    /// Adds a gradient that `write` computes, overwriting every value of the buffer it gets. Without a gradient yet,
    /// that buffer becomes `grad`: the storage of the gradient `zeroGrad()` last cleared when it has the right size,
    /// else fresh memory. With one, it is a fresh buffer, then added to `grad` as `accumulateGrad(_:)` adds (so the
    /// values are the same either way). Used by backward functions whose gradient comes from one product (a Linear
    /// layer's weight gradient).
    public func accumulateGrad(writing write: (_ buffer: inout [Float]) -> Void) {
        guard requiresGrad else { return }
        var buffer = grad == nil ? spareGrad ?? [] : []
        if grad == nil { spareGrad = nil }
        if buffer.count != data.count { buffer = [Float](unsafeUninitializedCapacity: data.count) { $1 = data.count } }
        write(&buffer)
        accumulateGrad(buffer)
    }

    /// `accumulateGrad(writing:)` for several tensors at once: `body` gets the buffer of each one (valid until it
    /// returns), whose every value it must overwrite. Every tensor must require grad.
    static func accumulateGrads(_ tensors: ArraySlice<Tensor>, buffers: [UnsafeMutablePointer<Float>] = [],
                                _ body: (_ buffers: [UnsafeMutablePointer<Float>]) -> Void) {
        guard let first = tensors.first else { body(buffers); return }
        precondition(first.requiresGrad, "accumulateGrads: a tensor that does not require grad")
        first.accumulateGrad { buffer in
            buffer.withUnsafeMutableBufferPointer { b in
                accumulateGrads(tensors.dropFirst(), buffers: buffers + [b.baseAddress!], body)
            }
        }
    }

    /// Adds `g` into `grad` (creating it on first use). Used by backward functions.
    @inlinable
    public func accumulateGrad(_ g: [Float]) {
        precondition(g.count == data.count, "gradient of \(g.count) values for a tensor of \(data.count)")
        guard requiresGrad else { return }
        if grad == nil {
            grad = g
            spareGrad = nil
        } else {
            grad!.withUnsafeMutableBufferPointer { dst in
                g.withUnsafeBufferPointer { src in
                    for i in 0..<dst.count { dst[i] += src[i] }
                }
            }
        }
    }
}

// MARK: - Graph recording

extension Tensor {
    /// Whether ops record the autodiff graph on this thread (false inside `withoutGrad`).
    @TaskLocal public static var isGradEnabled = true

    /// Runs `body` without recording gradients: results of ops inside do not require grad
    /// (DQN targets, evaluation, a GAN's generator output fed to a discriminator step).
    public static func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
        try $isGradEnabled.withValue(false) { try body() }
    }

    /// The result of an op: records `backward` when any input requires grad and grad mode is on.
    /// `backward` receives the output (whose `grad` is set) and must call `accumulateGrad` on the inputs.
    @inlinable
    public static func result(_ data: [Float], shape: [Int], inputs: [Tensor],
                              backward: @escaping (Tensor) -> Void) -> Tensor {
        let out = Tensor(data, shape: shape)
        if isGradEnabled, inputs.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            out.parents = inputs
            out.backwardFn = backward
        }
        return out
    }

    /// Whether this tensor was produced by a recorded op (as opposed to a leaf).
    public var isLeaf: Bool { backwardFn == nil }

    /// Back-propagates from this scalar: accumulates d(self)/d(x), scaled by `seed`, into `grad` of
    /// every tensor x that requires grad, then frees the graph (intermediate gradients are dropped).
    public func backward(seed: Float = 1) {
        precondition(data.count == 1, "backward() needs a scalar (one element), got shape \(shape); "
                     + "reduce it first (e.g. .mean())")
        backward(gradient: [seed])
    }

    /// Back-propagates with an explicit upstream gradient of the same shape as this tensor.
    public func backward(gradient: [Float]) {
        precondition(gradient.count == data.count, "upstream gradient of \(gradient.count) values for \(shape)")
        guard requiresGrad else { return }
        // Iterative post-order DFS: a topological order without recursion depth limits.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for p in node.parents where p.requiresGrad && !visited.contains(ObjectIdentifier(p)) {
                stack.append((p, false))
            }
        }
        accumulateGrad(gradient)
        for node in order.reversed() {
            guard let fn = node.backwardFn else { continue }
            if node.grad != nil { fn(node) }
            // Free the graph behind us: intermediate results keep neither inputs nor gradients.
            node.backwardFn = nil
            node.parents = []
            node.grad = nil
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = data.prefix(8).map { String(format: "%.4g", Double($0)) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), data: [\(preview)\(data.count > 8 ? ", …" : "")])"
    }
}
