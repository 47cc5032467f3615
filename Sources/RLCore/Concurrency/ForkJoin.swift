#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Two independent pieces of work run at the same time: the first on the calling thread, the second on a persistent
/// helper thread.
///
/// The training loops use it where a step splits into halves that share no mutable state — the separate policy and
/// value networks of an actor-critic (their losses are differentiated independently; the gradients are exactly those
/// of the summed loss), DQN's target-network pass beside the online network's forward pass, the two backward products
/// of a large `linear`, the two halves of a large optimizer update. Each half computes exactly what it would on one
/// thread, so results are bit-identical to running them one after the other.
///
/// The pieces are tens to hundreds of microseconds long, so the hand-off must cost far less: the helper spins on an
/// atomic epoch for `helperSpinNanoseconds` after each job before it parks on a condition variable, and a caller that
/// finishes its half while the helper has not yet started the other (a busy machine) runs that half itself. A call
/// made while the helper is taken (nested calls, or two threads at once) simply runs both halves on its own thread.
public enum ForkJoin {
    /// Whether `both` may use the helper thread (default true). With false it runs `first`, then `second`, on the
    /// calling thread: the same results, one core. Safe to change from any thread at any time.
    public static var isParallel: Bool {
        get { parallel.load(ordering: .relaxed) }
        set { parallel.store(newValue, ordering: .relaxed) }
    }
    private static let parallel = Atomic<Bool>(true)

    /// Runs `first` and `second` concurrently and returns both results. The two closures must not write to memory
    /// the other reads or writes; the tensors they create are their own, and shared inputs are only read.
    /// Task-local state such as `Tensor.withoutGrad` does not carry over to the helper thread: set it inside each
    /// closure that needs it.
    public static func both<A, B>(_ first: () -> A, _ second: () -> B) -> (A, B) {
        guard isParallel, let helper = Helper.shared.acquire() else { return (first(), second()) }
        var b: B?
        let a = withoutActuallyEscaping({ b = second() }) { job in
            helper.start(job)
            let a = first()
            helper.finish()
            return a
        }
        return (a, b!)
    }

    /// How long the helper spins waiting for the next job before it parks.
    static let helperSpinNanoseconds: UInt64 = 200_000

    /// The helper thread and its hand-off state.
    final class Helper: @unchecked Sendable {
        static let shared = Helper()

        /// Held by the one caller whose job the helper has (0 free, 1 taken).
        private let taken = Atomic<Int>(0)
        /// Incremented by the caller for each job (release); the helper waits for a new value (acquire).
        private let epoch = Atomic<Int>(0)
        /// The epoch whose job someone claimed: the helper, or the caller when it got there first.
        private let claimed = Atomic<Int>(0)
        /// The epoch whose job the helper has finished.
        private let finished = Atomic<Int>(0)
        /// 1 while the helper is parked or about to park (a Dekker-style handshake with `epoch`, both sequentially
        /// consistent, so that a wake-up is never lost and the caller locks the mutex only for a parked helper).
        private let sleeping = Atomic<Int>(0)
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        /// The current job; written by the caller before `epoch` is published, read by whoever claims it.
        private var job: (() -> Void)?
        private var current = 0

        private init() {
            pthread_mutex_init(mutex, nil)
            pthread_cond_init(condition, nil)
            var thread = pthread_t()
            let box = Unmanaged.passRetained(self).toOpaque()
            pthread_create(&thread, nil, { raw in
                Unmanaged<Helper>.fromOpaque(raw!).takeRetainedValue().loop()
                return nil
            }, box)
            pthread_detach(thread)
        }

        /// The helper for one fork, or nil when another caller has it.
        func acquire() -> Helper? {
            taken.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged ? self : nil
        }

        /// Publishes `work` to the helper thread.
        func start(_ work: @escaping () -> Void) {
            job = work
            current += 1
            epoch.store(current, ordering: .sequentiallyConsistent)
            if sleeping.load(ordering: .sequentiallyConsistent) != 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_signal(condition)
                pthread_mutex_unlock(mutex)
            }
        }

        /// Waits for the published job (running it here if the helper has not started it), then frees the helper.
        func finish() {
            if claimed.compareExchange(expected: current - 1, desired: current, ordering: .acquiringAndReleasing).exchanged {
                job!()
            } else {
                var spins = 0
                while finished.load(ordering: .acquiring) != current {
                    spins += 1
                    if spins & 1023 == 0 { sched_yield() }
                }
            }
            job = nil
            taken.store(0, ordering: .releasing)
        }

        private func loop() {
            var seen = 0
            while true {
                seen = waitForEpoch(after: seen)
                if claimed.compareExchange(expected: seen - 1, desired: seen, ordering: .acquiringAndReleasing).exchanged {
                    job!()
                    finished.store(seen, ordering: .releasing)
                }
            }
        }

        /// Spins for a new epoch, then parks until one is published; returns it.
        private func waitForEpoch(after seen: Int) -> Int {
            let deadline = Self.now() + ForkJoin.helperSpinNanoseconds
            var polls = 0
            while true {
                let e = epoch.load(ordering: .acquiring)
                if e != seen { return e }
                polls += 1
                if polls & 127 == 0 && Self.now() > deadline { break }
            }
            sleeping.store(1, ordering: .sequentiallyConsistent)
            var e = epoch.load(ordering: .sequentiallyConsistent)
            if e == seen {
                pthread_mutex_lock(mutex)
                e = epoch.load(ordering: .sequentiallyConsistent)
                while e == seen {
                    pthread_cond_wait(condition, mutex)
                    e = epoch.load(ordering: .sequentiallyConsistent)
                }
                pthread_mutex_unlock(mutex)
            }
            sleeping.store(0, ordering: .sequentiallyConsistent)
            return e
        }

        private static func now() -> UInt64 {
            var t = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t)
            return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
        }
    }
}
