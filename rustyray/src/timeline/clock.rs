//! The timeline's clock: one reading per task or call run, so it must be cheap.
//!
//! Where the kernel itself keeps time with the CPU's time-stamp counter (Linux on x86-64
//! reports `tsc` as its clock source only once it has found the counter constant-rate and
//! synchronized across cores), a reading is one `rdtsc`: about 11 ns here, against 26 ns for
//! `Instant::now` through the vDSO. Ticks become nanoseconds only on export, scaled by the
//! ticks and the monotonic nanoseconds that passed between the clock's start and the export.
//! Anywhere else a reading is the monotonic clock's nanoseconds since the clock's start.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A clock reading: 8 bytes, ordered, comparable only with readings of the same process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// The reading as a word, to store.
    pub(super) fn raw(self) -> u64 {
        self.0
    }

    /// A reading stored with [`raw`](Self::raw).
    pub(super) fn from_raw(raw: u64) -> Stamp {
        Stamp(raw)
    }
}

/// Where readings come from, and the clock's start in both units.
struct Source {
    tsc: bool,
    start: Instant,
    start_ticks: u64,
}

fn source() -> &'static Source {
    static SOURCE: OnceLock<Source> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let tsc = kernel_uses_tsc();
        Source {
            tsc,
            start: Instant::now(),
            start_ticks: if tsc { ticks() } else { 0 },
        }
    })
}

/// Whether the kernel's clock source is the time-stamp counter.
fn kernel_uses_tsc() -> bool {
    cfg!(all(target_os = "linux", target_arch = "x86_64"))
        && std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|source| source.trim() == "tsc")
}

#[cfg(target_arch = "x86_64")]
fn ticks() -> u64 {
    safe_arch::read_timestamp_counter()
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    unreachable!("the time-stamp counter is used on x86-64 only")
}

/// Starts the clock if it has not started (so the trace's zero precedes every reading).
pub(crate) fn start() {
    source();
}

/// The time now.
#[inline]
pub(crate) fn now() -> Stamp {
    let source = source();
    if source.tsc {
        Stamp(ticks())
    } else {
        Stamp(source.start.elapsed().as_nanos() as u64)
    }
}

/// Turns readings into times, at the rate measured from the clock's start to its own making.
pub(crate) struct Scale {
    start_ticks: u64,
    /// Nanoseconds per unit of a reading.
    rate: f64,
}

impl Scale {
    pub(crate) fn now() -> Scale {
        let source = source();
        if !source.tsc {
            return Scale {
                start_ticks: 0,
                rate: 1.0,
            };
        }
        let (elapsed, ticks) = (source.start.elapsed(), ticks() - source.start_ticks);
        Scale {
            start_ticks: source.start_ticks,
            rate: if ticks == 0 {
                1.0
            } else {
                elapsed.as_nanos() as f64 / ticks as f64
            },
        }
    }

    /// One nanosecond per unit, from a reading of zero (for tests of what stores readings).
    #[cfg(test)]
    pub(super) fn identity() -> Scale {
        Scale {
            start_ticks: 0,
            rate: 1.0,
        }
    }

    /// The time from the clock's start (the trace's zero) to `at`.
    pub(crate) fn since_start(&self, at: Stamp) -> Duration {
        self.between(Stamp(self.start_ticks), at)
    }

    /// The time from `from` to `to` (zero if `to` is earlier).
    pub(crate) fn between(&self, from: Stamp, to: Stamp) -> Duration {
        Duration::from_nanos((to.0.saturating_sub(from.0) as f64 * self.rate) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_scale_to_the_monotonic_clocks_time() {
        let (before, first) = (Instant::now(), now());
        std::thread::sleep(Duration::from_millis(20));
        let (second, after) = (now(), Instant::now());
        let scale = Scale::now();
        let measured = scale.between(first, second);
        // Within the time the two monotonic readings bracket, with a little slack for the
        // rate's own measurement.
        assert!(measured >= Duration::from_millis(19), "{measured:?}");
        assert!(
            measured <= after - before + Duration::from_millis(1),
            "{measured:?}"
        );
        assert!(scale.since_start(second) >= scale.since_start(first));
        assert_eq!(scale.between(second, first), Duration::ZERO);
    }
}
