#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Persistent worker threads that run one job split into `parties` chunks: the calling thread runs chunk 0 and
/// `parties - 1` workers run chunks 1..<parties; `run()` returns when every chunk is done.
///
/// Built for per-step synchronization of vector environments, where a batch step takes microseconds and a
/// dispatch per step would cost more than the work:
/// - `run()` publishes a new *epoch* (an atomic counter, release ordering); the job's inputs, written before it,
///   are visible to workers that observe the epoch (acquire ordering).
/// - Idle workers spin on the epoch for `spinLimit` polls (~tens of µs), then park on a condition variable.
///   Parking and waking use a Dekker-style handshake on two sequentially consistent atomics (`sleepers` and
///   `epoch`), so a wake-up is never lost and the caller takes the mutex only when someone is actually parked.
/// - Each worker bumps `finished` (release) after its chunk; the caller spins on it (acquire), yielding the CPU
///   after a while so an oversubscribed machine still makes progress.
///
/// `shutdown()` (idempotent) stops and joins every worker; the owner must call it (the workers keep the pool
/// alive while they run, so it cannot rely on its own `deinit`).
final class WorkerPool: @unchecked Sendable {
    let parties: Int
    private let body: @Sendable (Int) -> Void
    private let epoch = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []
    private var isShutDown = false

    /// Polls of the epoch before an idle worker parks (each poll is a few ns; about 20–60 µs in all).
    static let spinLimit = 20_000
    /// Polls of the completion counter before the caller starts yielding its time slice.
    static let callerSpinLimit = 50_000

    /// Starts `parties - 1` worker threads that will run `body(chunk)` for chunks 1..<parties on each `run()`.
    init(parties: Int, body: @escaping @Sendable (Int) -> Void) {
        precondition(parties >= 1, "a worker pool needs at least one party")
        self.parties = parties
        self.body = body
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for index in 1..<parties {
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
            #if canImport(Glibc)
            var thread = pthread_t()
            #else
            var thread: pthread_t?
            #endif
            let status = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.workerLoop(index: context.index)
                return nil
            }, context)
            precondition(status == 0, "could not start a worker thread (pthread_create returned \(status))")
            #if canImport(Glibc)
            threads.append(thread)
            #else
            threads.append(thread!)
            #endif
        }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body(0)` on the calling thread and `body(1..<parties)` on the workers; returns when all are done.
    /// Not reentrant: one `run()` at a time.
    func run() {
        guard parties > 1 else { body(0); return }
        precondition(!isShutDown, "WorkerPool.run() after shutdown()")
        finished.store(0, ordering: .relaxed)
        epoch.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 { wakeAll() }
        body(0)
        let expected = parties - 1
        var polls = 0
        while finished.load(ordering: .acquiring) < expected {
            polls += 1
            if polls > Self.callerSpinLimit { sched_yield() }
        }
    }

    /// Stops and joins every worker. Safe to call more than once.
    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        stopping.store(true, ordering: .sequentiallyConsistent)
        epoch.add(1, ordering: .sequentiallyConsistent)
        wakeAll()
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }

    private func wakeAll() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var current = epoch.load(ordering: .acquiring)
            var polls = 0
            while current == seen {
                polls += 1
                if polls >= Self.spinLimit {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    current = epoch.load(ordering: .sequentiallyConsistent)
                    while current == seen {
                        pthread_cond_wait(condition, mutex)
                        current = epoch.load(ordering: .sequentiallyConsistent)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    break
                }
                current = epoch.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            body(index)
            finished.add(1, ordering: .releasing)
        }
    }
}

/// What a new worker thread needs: its pool and its chunk index.
private final class WorkerContext {
    let pool: WorkerPool
    let index: Int
    init(pool: WorkerPool, index: Int) { self.pool = pool; self.index = index }
}
