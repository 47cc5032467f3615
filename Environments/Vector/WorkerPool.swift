#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Persistent worker threads that help the calling thread run one job split into `chunks` independent pieces;
/// `run()` returns when every chunk is done.
///
/// Built for per-step synchronization of vector environments, where a batch step takes microseconds and a
/// dispatch per step would cost more than the work:
/// - `run()` publishes a new *epoch* in one atomic `ticket` word (epoch in the high bits, next unclaimed chunk in
///   the low bits). The job's inputs, written before the release store, are visible to every thread that
///   observes the epoch (acquire).
/// - The caller and the workers claim chunks by compare-and-swap on the ticket, so the work goes to whoever is
///   running: if a worker is descheduled (a busy machine) the caller simply does its chunks, and the step never
///   waits for a thread that has not started. A claim carries its epoch, so a late worker can never take a chunk
///   of a later job.
/// - Idle workers spin on the ticket for `spinLimit` polls (~tens of µs), then park on a condition variable.
///   Parking and waking use a Dekker-style handshake on two sequentially consistent atomics (`sleepers` and
///   `ticket`), so a wake-up is never lost and the caller takes the mutex only when someone is actually parked.
/// - Each finished chunk bumps `completed` (release); the caller waits for all of them (acquire), yielding the CPU
///   after a while so an oversubscribed machine still makes progress.
///
/// `shutdown()` (idempotent) stops and joins every worker; the owner must call it (the workers keep the pool
/// alive while they run, so it cannot rely on its own `deinit`).
final class WorkerPool: @unchecked Sendable {
    /// Threads taking part, the caller included.
    let parties: Int
    /// Independent pieces of each job (at least 1, less than 2^indexBits).
    let chunks: Int
    private let body: @Sendable (Int) -> Void
    private let ticket = Atomic<Int>(0)
    private let completed = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []
    private var epoch = 0
    private var isShutDown = false

    private static let indexBits = 20
    private static let indexMask = (1 << indexBits) - 1
    /// Polls of the ticket before an idle worker parks (each poll is a few ns; about 20–60 µs in all).
    static let spinLimit = 20_000
    /// Polls of the completion counter before the caller starts yielding its time slice.
    static let callerSpinLimit = 2_000

    /// Starts `parties - 1` worker threads that will, with the caller, run `body(chunk)` for chunks 0..<chunks
    /// on each `run()`.
    init(parties: Int, chunks: Int, body: @escaping @Sendable (Int) -> Void) {
        precondition(parties >= 1 && chunks >= 1 && chunks <= Self.indexMask, "bad worker pool size \(parties)/\(chunks)")
        self.parties = parties
        self.chunks = chunks
        self.body = body
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for _ in 1..<parties {
            let context = Unmanaged.passRetained(self).toOpaque()
            #if canImport(Glibc)
            var thread = pthread_t()
            #else
            var thread: pthread_t?
            #endif
            let status = pthread_create(&thread, nil, { raw in
                Unmanaged<WorkerPool>.fromOpaque(raw!).takeRetainedValue().workerLoop()
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

    /// Runs `body(c)` once for every chunk c, on the calling thread and the workers; returns when all are done.
    /// Not reentrant: one `run()` at a time.
    func run() {
        guard parties > 1 else {
            for c in 0..<chunks { body(c) }
            return
        }
        precondition(!isShutDown, "WorkerPool.run() after shutdown()")
        epoch += 1
        completed.store(0, ordering: .relaxed)
        ticket.store(epoch << Self.indexBits, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 { wakeAll() }
        claimChunks(epoch: epoch)
        var polls = 0
        while completed.load(ordering: .acquiring) < chunks {
            polls += 1
            if polls > Self.callerSpinLimit { sched_yield() }
        }
    }

    /// Claims and runs chunks of `epoch` until none is left (or a later epoch started).
    @inline(__always)
    private func claimChunks(epoch: Int) {
        var current = ticket.load(ordering: .acquiring)
        while current >> Self.indexBits == epoch, current & Self.indexMask < chunks {
            let (exchanged, original) = ticket.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged {
                body(current & Self.indexMask)
                completed.add(1, ordering: .releasing)
                current = ticket.load(ordering: .acquiring)
            } else {
                current = original
            }
        }
    }

    /// Stops and joins every worker. Safe to call more than once.
    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        stopping.store(true, ordering: .sequentiallyConsistent)
        epoch += 1
        ticket.store(epoch << Self.indexBits | Self.indexMask, ordering: .sequentiallyConsistent)
        wakeAll()
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }

    private func wakeAll() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    private func workerLoop() {
        var seen = 0
        while true {
            var current = ticket.load(ordering: .acquiring) >> Self.indexBits
            var polls = 0
            while current == seen {
                polls += 1
                if polls >= Self.spinLimit {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    current = ticket.load(ordering: .sequentiallyConsistent) >> Self.indexBits
                    while current == seen {
                        pthread_cond_wait(condition, mutex)
                        current = ticket.load(ordering: .sequentiallyConsistent) >> Self.indexBits
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    break
                }
                current = ticket.load(ordering: .acquiring) >> Self.indexBits
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            claimChunks(epoch: current)
        }
    }
}
