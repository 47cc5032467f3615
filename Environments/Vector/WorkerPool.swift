#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Persistent worker threads that help the calling thread run one job split into `chunks` independent pieces;
/// `run(job)` returns when every chunk is done. Each chunk's `body` returns a word, read back with `result(of:)`.
/// When the caller runs the job alone (below), it does it in one piece if the owner gave a `whole` body.
///
/// Built for per-step synchronization of vector environments, where a batch step takes microseconds and a
/// dispatch per step would cost more than the work:
/// - `run(job)` publishes a new *epoch* (an atomic counter) with the job (a small plain value) in the same cache
///   line, so a worker gets both in one transfer. A worker reads the job only after claiming a chunk of that epoch,
///   so it never reads a job while the caller writes the next one. Other inputs written before the epoch's
///   release store are visible to every thread that observes the epoch (acquire).
/// - Chunk c belongs to participant c % parties (the caller is participant 0), so a sub-environment's memory
///   normally stays in one core's cache from step to step. The caller runs its own chunks without ceremony (it is
///   always running, nobody else takes them). A worker's chunk is *claimed* by compare-and-swap of its slot from
///   epoch − 1 to epoch — by its worker, or, once the caller (or another worker) has finished its own chunks, by
///   whoever finds it still unclaimed — and marked done by storing the epoch in its done word. So the step never
///   waits for a thread that has not started (a busy machine); it only waits for chunks in progress. `lastOutcome`
///   tells the owner which side finished first, to size the chunks.
/// - Few cache lines change hands per step: the epoch and job (the caller writes them, workers read them), and each
///   worker chunk's done mark and result (its worker writes them, the caller reads them); its claim word moves only
///   when the caller finds the chunk unfinished. Each sits in its own 128-byte block (a cache line and its
///   adjacent-line prefetch partner), apart from everything else.
/// - Idle workers spin on the epoch for `workerSpinNanoseconds` (100 µs), then park on a condition variable.
///   Parking and waking use a Dekker-style handshake (`sleepers` against the epoch, sequentially consistent), so a
///   wake-up is never lost and the caller takes the mutex only when someone is actually parked. The caller checks
///   `sleepers` after its own chunks: its epoch store has left the store buffer by then, so the fence is free, and
///   a parked worker is too slow to wake for its share anyway (the caller takes it).
/// - The caller spins up to `callerSpinNanoseconds` (20 µs) on chunks in progress, then yields its time slice.
/// - The pool measures the wall time per run in windows of ≥ 10 ms, with and without the workers, and keeps the
///   faster mode, re-probing the other one window in 17. On a machine busy with other work the threads only get
///   about one core between them, and the caller alone is faster; the workers then stay parked.
///
/// `shutdown()` (idempotent) stops and joins every worker; the owner must call it (the workers keep the pool
/// alive while they run, so it cannot rely on its own `deinit`).
final class WorkerPool<Job: BitwiseCopyable>: @unchecked Sendable {
    /// Threads taking part, the caller included.
    let parties: Int
    /// Independent pieces of each job.
    let chunks: Int
    private let body: @Sendable (Job, Int) -> Int
    /// Every chunk's work in one call on the calling thread, returning chunk 0's word (the others' are then 0).
    private let whole: ((Job) -> Int)?
    /// Words shared by all threads, each at the start of its own 128-byte block: `published` (the epoch of the
    /// current job, which follows it in the same block), `sleepers` (workers parked or about to park) and
    /// `stopping` (1 once `shutdown` began).
    private let shared: UnsafeMutablePointer<Atomic<Int>>
    private var published: UnsafePointer<Atomic<Int>> { UnsafePointer(shared) }
    private var sleepers: UnsafePointer<Atomic<Int>> { UnsafePointer(shared + Self.stride) }
    private var stopping: UnsafePointer<Atomic<Int>> { UnsafePointer(shared + 2 * Self.stride) }
    /// Per chunk c, two blocks: `claim(c)`, the last epoch that claimed it, and `done(c)`, the last epoch that
    /// finished it followed by its result (claim and done for the workers' chunks only). Apart, because the caller
    /// reads the done mark every run but the claim only when the chunk is not done yet: a worker that keeps ahead
    /// keeps its claim word in its own cache.
    private let slots: UnsafeMutablePointer<Atomic<Int>>
    private func claim(_ c: Int) -> UnsafeMutablePointer<Atomic<Int>> { slots + 2 * c * Self.stride }
    private func done(_ c: Int) -> UnsafeMutablePointer<Atomic<Int>> { slots + (2 * c + 1) * Self.stride }

    /// How the last `run` went, seen from the caller.
    enum Outcome {
        /// The caller ran every chunk (one thread, shut down, or the pool found the workers not worth it).
        case solo
        /// Every worker chunk was done when the caller finished its own: the caller is the slower side.
        case workersFirst
        /// The caller waited for a worker chunk in progress: the workers are the slower side.
        case callerWaited
        /// The caller took (some of) the workers' chunks: a worker was late (descheduled or parked).
        case callerTook
    }
    /// How the last `run` went (for balancing the chunks' sizes).
    private(set) var lastOutcome = Outcome.solo
    private static var stride: Int { 16 } // 128 bytes: a cache line (and its adjacent-line prefetch partner) per block
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
    static var windowNanoseconds: UInt64 { 10_000_000 }
    static var windowCheck: Int { 64 }
    static var probeInterval: Int { 16 }

    /// How long an idle worker spins on the epoch before it parks.
    static var workerSpinNanoseconds: UInt64 { 100_000 }
    /// How long the caller spins on a chunk in progress before it yields its time slice.
    static var callerSpinNanoseconds: UInt64 { 20_000 }
    /// Polls between two looks at the clock while spinning.
    static var pollsPerClockRead: Int { 128 }

    /// A monotonic clock in nanoseconds (vDSO: tens of ns, read only every `pollsPerClockRead` polls).
    @inline(__always)
    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    /// Starts `parties - 1` worker threads that will, with the caller, run `body(job, chunk)` for chunks
    /// 0..<chunks on each `run(job)`. `whole(job)`, if given, must do what the chunks do together, returning
    /// chunk 0's word as if the others had returned 0: the caller runs it instead of the chunks one by one when it
    /// runs the job alone (a small job pays a fixed cost per piece).
    init(parties: Int, chunks: Int, body: @escaping @Sendable (Job, Int) -> Int, whole: ((Job) -> Int)? = nil) {
        precondition(parties >= 1 && chunks >= 1, "bad worker pool size \(parties)/\(chunks)")
        precondition(MemoryLayout<Job>.size <= (Self.stride - 1) * MemoryLayout<Int>.stride && MemoryLayout<Job>.alignment <= 8,
                     "a worker pool job must fit in its cache-line block")
        self.parties = parties
        self.chunks = chunks
        self.body = body
        self.whole = whole
        slots = Self.allocateWords(2 * chunks * Self.stride)
        shared = Self.allocateWords(3 * Self.stride)
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for participant in 1..<parties {
            let context = Unmanaged.passRetained(WorkerContext { self.workerLoop(participant: participant) }).toOpaque()
            #if canImport(Glibc)
            var thread = pthread_t()
            #else
            var thread: pthread_t?
            #endif
            let status = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.main()
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

    /// `count` zeroed atomic words, 128-byte aligned.
    private static func allocateWords(_ count: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Int>.stride, alignment: 128)
        let words = raw.bindMemory(to: Atomic<Int>.self, capacity: count)
        for i in 0..<count { (words + i).initialize(to: Atomic(0)) }
        return words
    }

    deinit {
        slots.deinitialize(count: 2 * chunks * Self.stride)
        UnsafeMutableRawPointer(slots).deallocate()
        shared.deinitialize(count: 3 * Self.stride)
        UnsafeMutableRawPointer(shared).deallocate()
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// The word chunk c's `body` returned in the last `run` (read on the calling thread after `run`).
    func result(of c: Int) -> Int { done(c)[1].load(ordering: .relaxed) }

    @inline(__always)
    private func runHere(_ job: Job, chunk c: Int) {
        done(c)[1].store(body(job, c), ordering: .relaxed)
    }

    /// Runs every chunk on the calling thread: in one piece with `whole`, otherwise one by one.
    private func runAlone(_ job: Job) {
        guard let whole else {
            for c in 0..<chunks { runHere(job, chunk: c) }
            return
        }
        done(0)[1].store(whole(job), ordering: .relaxed)
        for c in 1..<chunks { done(c)[1].store(0, ordering: .relaxed) }
    }

    /// The job of the current epoch, stored right after the epoch word.
    private var jobAddress: UnsafeMutableRawPointer { UnsafeMutableRawPointer(shared + 1) }

    /// Runs `body(job, c)` once for every chunk c, on the calling thread and the workers; returns when all are
    /// done. Not reentrant: one `run` at a time. After `shutdown()` the caller runs every chunk itself.
    func run(_ job: Job) {
        lastOutcome = .solo
        guard parties > 1, !isShutDown else { return runAlone(job) }
        if windowRuns == 0 { windowStart = Self.now() }
        windowRuns += 1
        if windowRuns % Self.windowCheck == 0 {
            let elapsed = Self.now() - windowStart
            if elapsed >= Self.windowNanoseconds { endWindow(elapsed: elapsed) }
        }
        // The slots keep their epoch: every chunk is still "claimed and done" for it.
        guard parallel else { return runAlone(job) }
        epoch += 1
        jobAddress.storeBytes(of: job, as: Job.self)
        published.pointee.store(epoch, ordering: .releasing)
        var c = 0
        while c < chunks { runHere(job, chunk: c); c += parties }
        // Dekker with `workerLoop`'s parking: the epoch store above, then this load, in one total order.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if sleepers.pointee.load(ordering: .relaxed) > 0 { wakeAll() }
        // The workers' chunks: those done are done; take those still unclaimed (last first: workers go first to
        // last); wait for the rest.
        lastOutcome = .workersFirst
        c = chunks - 1
        while c > 0 {
            if c % parties != 0 && done(c)[0].load(ordering: .acquiring) != epoch {
                if tryRun(chunk: c, epoch: epoch) { lastOutcome = .callerTook } else if lastOutcome == .workersFirst { lastOutcome = .callerWaited }
            }
            c -= 1
        }
        var yielding = false
        var polls = 0, deadline: UInt64 = 0
        for c in 0..<chunks where c % parties != 0 {
            while done(c)[0].load(ordering: .acquiring) != epoch {
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

    /// A worker's share of `epoch`: its own chunks, then the other workers' chunks still unclaimed (last first).
    /// The caller's chunks are the caller's alone.
    @inline(__always)
    private func work(participant: Int, epoch: Int) {
        var c = participant
        while c < chunks { tryRun(chunk: c, epoch: epoch); c += parties }
        guard parties > 2 else { return }
        c = chunks - 1
        while c > 0 {
            if c % parties != participant && c % parties != 0 { tryRun(chunk: c, epoch: epoch) }
            c -= 1
        }
    }

    /// Runs chunk c of `epoch` if nobody has claimed it yet; whether it did.
    @inline(__always)
    @discardableResult
    private func tryRun(chunk c: Int, epoch: Int) -> Bool {
        let claim = claim(c), done = done(c)
        guard claim.pointee.load(ordering: .relaxed) == epoch - 1,
              claim.pointee.compareExchange(expected: epoch - 1, desired: epoch, ordering: .acquiring).exchanged else { return false }
        // Claimed for this epoch: the caller is still in `run`, so the job in the block is this epoch's and stays put.
        done[1].store(body(jobAddress.load(as: Job.self), c), ordering: .relaxed)
        done[0].store(epoch, ordering: .releasing)
        return true
    }

    /// Stops and joins every worker. Safe to call more than once.
    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        stopping.pointee.store(1, ordering: .sequentiallyConsistent)
        published.pointee.store(epoch + 1, ordering: .sequentiallyConsistent)
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
            var current = published.pointee.load(ordering: .acquiring)
            var polls = 0, deadline: UInt64 = 0, parkNow = false
            while current == seen {
                polls += 1
                if polls % Self.pollsPerClockRead == 0 {
                    let t = Self.now()
                    if deadline == 0 { deadline = t + Self.workerSpinNanoseconds } else if t > deadline { parkNow = true }
                }
                if parkNow {
                    pthread_mutex_lock(mutex)
                    sleepers.pointee.add(1, ordering: .sequentiallyConsistent)
                    current = published.pointee.load(ordering: .sequentiallyConsistent)
                    while current == seen {
                        pthread_cond_wait(condition, mutex)
                        current = published.pointee.load(ordering: .sequentiallyConsistent)
                    }
                    sleepers.pointee.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    break
                }
                current = published.pointee.load(ordering: .acquiring)
            }
            seen = current
            if stopping.pointee.load(ordering: .acquiring) != 0 { return }
            work(participant: participant, epoch: current)
        }
    }
}

/// What a new worker thread runs (its pool's worker loop, which keeps the pool alive until it returns).
private final class WorkerContext {
    let main: () -> Void
    init(_ main: @escaping () -> Void) { self.main = main }
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
