import Foundation
import Synchronization

/// Set by the Ctrl-C handler; the training loop stops at its next `tick`, after saving a checkpoint.
public enum StopRequest {
    static let flag = Atomic<Bool>(false)
    public static func request() { flag.store(true, ordering: .relaxed) }
    public static var isRequested: Bool { flag.load(ordering: .relaxed) }
    public static func reset() { flag.store(false, ordering: .relaxed) }

    /// Makes Ctrl-C (SIGINT) request a stop instead of killing the process. SIGINT is also unblocked, since a
    /// process started by another program (a test runner, a job scheduler) may inherit it blocked.
    public static func installInterruptHandler() {
        signal(SIGINT) { _ in StopRequest.request() }
        var interrupt = sigset_t()
        sigemptyset(&interrupt)
        sigaddset(&interrupt, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &interrupt, nil)
    }
}
