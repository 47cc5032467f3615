/// Something that owns named parameters: a layer, a network, a policy.
///
/// Names follow PyTorch's state_dict style (`weight`, `0.bias`, `encoder.fc1.weight`) and are the
/// one identity of a parameter: optimizer state, freezing and checkpoints all key on them.
public protocol Module: AnyObject {
    /// The trainable tensors, named relative to this module, in registration order.
    func namedParameters() -> [(name: String, tensor: Tensor)]
    /// Non-trainable state that checkpoints keep (BatchNorm's running statistics). Default: none.
    func namedBuffers() -> [(name: String, tensor: Tensor)]
    /// Switches between training and evaluation behaviour (Dropout, BatchNorm). Default: nothing to switch.
    func setTraining(_ training: Bool)
}

extension Module {
    public func namedBuffers() -> [(name: String, tensor: Tensor)] { [] }
    public func setTraining(_ training: Bool) {}

    /// The trainable tensors in registration order.
    public var parameters: [Tensor] { namedParameters().map(\.tensor) }

    /// Parameters then buffers, by name, in order: what a checkpoint stores.
    public func stateDict() -> [(name: String, tensor: Tensor)] { namedParameters() + namedBuffers() }

    /// The total number of trainable scalars.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.tensor.count } }

    /// Training mode everywhere below this module (`setTraining(true)`), as torch's `module.train()`.
    public func train() { setTraining(true) }

    /// Evaluation mode everywhere below this module (`setTraining(false)`: Dropout off, BatchNorm on its running
    /// statistics), as torch's `module.eval()`.
    public func eval() { setTraining(false) }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for (_, p) in namedParameters() { p.zeroGrad() } }

    /// Copies every parameter and buffer value from `other`, which must have the same names and shapes
    /// (DQN's hard target update).
    public func copyValues(from other: Module) {
        let source = Dictionary(other.stateDict().map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (name, t) in stateDict() {
            guard let s = source[name], s.shape == t.shape else {
                preconditionFailure("copyValues: '\(name)' missing or mis-shaped in the source module")
            }
            t.data = s.data
        }
    }
}

/// A module that maps one tensor to one tensor (Linear, activations, Sequential, ...).
public protocol Layer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// Prefixes child names: `prefix("encoder", [("fc1.weight", t)])` → `[("encoder.fc1.weight", t)]`.
public func prefixed(_ prefix: String, _ named: [(name: String, tensor: Tensor)]) -> [(name: String, tensor: Tensor)] {
    named.map { (name: "\(prefix).\($0.name)", tensor: $0.tensor) }
}
