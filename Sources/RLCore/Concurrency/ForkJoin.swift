import Dispatch

/// Two independent pieces of work run at the same time, one on the calling thread and one on a pool thread.
///
/// The training loops use it where a step splits into halves that share no mutable state — the separate policy and
/// value networks of an actor-critic (their losses are differentiated independently; the gradients are exactly those
/// of the summed loss), or DQN's target-network pass beside the online network's forward pass. Each half computes
/// exactly what it would on one thread, so results are bit-identical to running them one after the other.
public enum ForkJoin {
    /// Whether `both` may use a second thread (default true). With false it runs `first`, then `second`, on the
    /// calling thread: the same results, one core.
    nonisolated(unsafe) public static var isParallel = true

    /// Runs `first` and `second` concurrently and returns both results. The two closures must not write to memory
    /// the other reads or writes; the tensors they create are their own, and shared inputs are only read.
    public static func both<A, B>(_ first: () -> A, _ second: () -> B) -> (A, B) {
        guard isParallel else { return (first(), second()) }
        var a: A?, b: B?
        withoutActuallyEscaping(first) { first in
            withoutActuallyEscaping(second) { second in
                let work = UncheckedPair(first: first, second: second)
                let results = UncheckedResults<A, B>()
                DispatchQueue.concurrentPerform(iterations: 2) { i in
                    if i == 0 { results.a = work.first() } else { results.b = work.second() }
                }
                a = results.a; b = results.b
            }
        }
        return (a!, b!)
    }
}

/// The two closures, handed to the pool threads (the caller guarantees they are independent).
private struct UncheckedPair<A, B>: @unchecked Sendable {
    let first: () -> A
    let second: () -> B
}

/// Where each thread leaves its result; each slot is written by one thread and read after the join.
private final class UncheckedResults<A, B>: @unchecked Sendable {
    var a: A?
    var b: B?
}
