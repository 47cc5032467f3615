#if canImport(Glibc)
import Glibc
#endif

/// How the process's memory allocator is tuned for training.
public enum Allocator {
    /// Training allocates and frees tensor buffers of the same sizes at every step. By default glibc returns freed
    /// memory at the top of the heap to the kernel and then faults it in again page by page (a fifth of PPO's time on
    /// CartPole); keeping it makes the next step's buffers free to reuse. Peak memory is unchanged.
    public static func keepFreedMemory() {
        #if canImport(Glibc)
        // mallopt is in <malloc.h>, which Swift's Glibc module does not import.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3  // M_* in <malloc.h>
        _ = mallopt(trimThreshold, 1 << 30)
        // Blocks up to 32 MB (glibc's own ceiling for this threshold) come from the kept heap too: a 1024² product's
        // 4 MB result, mapped afresh for each call, spent 12% of the product's time faulting its pages in.
        _ = mallopt(mmapThreshold, 32 << 20)
        #endif
    }

    /// Returns the kept free memory to the kernel (`malloc_trim`), so that a measurement of resident memory that
    /// follows large, finished work (the GEMM benchmarks) sees only what is in use.
    public static func releaseFreedMemory() {
        #if canImport(Glibc)
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
        #endif
    }
}
