import CBLAS
import CKernels
import Foundation

/// Which of OpenBLAS's kernel sets the products run on.
///
/// OpenBLAS chooses its kernels from the CPU's model number when the library loads. Debian 12's OpenBLAS 0.3.21
/// predates some CPUs that rlbench runs on (Intel's Emerald Rapids, for one): it does not know them and falls back
/// to its Prescott kernels, SSE3 code that runs a 64-wide product at a fraction of the speed the CPU has. The choice
/// can only be changed before the library loads, through `OPENBLAS_CORETYPE`, so the command-line tool restarts
/// itself once with that variable set (`suggestedCoreType`) when the user has not set it.
public enum BLASKernels {
    /// The kernel set OpenBLAS is using ("Haswell", "SkylakeX", "Prescott", ...).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The kernel sets that use AVX2 or AVX-512 (OpenBLAS 0.3.21's names); any other choice on a CPU with AVX2
    /// means OpenBLAS did not recognise it.
    static let vectorCoreNames: Set<String> = ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"]

    /// The `OPENBLAS_CORETYPE` to restart with: "SkylakeX" on a CPU with AVX-512, "Haswell" on one with AVX2 and
    /// FMA, when OpenBLAS chose a kernel set without them; nil when its choice is right or the user chose
    /// (`OPENBLAS_CORETYPE` is set).
    public static var suggestedCoreType: String? {
        if getenv("OPENBLAS_CORETYPE") != nil { return nil }
        return suggestedCoreType(detected: coreName, vectorLevel: Int(rl_cpu_vector_level()))
    }

    /// The rule behind `suggestedCoreType`, for a detected kernel set and `rl_cpu_vector_level()`.
    public static func suggestedCoreType(detected: String, vectorLevel: Int) -> String? {
        if vectorCoreNames.contains(detected) { return nil }
        switch vectorLevel {
        case 2: return "SkylakeX"
        case 1: return "Haswell"
        default: return nil
        }
    }
}
