import Synchronization

/// A thread-safe mailbox that keeps only the newest value: a producer (the training thread) `publish`es without
/// ever waiting for the consumer (the window), and the consumer reads the latest value without waiting for the
/// producer. Older values are simply replaced. The lock is held only to swap a reference, never while drawing
/// or training.
///
/// ```swift
/// let status = LatestValue<ViewerStatus>()
/// // training thread:
/// status.publish(ViewerStatus(step: step, episode: episodes))
/// // window thread:
/// if let s = status.latest { ... }
/// ```
public final class LatestValue<Value: Sendable>: Sendable {
    private let state: Mutex<(value: Value?, version: UInt64)>

    /// A mailbox holding `initial` (or nothing).
    public init(_ initial: Value? = nil) {
        state = Mutex((initial, initial == nil ? 0 : 1))
    }

    /// Replaces the held value.
    public func publish(_ value: Value) {
        state.withLock { $0 = (value, $0.version &+ 1) }
    }

    /// The newest value, or nil if nothing was published yet.
    public var latest: Value? { state.withLock { $0.value } }

    /// How many values were published (including the initial one); it grows with every `publish`.
    public var version: UInt64 { state.withLock { $0.version } }

    /// The newest value if it is newer than `seen`, updating `seen`; nil when nothing new arrived.
    public func takeIfNewer(than seen: inout UInt64) -> Value? {
        let (value, version) = state.withLock { ($0.value, $0.version) }
        guard version != seen, let value else { return nil }
        seen = version
        return value
    }
}
