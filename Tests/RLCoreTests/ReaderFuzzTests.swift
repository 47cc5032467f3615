import Foundation
import RLCore
import TestSupport
import Testing

/// Seeded fuzzing of the binary readers (see `Fuzz`): every variant of a real file loads or is refused with an error.
@Suite struct ReaderFuzzTests {
    @Test func safetensorsReaderLoadsOrRefusesEveryVariant() throws {
        let tensors: [(name: String, tensor: Tensor)] = [
            ("a.weight", Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])), ("a.bias", Tensor([0.5, -0.5], shape: [2])),
            ("scalar", Tensor([7], shape: [])), ("empty", Tensor([], shape: [0, 4])),
        ]
        let real = [UInt8](try SafeTensors.encode(tensors, metadata: ["format": "rlbench-agent", "step": "100"]))
        var fuzz = Fuzz(seed: 1)
        let variants = fuzz.variants(of: [real], count: Fuzz.iterations())
        let result = Fuzz.check(variants) { _ = try SafeTensors.decode(Data($0)) }
        #expect(result.refused > 0 && result.loaded > 0, "\(result)")
        #expect(result.seconds < 30, "\(result)")
        // Length fields at their extremes: a dimension whose byte count overflows is an error, not a trap.
        for shape in ["[562949953421312, 4096]", "[4611686018427387904, 8]", "[1125899906842623, 1125899906842623]", "[-1]", "[1e300]"] {
            let header = #"{"t":{"dtype":"F64","shape":\#(shape),"data_offsets":[0,8]}}"#
            var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { [UInt8]($0) } + Array(header.utf8)
            bytes += [UInt8](repeating: 0, count: 8)
            #expect(throws: SafeTensorsError.self, "shape \(shape)") { try SafeTensors.decode(Data(bytes)) }
        }
    }

    @Test func idxReaderLoadsOrRefusesEveryVariant() throws {
        // Three 2×2 images and their labels, as MNIST's files lay them out.
        let images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2] + (0..<12).map { UInt8($0 * 20) }
        let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 3, 1, 7, 9]
        var fuzz = Fuzz(seed: 2)
        let variants = fuzz.variants(of: [images, labels], count: Fuzz.iterations())
        let result = Fuzz.check(variants) { _ = try IDX.decode($0, path: "fuzz.idx") }
        #expect(result.refused > 0 && result.loaded > 0, "\(result)")
        #expect(result.seconds < 30, "\(result)")
    }
}
