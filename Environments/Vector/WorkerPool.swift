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
/// - `run()` publishes a new *epoch* (an atomic counter). The job's inputs, written before that release store,
///   are visible to every thread that observes the epoch (acquire).
/// - Chunk c belongs to participant c % parties (the caller is participant 0), so a sub-environment's memory
///   normally stays in one core's cache from step to step. Each participant runs its own chunks first, then
///   *steals* the chunks nobody has claimed yet, so the step never waits for a thread that has not started (a
///   busy machine) — it only waits for chunks in progress. A chunk is claimed by compare-and-swap of its slot from
///   epoch − 1 to epoch and marked done by storing the epoch in a second word; each chunk's slot has its own
///   cache line.
/// - Idle workers spin on the epoch for `workerSpinNanoseconds` (100 µs), then park on a condition variable.
///   Parking and waking use a Dekker-style handshake on two sequentially consistent atomics (`sleepers` and
///   `published`), so a wake-up is never lost and the caller takes the mutex only when someone is actually parked.
/// - The caller spins up to `callerSpinNanoseconds` (20 µs) on chunks in progress, then yields its time slice.
/// - The pool measures the wall time per run in windows of ≥ 10 ms, with and without the workers, and keeps the
///   faster mode, re-probing the other one window in 17. On a machine busy with other work the threads only get
///   about one core between them, and the caller alone is faster; the workers then stay parked.
///
/// `shutdown()` (idempotent) stops and joins every worker; the owner must call it (the workers keep the pool
/// alive while they run, so it cannot rely on its own `deinit`).
final class WorkerPool: @unchecked Sendable {
    /// Threads taking part, the caller included.
    let parties: Int
    /// Independent pieces of each job.
    let chunks: Int
    private let body: @Sendable (Int) -> Void
    private let published = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// Per chunk c: word c·stride is the last epoch that claimed it, word c·stride + 1 the last that finished it.
    private let slots: UnsafeMutablePointer<Atomic<Int>>
    private static let stride = 16 // 128 bytes: a cache line (and its adjacent-line prefetch partner) per chunk
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []
    private var epoch = 0
    private var isShutDown = false
    /// Mode selection (caller only): whether the workers take part, the current window's start and run count,
    /// the last measured wall time per run of each mode, and the windows left before the other mode is probed.
    private var parallel = true
    private var windowStart: UInt64 = 0, windowRuns = 0
    private var parallelCost = 0.0, soloCost = 0.0
    private var windowsUntilProbe = 0, probing = false
    /// A measuring window lasts at least `windowNanoseconds` (10 ms, longer than a scheduler time slice), checked
    /// every `windowCheck` runs; `probeInterval` windows pass between two probes of the other mode.
    static let windowNanoseconds: UInt64 = 10_000_000, windowCheck = 64, probeInterval = 16

    /// How long an idle worker spins on the epoch before it parks.
    static let workerSpinNanoseconds: UInt64 = 100_000
    /// How long the caller spins on a chunk in progress before it yields its time slice.
    static let callerSpinNanoseconds: UInt64 = 20_000
    /// Polls between two looks at the clock while spinning.
    static let pollsPerClockRead = 128

    /// A monotonic clock in nanoseconds (vDSO: tens of ns, read only every `pollsPerClockRead` polls).
    @inline(__always)
    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    /// Starts `parties - 1` worker threads that will, with the caller, run `body(chunk)` for chunks 0..<chunks
    /// on each `run()`.
    init(parties: Int, chunks: Int, body: @escaping @Sendable (Int) -> Void) {
        precondition(parties >= 1 && chunks >= 1, "bad worker pool size \(parties)/\(chunks)")
        self.parties = parties
        self.chunks = chunks
        self.body = body
        let raw = UnsafeMutableRawPointer.allocate(byteCount: chunks * Self.stride * MemoryLayout<Int>.stride, alignment: 128)
        slots = raw.bindMemory(to: Atomic<Int>.self, capacity: chunks * Self.stride)
        for i in 0..<(chunks * Self.stride) { (slots + i).initialize(to: Atomic(0)) }
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for participant in 1..<parties {
            let context = Unmanaged.passRetained(WorkerContext(pool: self, participant: participant)).toOpaque()
            #if canImport(Glibc)
            var thread = pthread_t()
            #else
            var thread: pthread_t?
            #endif
            let status = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.workerLoop(participant: context.participant)
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
        slots.deinitialize(count: chunks * Self.stride)
        UnsafeMutableRawPointer(slots).deallocate()
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body(c)` once for every chunk c, on the calling thread and the workers; returns when all are done.
    /// Not reentrant: one `run()` at a time. After `shutdown()` the caller runs every chunk itself.
    func run() {
        guard parties > 1, !isShutDown else {
            for c in 0..<chunks { body(c) }
            return
        }
        if windowRuns == 0 { windowStart = Self.now() }
        windowRuns += 1
        if windowRuns % Self.windowCheck == 0 {
            let elapsed = Self.now() - windowStart
            if elapsed >= Self.windowNanoseconds { endWindow(elapsed: elapsed) }
        }
        guard parallel else {
            // The slots keep their epoch: every chunk is still "claimed and done" for it.
            for c in 0..<chunks { body(c) }
            return
        }
        epoch += 1
        published.store(epoch, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 { wakeAll() }
        work(participant: 0, epoch: epoch)
        var yielding = false
        var polls = 0, deadline: UInt64 = 0
        for c in 0..<chunks {
            while slots[c * Self.stride + 1].load(ordering: .acquiring) != epoch {
                if yielding { sched_yield(); continue }
                polls += 1
                if polls % Self.pollsPerClockRead == 0 {
                    let t = Self.now()
                    if deadline == 0 { deadline = t + Self.callerSpinNanoseconds } else if t > deadline { yielding = true }
                }
            }
        }
    }

    /// Closes a measuring window: records its wall time per run for the current mode and picks the next mode.
    /// Mostly the faster one; every `probeInterval` windows one window of the other mode re-measures it (a busy
    /// machine can make the workers a loss: they only get CPU by taking it from the caller).
    private func endWindow(elapsed: UInt64) {
        let cost = Double(elapsed) / Double(windowRuns)
        windowRuns = 0
        if parallel { parallelCost = cost } else { soloCost = cost }
        if probing || soloCost == 0 {
            probing = false
            parallel = soloCost == 0 ? false : parallelCost <= soloCost
            windowsUntilProbe = soloCost == 0 ? 0 : Self.probeInterval
            if soloCost == 0 { probing = true }
        } else if windowsUntilProbe > 0 {
            windowsUntilProbe -= 1
        } else {
            probing = true
            parallel.toggle()
        }
    }

    /// Runs this participant's own chunks of `epoch`, then steals the unclaimed ones (last first).
    @inline(__always)
    private func work(participant: Int, epoch: Int) {
        var c = participant
        while c < chunks { tryRun(chunk: c, epoch: epoch); c += parties }
        c = chunks - 1
        while c >= 0 {
            if c % parties != participant { tryRun(chunk: c, epoch: epoch) }
            c -= 1
        }
    }

    @inline(__always)
    private func tryRun(chunk c: Int, epoch: Int) {
        let claim = slots + c * Self.stride
        guard claim.pointee.load(ordering: .relaxed) == epoch - 1,
              claim.pointee.compareExchange(expected: epoch - 1, desired: epoch, ordering: .acquiring).exchanged else { return }
        body(c)
        (claim + 1).pointee.store(epoch, ordering: .releasing)
    }

    /// Stops and joins every worker. Safe to call more than once.
    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        stopping.store(true, ordering: .sequentiallyConsistent)
        published.store(epoch + 1, ordering: .sequentiallyConsistent)
        wakeAll()
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }

    private func wakeAll() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    private func workerLoop(participant: Int) {
        var seen = 0
        while true {
            var current = published.load(ordering: .acquiring)
            var polls = 0, deadline: UInt64 = 0, parkNow = false
            while current == seen {
                polls += 1
                if polls % Self.pollsPerClockRead == 0 {
                    let t = Self.now()
                    if deadline == 0 { deadline = t + Self.workerSpinNanoseconds } else if t > deadline { parkNow = true }
                }
                if parkNow {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    current = published.load(ordering: .sequentiallyConsistent)
                    while current == seen {
                        pthread_cond_wait(condition, mutex)
                        current = published.load(ordering: .sequentiallyConsistent)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    break
                }
                current = published.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            work(participant: participant, epoch: current)
        }
    }
}

/// What a new worker thread needs: its pool and its participant index.
private final class WorkerContext {
    let pool: WorkerPool
    let participant: Int
    init(pool: WorkerPool, participant: Int) { self.pool = pool; self.participant = participant }
}

/// A fixed-size buffer of `count` values, each at the start of its own 128-byte block (a cache line and its
/// adjacent-line prefetch partner), so threads writing different elements never share a cache line.
/// The owner calls `deallocate()`; elements must be trivial (no references), as they are never deinitialized.
struct CacheLinePadded<Element>: @unchecked Sendable {
    static var blockSize: Int { (MemoryLayout<Element>.stride + 127) / 128 * 128 }
    private let base: UnsafeMutableRawPointer
    let count: Int

    init(count: Int, repeating value: Element) {
        precondition(_isPOD(Element.self), "CacheLinePadded holds trivial values only")
        self.count = count
        base = .allocate(byteCount: max(count, 1) * Self.blockSize, alignment: 128)
        for i in 0..<count { (base + i * Self.blockSize).initializeMemory(as: Element.self, to: value) }
    }

    @inline(__always)
    func pointer(_ i: Int) -> UnsafeMutablePointer<Element> {
        (base + i * Self.blockSize).assumingMemoryBound(to: Element.self)
    }

    @inline(__always)
    subscript(i: Int) -> Element {
        get { pointer(i).pointee }
        nonmutating set { pointer(i).pointee = newValue }
    }

    func deallocate() { base.deallocate() }
}
