extension Array where Element == Float {
    /// Rows `indices` of this table of rows of `width` values each, copied one after another (a minibatch).
    func rows(_ indices: [Int], width: Int = 1) -> [Float] {
        [Float](unsafeUninitializedCapacity: indices.count * width) { out, count in
            withUnsafeBufferPointer { source in
                for (k, r) in indices.enumerated() {
                    precondition(r >= 0 && (r + 1) * width <= source.count, "row \(r) out of range")
                    (out.baseAddress! + k * width).initialize(from: source.baseAddress! + r * width, count: width)
                }
            }
            count = indices.count * width
        }
    }
}
