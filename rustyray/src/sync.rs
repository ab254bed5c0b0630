//! The synchronisation primitives of the protocols that are model-checked with `loom`.
//!
//! Normally these are `parking_lot`'s locks and `std`'s atomics and threads. Built with
//! `--cfg rustyray_loom` (the library's tests only: `.ci/loom` passes it to rustyray alone, with
//! `cargo rustc`), they are loom's, so the models beside the code (the `loom` test modules)
//! explore every interleaving of the real code. The API is
//! `parking_lot`'s (no poisoning; `Condvar::wait_for` takes the guard by reference).

#[cfg(not(rustyray_loom))]
mod imp {
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
    pub(crate) use std::sync::atomic;
    pub(crate) use std::thread;

    /// `std::thread_local!` with `const` initializers (loom's takes plain expressions).
    macro_rules! thread_locals {
        ($($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;)*) => {
            std::thread_local! { $($(#[$attr])* static $name: $t = const { $init };)* }
        };
    }
    pub(crate) use thread_locals;
}

#[cfg(rustyray_loom)]
#[allow(dead_code)] // what the models use differs from what the library uses
mod imp {
    pub(crate) use loom::sync::atomic;
    pub(crate) use loom::thread;
    use std::time::Duration;

    /// loom's `thread_local!`, so each modelled thread has its own.
    macro_rules! thread_locals {
        ($($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;)*) => {
            loom::thread_local! { $($(#[$attr])* static $name: $t = $init;)* }
        };
    }
    pub(crate) use thread_locals;

    /// loom's mutex with `parking_lot`'s API.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`]; an `Option` so a condition variable can take it while waiting.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().expect("no model panics while locked")))
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().expect("no model panics while locked")
        }
    }

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("held")
        }
    }

    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("held")
        }
    }

    /// loom's condition variable with `parking_lot`'s API. A timed wait is a wait that may end
    /// without a notification: loom explores both.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    /// Whether a timed wait ended without a notification.
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let held = guard.0.take().expect("held");
            guard.0 = Some(self.0.wait(held).expect("no model panics while locked"));
        }

        pub(crate) fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            timeout: Duration,
        ) -> WaitTimeoutResult {
            let held = guard.0.take().expect("held");
            let (held, result) = self
                .0
                .wait_timeout(held, timeout)
                .expect("no model panics while locked");
            guard.0 = Some(held);
            WaitTimeoutResult(result.timed_out())
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }
}

pub(crate) use imp::*;

/// A pair of fences that orders like two `SeqCst` fences, with the cost on one side: `light` on
/// a path taken at every step (a compiler fence where the OS offers `membarrier`), `heavy` on
/// a path taken rarely, such as a thread about to sleep (a `membarrier` system call, about
/// 0.3 µs here). Elsewhere both are `SeqCst` fences (`swmr-barrier` decides at start-up). In the
/// loom models, both are `SeqCst` fences, which is what they promise.
pub(crate) mod asymmetric {
    /// The cheap side: pairs with [`heavy`].
    #[inline]
    pub(crate) fn light() {
        #[cfg(not(rustyray_loom))]
        swmr_barrier::light_barrier();
        #[cfg(rustyray_loom)]
        loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }

    /// The costly side: pairs with [`light`].
    pub(crate) fn heavy() {
        #[cfg(not(rustyray_loom))]
        swmr_barrier::heavy_barrier();
        #[cfg(rustyray_loom)]
        loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs a loom model, exploring interleavings with at most `preemptions` forced switches per
/// execution (tests only).
#[cfg(all(test, rustyray_loom))]
pub(crate) fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(f);
}
