//! How much freed memory a Ray worker keeps mapped, so that a large argument does not
//! page-fault its way in on every call.
//!
//! Ray's C++ worker copies each argument into a `msgpack::sbuffer` before RustyRay sees it. The
//! buffer doubles as it grows, so it ends at the argument's size rounded up to a power of two.
//! glibc serves a block over 32 MiB (its largest automatic `mmap` threshold) with a fresh
//! `mmap` and unmaps it when it is freed, so every call over a 64 MiB array writes into 128 MiB
//! of new pages, each faulting on its first write. That costs about three times the copy itself.
//!
//! The policy, from `RUSTYRAY_WORKER_KEEP_FREED` ([`KeepFreed`]):
//! - **unset: adaptive.** A worker changes nothing until a call brings an argument of at least
//!   [`LARGE`]. It then takes large blocks from the heap (`M_MMAP_MAX` = 0) and keeps a freed top
//!   of up to twice that argument's buffer (`M_TRIM_THRESHOLD`), at most [`CAP`]. The first
//!   such call pays the page faults, and so does the second (the heap grows to the buffer's
//!   size). From the third on, the buffer lands in memory written before. A worker thus keeps
//!   about the peak its largest argument needed, as glibc's own threshold grows with the blocks a
//!   process frees, only past glibc's 32 MiB limit. Workers that never see a large argument keep
//!   glibc's defaults.
//! - **a size:** the same two settings from the worker's start, with that threshold.
//! - **`off`:** glibc's defaults throughout.
//!
//! Elsewhere than on glibc nothing changes (a fixed size is then reported once).

use parking_lot::Mutex;

use crate::config::env::{worker_keep_freed, KeepFreed, WORKER_KEEP_FREED};

/// The smallest argument that makes an adaptive worker keep freed memory: half of glibc's
/// largest automatic `mmap` threshold, so the buffer Ray allocates for it, rounded up to a power
/// of two, is at least that threshold and would be a fresh mapping each call.
pub(crate) const LARGE: usize = 16 << 20;

/// The most an adaptive worker keeps: 1 GiB, enough for arguments up to 512 MiB.
pub(crate) const CAP: u64 = 1 << 30;

/// The worker's policy and the threshold in force (0: glibc's own).
struct State {
    policy: KeepFreed,
    threshold: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Reads the policy from the environment, once, as the worker's runtime starts, and applies a
/// fixed size. A value that is not valid is reported on the worker's error output (which Ray
/// shows the driver), and the worker keeps glibc's defaults.
pub(crate) fn start() {
    let value = std::env::var(WORKER_KEEP_FREED).ok();
    let policy = worker_keep_freed(value.as_deref()).unwrap_or_else(|error| {
        eprintln!("rustyray: {error}; this worker ignores it");
        KeepFreed::Off
    });
    let mut threshold = 0;
    if let KeepFreed::Fixed(bytes) = policy {
        if crate::os::keep_freed_heap(bytes) {
            threshold = bytes;
        } else {
            eprintln!(
                "rustyray: {WORKER_KEEP_FREED} is set, but this worker's C library (glibc is \
                 needed) did not take it; freed memory is given back as usual"
            );
        }
    }
    *STATE.lock() = Some(State { policy, threshold });
}

/// Called with a call's arguments before it runs: under the adaptive policy, an argument of at
/// least [`LARGE`] raises the threshold to what its buffer needs.
pub(crate) fn before_call(args: &[&[u8]]) {
    let Some(largest) = args.iter().map(|arg| arg.len()).max() else {
        return;
    };
    if largest < LARGE {
        return;
    }
    let mut state = STATE.lock();
    let Some(state) = state.as_mut() else {
        return;
    };
    if let Some(wanted) = raise(state.policy, state.threshold, largest) {
        // A C library that does not take it is left as it is, and not asked again.
        crate::os::keep_freed_heap(wanted);
        state.threshold = wanted;
    }
}

/// The threshold to set for an argument of `len` bytes under `policy`, with `current` in force,
/// or `None` to leave it.
fn raise(policy: KeepFreed, current: u64, len: usize) -> Option<u64> {
    if policy != KeepFreed::Adaptive || len < LARGE {
        return None;
    }
    let buffer = (len as u64).checked_next_power_of_two().unwrap_or(u64::MAX);
    let wanted = buffer.saturating_mul(2).min(CAP);
    (wanted > current).then_some(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adaptive_worker_keeps_twice_its_largest_arguments_buffer_up_to_the_cap() {
        let adaptive = KeepFreed::Adaptive;
        // Small arguments change nothing.
        assert_eq!(raise(adaptive, 0, 1000), None);
        assert_eq!(raise(adaptive, 0, LARGE - 1), None);
        // 64 MiB and a frame's header: a 128 MiB buffer, so 256 MiB kept.
        assert_eq!(raise(adaptive, 0, (64 << 20) + 40), Some(256 << 20));
        assert_eq!(raise(adaptive, 0, LARGE), Some(32 << 20));
        // Only ever raised.
        assert_eq!(raise(adaptive, 256 << 20, LARGE), None);
        assert_eq!(raise(adaptive, 256 << 20, (64 << 20) + 40), None);
        assert_eq!(raise(adaptive, 64 << 20, (64 << 20) + 40), Some(256 << 20));
        // At most the cap, however large the argument.
        assert_eq!(raise(adaptive, 0, 3 << 30), Some(CAP));
        assert_eq!(raise(adaptive, CAP, usize::MAX), None);
    }

    #[test]
    fn a_fixed_size_or_off_is_never_raised_by_arguments() {
        for policy in [KeepFreed::Fixed(256 << 20), KeepFreed::Off] {
            assert_eq!(raise(policy, 0, 64 << 20), None);
            assert_eq!(raise(policy, 256 << 20, 1 << 30), None);
        }
    }
}
