import CKernels
import Foundation
import RLCore
import SeededRandom
import Testing

/// The C kernels: the element-wise ones accurate, their AVX-512, AVX2 and portable versions giving the same bits; the
/// thin products summing exactly as specified. Serialized: the instruction-set limit its tests set and restore is
/// process-wide, and two of them interleaved could restore each other's limit (leaving the rest of the run on the
/// portable kernels, which are correct but slow).
@Suite(.serialized) struct KernelTests {
    /// Random values over tanh's whole interesting range, then the edges: the clamp at ±7.9053, the |x| < 4e-4
    /// pass-through, signed zeros, subnormals, infinities and NaN.
    func inputs(count: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        var x = (0..<count).map { _ in Float.random(in: -12...12, using: &rng) }
        x += (0..<count / 4).map { _ in Float.random(in: -0.001...0.001, using: &rng) }
        x += [0, -0, 0.0004, -0.0004, (0.0004 as Float).nextUp, (-0.0004 as Float).nextDown, 7.90531110763549805, -7.90531110763549805,
              8, -8, 1e30, -1e30, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .infinity, -.infinity, .nan]
        return x
    }

    /// Runs `body` with each instruction set of the element-wise kernels this CPU has (portable first, then AVX2,
    /// then AVX-512) and returns the results in that order.
    func everyPath<T>(_ body: () -> T) -> [T] {
        let previous = rl_kernels_level()
        defer { rl_kernels_limit(previous) }
        return (0...Int32(rl_cpu_vector_level())).map { level in
            rl_kernels_limit(level)
            return body()
        }
    }

    /// Whether every path's result has the bits of the portable one.
    func sameBits(_ results: [[Float]]) -> Bool { results.allSatisfy { bits($0) == bits(results[0]) } }

    func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    @Test func tanhIsWithinTwoMillionthsOfLibm() {
        let x = inputs(count: 20_000, seed: 1).filter { !$0.isNaN }
        var y = [Float](repeating: 0, count: x.count)
        rl_tanh(x, &y, x.count)
        var worst: Double = 0
        for (a, b) in zip(x, y) { worst = max(worst, abs(Double(b) - Foundation.tanh(Double(a)))) }
        #expect(worst < 2e-6, "largest error \(worst)")
        var nan = [Float](repeating: 0, count: 1)
        rl_tanh([Float.nan], &nan, 1)
        #expect(nan[0].isNaN)
    }

    @Test(.enabled(if: KernelTests.cpuHasAVX2, "the CPU has no AVX2: there is one path only"))
    func everyPathAgreesBitForBit() {
        // Every length up to 36 exercises the partial last group of eight or sixteen; the long inputs the vector loops,
        // the last of them with the edge cases at its end (in vector lanes and in the tail).
        let lengths = Array(1...36) + [4099, 4111]
        for x in lengths.map({ Array(inputs(count: 4096, seed: UInt64($0)).prefix($0)) }) + [inputs(count: 4096, seed: 99)] {
            let count = x.count
            let g = x.reversed().map { $0 * 0.5 }
            let forward = everyPath { () -> [Float] in
                var y = [Float](repeating: 0, count: count)
                rl_tanh(x, &y, count)
                return y
            }
            #expect(sameBits(forward), "tanh, \(count) values")
            let backward = everyPath { () -> [Float] in
                var out = [Float](repeating: 0, count: count)
                rl_tanh_backward(g, forward[0], &out, count)
                return out
            }
            #expect(sameBits(backward), "tanh backward, \(count) values")
            let relu = everyPath { () -> [Float] in
                var y = [Float](repeating: 0, count: count), out = [Float](repeating: 0, count: count)
                rl_relu(x, &y, count)
                rl_relu_backward(g, x, &out, count)
                return y + out
            }
            #expect(sameBits(relu), "relu and its backward, \(count) values")
            let adam = everyPath { () -> [Float] in
                var w = x.map { $0.isFinite ? $0 : 1 }, m = g.map { $0.isFinite ? $0 * 0.1 : 0 }
                var v = m.map { $0 * $0 }
                let grad = g.map { $0.isFinite ? $0 : 0 }
                for _ in 0..<3 {
                    rl_adam(&w, grad, &m, &v, count, 0.01, 0.9, 0.1, 0.999, 0.001, 1e-3, 1.02, 1e-8)
                }
                return w + m + v
            }
            #expect(sameBits(adam), "adam, \(count) parameters")
        }
    }

    /// A linear layer's bias gradient: each column's rows added from +0 in row order, on every path, whatever the
    /// column count (blocks of four vectors, single vectors, scalar tail) and for a single row.
    @Test func columnSumsAddEachColumnInRowOrder() {
        for (rows, columns) in [(1, 1), (1, 70), (3, 7), (256, 64), (64, 256), (5, 16 * 4 + 8 + 3), (17, 135), (2, 33)] {
            let g = inputs(count: rows * columns, seed: UInt64(rows * 1000 + columns)).filter(\.isFinite)
                .prefix(rows * columns).map { $0 }
            var expected = [Float](repeating: 0, count: columns)
            for i in 0..<rows { for j in 0..<columns { expected[j] += g[i * columns + j] } }
            let sums = everyPath { () -> [Float] in
                var out = [Float](repeating: .nan, count: columns)
                rl_column_sums(g, rows, columns, &out)
                return out
            }
            for (level, result) in sums.enumerated() {
                #expect(bits(result) == bits(expected), "level \(level), \(rows) x \(columns)")
            }
        }
    }

    /// im2col and col2im (`rl_lower`, `rl_unlower`) give the same bits on every instruction set: 4×4 kernels with
    /// padding 1 at strides 1 to 3 over widths whose grid rows leave every remainder of the 8-value vectors of the
    /// stride-2 path, some with a padded column at the right; the image and lowered values include signed zeros.
    @Test(.enabled(if: KernelTests.cpuHasAVX2, "the CPU has no AVX2: there is one path only"))
    func loweringAgreesOnEveryPath() {
        var rng = SeededGenerator(seed: 7)
        for stride in 1...3 {
            for width in [4, 5, 6, 14, 17, 19, 28, 33, 35] {
                func axis(_ image: Int) -> rl_conv_axis {
                    rl_conv_axis(image: image, grid: (image + 2 - 4) / stride + 1, kernel: 4, stride: stride, padding: 1,
                                 dilation: 1)
                }
                var (h, w) = (axis(7), axis(width))
                let channels = 3, rows = channels * 16, columns = h.grid * w.grid
                func values(_ count: Int) -> [Float] {
                    (0..<count).map { i in i % 11 == 0 ? (i % 2 == 0 ? 0 : -0) : Float.random(in: -1...1, using: &rng) }
                }
                let image = values(channels * 7 * width), lowered = values(rows * columns)
                let lowerings = everyPath { () -> [Float] in
                    var out = [Float](repeating: .nan, count: rows * columns)
                    rl_lower(image, &out, columns, channels, &h, &w)
                    return out
                }
                let unlowerings = everyPath { () -> [Float] in
                    var out = image
                    rl_unlower(lowered, &out, columns, channels, &h, &w)
                    return out
                }
                #expect(sameBits(lowerings) && !lowerings[0].contains { $0.isNaN }, "lower: stride \(stride), width \(width)")
                #expect(sameBits(unlowerings), "unlower: stride \(stride), width \(width)")
            }
        }
    }

    /// The fused LSTM step, forward and backward, on rows laid out with strides as the recurrent pass lays them out: on
    /// every instruction set the bits of the step written out element by element with `rl_tanh` (σ(a) as
    /// 0.5 + 0.5·tanh(0.5·a)), for hidden sizes that fill whole vectors and ones that end in a partial vector.
    @Test func lstmStepKernelsGiveTheBitsOfTheWrittenOutStep() {
        func tanh(_ v: Float) -> Float {
            var y: Float = 0
            withUnsafePointer(to: v) { x in rl_tanh(x, &y, 1) }
            return y
        }
        func sigmoid(_ a: Float) -> Float { 0.5 + 0.5 * tanh(a * 0.5) }
        for hidden in [1, 5, 16, 37, 64] {
            let rows = 3, H = hidden, (xStride, hStride, cStride, width) = (4 * H + 3, 4 * H, H + 1, 6 * H)
            var rng = SeededGenerator(seed: UInt64(hidden))
            func values(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in Float.random(in: -scale...scale, using: &rng) } }
            let x = values(rows * xStride, 4), h = values(rows * hStride, 4), cPrev = values(rows * cStride, 2)
            let up = values(rows * xStride, 1), dh = values(rows * H, 1), dc = values(rows * H, 1)
            // The step written out.
            var cache = [Float](repeating: 0, count: rows * width), y = [Float](repeating: 0, count: rows * xStride)
            var gates = [Float](repeating: 0, count: rows * 4 * H), dhOut = dh, dcOut = dc
            for r in 0..<rows {
                for j in 0..<H {
                    let a = (0..<4).map { q in x[r * xStride + q * H + j] + h[r * hStride + q * H + j] }
                    let (i, f, g, o) = (sigmoid(a[0]), sigmoid(a[1]), tanh(a[2]), sigmoid(a[3]))
                    let c = f * cPrev[r * cStride + j] + i * g, tc = tanh(c)
                    for (q, v) in [i, f, g, o, c, tc].enumerated() { cache[r * width + q * H + j] = v }
                    y[r * xStride + j] = o * tc
                    let dhj = up[r * xStride + j] + dh[r * H + j]
                    let dcj = dc[r * H + j] + dhj * o * (1 - tc * tc)
                    let d = [dcj * g * i * (1 - i), dcj * cPrev[r * cStride + j] * f * (1 - f), dcj * i * (1 - g * g),
                             dhj * tc * o * (1 - o)]
                    for q in 0..<4 { gates[r * 4 * H + q * H + j] = d[q] }
                    dcOut[r * H + j] = dcj * f
                    dhOut[r * H + j] = 0
                }
            }
            let expected = cache + y + gates + dhOut + dcOut
            let results = everyPath { () -> [Float] in
                var cache = [Float](repeating: 7, count: rows * width), y = [Float](repeating: 0, count: rows * xStride)
                var gates = [Float](repeating: 7, count: rows * 4 * H), dh = dh, dc = dc
                rl_lstm_forward(rows, H, x, xStride, h, hStride, cPrev, cStride, &cache, width, &y, xStride)
                rl_lstm_backward(rows, H, up, xStride, &dh, H, cache, width, cPrev, cStride, &dc, H, &gates, 4 * H)
                return cache + y + gates + dh + dc
            }
            for (level, result) in results.enumerated() {
                #expect(bits(result) == bits(expected), "hidden \(hidden), level \(level)")
            }
        }
    }

    /// ReLU passes positive values (subnormals and +∞ too) and gives +0 for everything else, −0 and NaN included;
    /// its backward passes the upstream gradient exactly where the output is positive.
    @Test func reluKeepsPositiveValuesAndZeroesTheRest() {
        let x: [Float] = [1.5, -2, 0, -0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .infinity, -.infinity, .nan,
                          3e38, -3e38, 0.25]
        let expected: [Float] = [1.5, 0, 0, 0, .leastNonzeroMagnitude, 0, .infinity, 0, 0, 3e38, 0, 0.25]
        let g: [Float] = (0..<x.count).map { Float($0) - 5.5 }
        let previous = rl_kernels_level()
        defer { rl_kernels_limit(previous) }
        for level in 0...rl_cpu_vector_level() {
            rl_kernels_limit(level)
            var y = [Float](repeating: 7, count: x.count), back = [Float](repeating: 7, count: x.count)
            rl_relu(x, &y, x.count)
            rl_relu_backward(g, y, &back, x.count)
            #expect(bits(y) == bits(expected), "level \(level): \(y)")
            #expect(bits(back) == bits(zip(g, expected).map { $1 > 0 ? $0 : 0 }), "level \(level): \(back)")
        }
    }

    /// The activations of a batch of no rows: no values, and a backward that runs.
    @Test func activationsOfAnEmptyBatch() {
        for activation in [Activation.relu, .tanh] {
            let x = Tensor([], shape: [0, 3], requiresGrad: true)
            let y = activation.apply(x)
            #expect(y.shape == [0, 3] && y.data.isEmpty, "\(activation)")
            y.sum().backward()
            #expect(x.grad?.isEmpty ?? true, "\(activation)")
        }
    }

    /// Adam flushes subnormal moments to zero during its update (the weights move as they would without), on both
    /// paths, and leaves the caller's floating-point mode as it was: subnormal arithmetic still works after it.
    @Test func adamFlushesSubnormalMomentsOnly() {
        let tiny = Float.leastNormalMagnitude
        let results = everyPath { () -> [Float] in
            var w: [Float] = [0.5, -0.25, 0.125], m: [Float] = [tiny / 4, 0.01, -tiny / 16], v: [Float] = [1e-6, 1e-4, 0]
            rl_adam(&w, [0, 0.1, 0], &m, &v, 3, 0, 0.9, 0.1, 0.999, 0.001, 1e-3, 1.0, 1e-8)
            return w + m + v
        }
        #expect(sameBits(results))
        let (w, m) = (Array(results[0][0..<3]), Array(results[0][3..<6]))
        #expect(w[0] == 0.5 && w[2] == 0.125, "a subnormal moment does not move its weight: \(w)")
        #expect(m[0] == 0 && m[2] == 0, "β₁ times a subnormal moment flushes to zero: \(m)")
        #expect(m[1] == (0.9 as Float) * 0.01 + (0.1 as Float) * 0.1, "normal moments as IEEE arithmetic gives them: \(m)")
        let half = [tiny].map { $0 / 2 }[0]
        #expect(half > 0 && half.isSubnormal, "the caller's mode is restored")
    }

    /// The thin products: each element is the sum over k in order, in fused multiply-adds from +0, then added to C
    /// (or to +0) — bit for bit, for every class of thin shape, both transposes, padded strides and odd sizes (the
    /// vector tails); a product that is not thin is declined and C left untouched.
    @Test func thinProductsSumInOrderWithFusedMultiplyAdds() throws {
        try #require(Self.cpuHasAVX2, "the thin kernels need AVX2 and FMA")
        var rng = SeededGenerator(seed: 21)
        let thin = [(256, 64, 4), (37, 75, 1), (9, 130, 7), (2, 64, 256), (3, 19, 320), (1, 9, 50), (256, 2, 64),
                    (45, 7, 13), (8, 3, 320), (17, 1, 9)]
        for (m, n, k) in thin + [(16, 16, 16), (4, 64, 64), (2, 64, 321)] {
            let isThin = k <= 7 || ((m <= 3 || n <= 7) && k <= 320)
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for accumulate in [false, true] {
                    let lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 3, ldc = n + 2
                    let a = (0..<((ta ? k : m) * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let b = (0..<((tb ? n : k) * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let start = (0..<(m * ldc)).map { _ in accumulate ? Float.random(in: -1...1, using: &rng) : .nan }
                    var c = start
                    let done = rl_thin_gemm(ta ? 1 : 0, tb ? 1 : 0, m, n, k, a, lda, b, ldb, accumulate ? 1 : 0, &c, ldc)
                    let shape = "\(m)x\(n)x\(k) transA \(ta) transB \(tb) accumulate \(accumulate)"
                    #expect((done != 0) == isThin, "\(shape)")
                    guard done != 0 else {
                        #expect(bits(c) == bits(start), "\(shape): declined, yet C changed")
                        continue
                    }
                    var expected = start
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum: Float = 0
                            for p in 0..<k {
                                sum.addProduct(ta ? a[p * lda + i] : a[i * lda + p], tb ? b[j * ldb + p] : b[p * ldb + j])
                            }
                            expected[i * ldc + j] = (accumulate ? start[i * ldc + j] : 0) + sum
                        }
                    }
                    // Equal bits everywhere, the padding beyond each row of C included (left as it was).
                    #expect(bits(c) == bits(expected), "\(shape)")
                }
            }
        }
    }

    /// The panel product on every path: each element the sum over k in order, in fused multiply-adds from +0, then
    /// added to its start (C, the row's bias or +0), bit for bit; C's padding untouched. The shapes cover full and
    /// partial register tiles in both directions, one row or column, k = 0, DQN's shapes, and rows of B far apart
    /// (ldb > 512: copied next to each other first). Each also with a list of rows (the others untouched) and a list
    /// of terms (the sums over those k only).
    @Test func panelProductsSumInOrderFromZero() {
        var rng = SeededGenerator(seed: 22)
        let shapes = [(128, 64, 256), (128, 256, 64), (64, 256, 128), (1, 1, 1), (7, 17, 3), (13, 65, 9), (6, 16, 0),
                      (61, 53, 37), (5, 100, 2), (20, 3, 700)]
        for (m, n, k) in shapes {
            for transA in [false, true] {
                for start in ["zero", "bias", "accumulate"] {
                    let lda = (transA ? m : k) + 1, ldc = n + 2
                    let ldb = n == 3 ? 600 : n + 3
                    let a = (0..<((transA ? k : m) * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let b = (0..<(k * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let bias = (0..<m).map { _ in Float.random(in: -1...1, using: &rng) }
                    let initial = (0..<(m * ldc)).map { j in
                        start == "accumulate" || j % ldc >= n ? Float.random(in: -1...1, using: &rng) : .nan
                    }
                    // Every row, or about two thirds of them in a shuffled order; every term, or about half of them.
                    let someRows = (0..<m).filter { _ in rng.nextDouble() < 0.67 }.shuffled(using: &rng).map(Int32.init)
                    let someTerms = (0..<k).filter { _ in rng.nextDouble() < 0.5 }.map(Int32.init)
                    for (rows, terms) in [(nil, nil), (someRows, nil), (nil, someTerms), (someRows, someTerms)] {
                        var expected = initial
                        for i in rows?.map(Int.init) ?? Array(0..<m) {
                            for j in 0..<n {
                                var sum: Float = 0
                                for p in terms?.map(Int.init) ?? Array(0..<k) {
                                    sum.addProduct(transA ? a[p * lda + i] : a[i * lda + p], b[p * ldb + j])
                                }
                                let from: Float = start == "accumulate" ? initial[i * ldc + j] : start == "bias" ? bias[i] : 0
                                expected[i * ldc + j] = from + sum
                            }
                        }
                        let results = everyPath { () -> [Float] in
                            var c = initial
                            bias.withUnsafeBufferPointer { bias in
                                rl_panel_gemm(transA ? 1 : 0, rows?.count ?? m, n, terms?.count ?? k, a, lda, b, ldb,
                                              start == "bias" ? bias.baseAddress : nil, start == "accumulate" ? 1 : 0,
                                              &c, ldc, rows, terms)
                            }
                            return c
                        }
                        for (level, c) in results.enumerated() {
                            #expect(bits(c) == bits(expected), """
                                level \(level), \(m)x\(n)x\(k) transA \(transA), start \(start), \
                                rows \(rows?.count ?? m), terms \(terms?.count ?? k)
                                """)
                        }
                    }
                }
            }
        }
    }

    /// What `Tensor.splitChain` relies on: leaving out the terms whose row of B is zero (−0 included; found by
    /// `rl_nonzero_rows`) changes no bit of the product, nor does computing only the rows of C whose row of A is not
    /// zero, the others being +0 (all factors finite). `rl_nonzero_rows` keeps rows that hold a NaN.
    @Test func leavingOutZeroProductsChangesNoBit() {
        var rng = SeededGenerator(seed: 23)
        let (m, n, k) = (37, 70, 64)
        // A ReLU layer's output: most values zero, many rows (units) zero throughout, one of them −0 in places.
        var a = (0..<(m * k)).map { _ in max(0, Float.random(in: -1...0.4, using: &rng)) }
        var b = (0..<(k * n)).map { _ in max(0, Float.random(in: -1...0.6, using: &rng)) }
        for i in stride(from: 0, to: m, by: 3) { for p in 0..<k { a[i * k + p] = 0 } }
        for p in stride(from: 1, to: k, by: 4) { for j in 0..<n { b[p * n + j] = j % 5 == 0 ? -0.0 : 0 } }
        var nonzeroRowsOfB = [Int32](repeating: -1, count: k), nonzeroRowsOfA = [Int32](repeating: -1, count: m)
        let termCount = rl_nonzero_rows(b, k, n, &nonzeroRowsOfB)
        let rowCount = rl_nonzero_rows(a, m, k, &nonzeroRowsOfA)
        #expect(Array(nonzeroRowsOfB.prefix(termCount)) == (0..<k).filter { $0 % 4 != 1 }.map(Int32.init))
        #expect(rowCount > 0 && rowCount < m - m / 3)
        #expect(Array(nonzeroRowsOfA.prefix(rowCount)) == (0..<m).filter { i in (0..<k).contains { a[i * k + $0] != 0 } }.map(Int32.init))
        var dense = [Float](repeating: .nan, count: m * n)
        rl_panel_gemm(0, m, n, k, a, k, b, n, nil, 0, &dense, n, nil, nil)
        var sparse = [Float](repeating: 0, count: m * n)
        rl_panel_gemm(0, rowCount, n, termCount, a, k, b, n, nil, 0, &sparse, n, nonzeroRowsOfA, nonzeroRowsOfB)
        #expect(bits(sparse) == bits(dense))
        #expect(dense.contains { $0 == 0 && $0.sign == .plus } && dense.contains { $0 > 0 })

        let withNaN: [Float] = [0, -0.0, 0, 0, .nan, 0, -0.0, -0.0, 0, 0, 0, .leastNonzeroMagnitude]
        var nonzero = [Int32](repeating: -1, count: 4)
        #expect(rl_nonzero_rows(withNaN, 4, 3, &nonzero) == 2 && nonzero.prefix(2) == [1, 3])
        // Rows of 37: a nonzero only in the first block of sixteen, only in the second, only in the tail, or none.
        var blocks = [Float](repeating: -0.0, count: 4 * 37)
        blocks[0 * 37 + 3] = 2; blocks[1 * 37 + 20] = -1; blocks[2 * 37 + 36] = .nan
        #expect(rl_nonzero_rows(blocks, 4, 37, &nonzero) == 3 && nonzero.prefix(3) == [0, 1, 2])
    }

    /// Row sums: each row added from +0 in column order, as the column sums of the transposed matrix.
    @Test func rowSumsAreTheColumnSumsOfTheTranspose() {
        for (rows, columns) in [(1, 1), (1, 70), (7, 3), (8, 64), (128, 64), (17, 135)] {
            let g = inputs(count: rows * columns, seed: UInt64(rows * 100 + columns)).filter(\.isFinite)
                .prefix(rows * columns).map { $0 }
            var transposed = [Float](repeating: 0, count: rows * columns)
            for i in 0..<rows { for j in 0..<columns { transposed[j * rows + i] = g[i * columns + j] } }
            var sums = [Float](repeating: .nan, count: rows), expected = [Float](repeating: .nan, count: rows)
            rl_row_sums(g, rows, columns, &sums)
            rl_column_sums(transposed, columns, rows, &expected)
            #expect(bits(sums) == bits(expected), "\(rows) x \(columns)")
        }
    }

    static var cpuHasAVX2: Bool { rl_cpu_vector_level() >= 1 }
}

/// When rlbench asks OpenBLAS for other kernels than it chose.
@Suite struct BLASKernelChoiceTests {
    @Test func vectorKernelsReplaceAFallbackOnly() {
        #expect(BLASKernels.suggestedCoreType(detected: "Prescott", vectorLevel: 2) == "SkylakeX")
        #expect(BLASKernels.suggestedCoreType(detected: "Prescott", vectorLevel: 1) == "Haswell")
        #expect(BLASKernels.suggestedCoreType(detected: "Nehalem", vectorLevel: 0) == nil)
        #expect(BLASKernels.suggestedCoreType(detected: "Haswell", vectorLevel: 2) == nil)
        #expect(BLASKernels.suggestedCoreType(detected: "Zen", vectorLevel: 1) == nil)
        #expect(BLASKernels.suggestedCoreType(detected: "Cooperlake", vectorLevel: 2) == nil)
    }
}

extension KernelTests {
    /// The diagnostic fast path of a categorical entropy gives the graph's value bit for bit, over batches and
    /// action counts of every size and logits far apart (probabilities that underflow to 0).
    @Test func categoricalMeanEntropyValueIsTheGraphsValue() {
        var rng = SeededGenerator(seed: 7)
        for (n, k) in [(1, 2), (7, 3), (256, 2), (64, 6), (33, 18)] {
            for spread: Float in [0.1, 3, 60] {
                let logits = (0..<n * k).map { _ in Float.random(in: -spread...spread, using: &rng) }
                let c = Categorical(logits: Tensor(logits, shape: [n, k]))
                let graph = c.entropy().mean().item
                #expect(c.meanEntropyValue().bitPattern == graph.bitPattern, "n \(n), k \(k), spread \(spread)")
            }
        }
    }
}
