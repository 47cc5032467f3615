#if canImport(Glibc)
import Glibc
#endif

/// How the process's memory allocator is tuned for training.
enum Allocator {
    /// Training allocates and frees tensor buffers of the same sizes at every step. By default glibc returns freed
    /// memory at the top of the heap to the kernel and then faults it in again page by page (a fifth of PPO's time on
    /// CartPole); keeping it makes the next step's buffers free to reuse. Peak memory is unchanged.
    static func keepFreedMemory() {
        #if canImport(Glibc)
        // mallopt is in <malloc.h>, which Swift's Glibc module does not import.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3  // M_* in <malloc.h>
        _ = mallopt(trimThreshold, 1 << 30)
        // Blocks up to 4 MB come from the (kept) heap; larger ones are mapped and unmapped (GEMM benchmarks).
        _ = mallopt(mmapThreshold, 4 << 20)
        #endif
    }
}
