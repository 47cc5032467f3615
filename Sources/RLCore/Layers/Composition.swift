/// Layers built from layers beyond a chain: a skip connection (ResNet) and branches joined along an axis (Inception).
/// Both pass `setTraining` and buffers on to their children, and name them as torch submodules would.

/// `body(x) + shortcut(x)`, the shortcut the identity unless given (a 1×1 convolution with batch norm when a ResNet
/// block changes the shape). Children are named `body.…` and `shortcut.…`.
public final class Residual: Layer {
    public let body: any Layer
    public let shortcut: (any Layer)?

    public init(_ body: any Layer, shortcut: (any Layer)? = nil) {
        self.body = body
        self.shortcut = shortcut
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = body(x), skip = shortcut?(x) ?? x
        precondition(y.shape == skip.shape, "Residual: body gives \(y.shape) but the shortcut gives \(skip.shape)")
        return y + skip
    }

    var children: [(name: String, layer: any Layer)] {
        [(name: "body", layer: body)] + (shortcut.map { [(name: "shortcut", layer: $0)] } ?? [])
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        children.flatMap { prefixed($0.name, $0.layer.namedParameters()) }
    }

    public func namedBuffers() -> [(name: String, tensor: Tensor)] {
        children.flatMap { prefixed($0.name, $0.layer.namedBuffers()) }
    }

    public func setTraining(_ training: Bool) { for c in children { c.layer.setTraining(training) } }
}

/// Every branch applied to the same input, the outputs concatenated along `axis` (the channel axis 1 by default):
/// an Inception block. Children are named `branches.0.…`, `branches.1.…`.
public final class Parallel: Layer {
    public let branches: [any Layer]
    public let axis: Int

    public init(_ branches: [any Layer], axis: Int = 1) {
        precondition(!branches.isEmpty, "Parallel needs at least one branch")
        self.branches = branches
        self.axis = axis
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.concat(branches.map { $0(x) }, axis: axis) }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        branches.enumerated().flatMap { prefixed("branches.\($0.offset)", $0.element.namedParameters()) }
    }

    public func namedBuffers() -> [(name: String, tensor: Tensor)] {
        branches.enumerated().flatMap { prefixed("branches.\($0.offset)", $0.element.namedBuffers()) }
    }

    public func setTraining(_ training: Bool) { for b in branches { b.setTraining(training) } }
}
