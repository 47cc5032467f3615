import Synchronization

/// Float buffers lent to kernels for the length of one call (a convolution's lowered matrices), and kept for the next
/// call instead of freed: a training step lowers the same shapes every time, and memory allocated afresh for each
/// product costs page faults and arrives cold in the cache. The pool holds as many buffers as were ever in use at once
/// (a few per thread), each as large as the largest request it served.
enum Scratch {
    /// A buffer owned by the pool, or by the one call it is lent to.
    private struct Buffer: @unchecked Sendable {
        let memory: UnsafeMutableBufferPointer<Float>
    }

    private static let free = Mutex<[Buffer]>([])

    /// Runs `body` with a buffer of at least `count` floats, uninitialized; it must not escape `body`.
    static func with<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let buffer = take(Swift.max(count, 1))
        defer { free.withLock { $0.append(buffer) } }
        return try body(buffer.memory.baseAddress!)
    }

    /// The smallest free buffer that fits; without one, the largest free buffer is replaced by a new one that fits.
    private static func take(_ count: Int) -> Buffer {
        let spare = free.withLock { buffers -> Buffer? in
            let fitting = buffers.indices.filter { buffers[$0].memory.count >= count }
            if let best = fitting.min(by: { buffers[$0].memory.count < buffers[$1].memory.count }) {
                return buffers.remove(at: best)
            }
            guard let largest = buffers.indices.max(by: { buffers[$0].memory.count < buffers[$1].memory.count }) else {
                return nil
            }
            return buffers.remove(at: largest)
        }
        if let spare, spare.memory.count >= count { return spare }
        spare?.memory.deallocate()
        return Buffer(memory: .allocate(capacity: count))
    }
}
