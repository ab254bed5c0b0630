//! Lingering: a thread about to park watches for what it waits for a few microseconds first.
//!
//! A sync task's round trip (a caller submits it, then blocks in `get`) hands work between two
//! threads twice: the caller's task to a pool thread, the result back. When both park as soon
//! as they have nothing to do, each hand-off is a futex wake-up, and on these 2-core virtual
//! machines a wake-up takes 30–90 µs while the no-op task itself takes about one. So the two
//! threads that hand work back and forth linger before they park: a pool thread that finds the
//! queue empty ([`cpu_pool`](crate::cpu_pool)), staying counted as on its way to the queue so
//! that a job queued meanwhile wakes no one; and a caller whose `get`, `get_all` or `wait` finds
//! what it needs still pending (`runtime/blocking.rs`), which watches the one word its wait
//! counts down (not the objects' locks, which the resolving thread needs). Each watches for at
//! most [`LINGER`], spinning and yielding the thread every few microseconds (so that on a
//! machine with more runnable threads than cores the lingering thread gives way), then parks as
//! before.
//!
//! Measured with a loop of `get(&nop::remote())` in a 2-CPU runtime, alternating builds: 2.1–2.2
//! µs a round trip and 171–4,671 context switches for 80,000 of them, against 33–53 µs and
//! 160,000 (two per round trip) without lingering. crossbeam's `Backoff`, which the stream
//! consumer uses, gives up after about 3 µs here: too soon for most answers (105,000–125,000
//! context switches, and round trips of 30–44 µs). The cost is at most [`LINGER`] of one core
//! each time a thread runs out of work.

use std::time::{Duration, Instant};

/// How long a thread lingers before it parks.
pub(crate) const LINGER: Duration = Duration::from_micros(20);

/// How many spins between two yields of the thread (about 3 µs).
const SPINS_PER_YIELD: u32 = 64;

/// Watches `ready` for at most [`LINGER`]; whether it became true.
pub(crate) fn until(mut ready: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + LINGER;
    let mut spins = 0u32;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        spins += 1;
        if spins % SPINS_PER_YIELD == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}
