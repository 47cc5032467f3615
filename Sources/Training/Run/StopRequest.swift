import Foundation
import Synchronization

/// Set by the stop signals' handler; the training loop stops at its next `tick`, after saving a checkpoint.
public enum StopRequest {
    /// The signals that stop a run cleanly: Ctrl-C (SIGINT), `kill` and job schedulers (SIGTERM), a closed terminal
    /// or SSH session (SIGHUP).
    public static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// The signal that asked for the stop (SIGINT for `request()`), 0 while none has.
    static let signal = Atomic<Int32>(0)

    public static func request() { request(by: SIGINT) }
    static func request(by signal: Int32) {
        // The first signal decides the exit code; a second one does not change it.
        _ = Self.signal.compareExchange(expected: 0, desired: signal, ordering: .relaxed)
    }
    public static var isRequested: Bool { signal.load(ordering: .relaxed) != 0 }
    public static func reset() { signal.store(0, ordering: .relaxed) }

    /// The shell's exit status of a process ended by the stop's signal: 128 + its number (130 for Ctrl-C, 143 for
    /// SIGTERM, 129 for SIGHUP).
    public static var exitCode: Int32 { 128 + (isRequested ? signal.load(ordering: .relaxed) : SIGINT) }

    /// Makes the stop signals request a stop instead of killing the process. They are also unblocked, since a process
    /// started by another program (a test runner, a job scheduler) may inherit them blocked.
    public static func installInterruptHandler() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals {
            Glibc.signal(s) { StopRequest.request(by: $0) }
            sigaddset(&set, s)
        }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
