//! Giving freed heap memory back to the operating system after a burst of tasks.
//!
//! # Why
//!
//! A burst of N tasks holds N pending tasks' memory at its peak (the task's control block, its
//! queued start, its result cell). glibc's `malloc` keeps freed memory for reuse and returns it
//! to the system only from the top of each heap, so a process keeps the resident size of its
//! highest peak, and a later burst that happens to lay its objects out differently raises that
//! mark again. Over 50M tasks in batches of 500k, that made the resident size end 0–42% above
//! its value after the first 2.5M tasks, depending on the run, although the memory in use was
//! the same after every batch.
//!
//! # What the runtime does
//!
//! When the scheduler becomes idle (nothing running, nothing queued) after at least
//! [`RELEASE_AFTER_TASKS`] tasks finished since it last did so, the thread that finished the
//! last task calls [`release_free_memory`] (glibc's `malloc_trim(0)`, which hands every free
//! page back with `madvise`). It costs about 2 ms after a burst of 500k tasks (4 ns a task) and
//! nothing in between; `Config::release_memory_when_idle(false)` turns it off. Elsewhere than
//! Linux with glibc it does nothing: other allocators (musl's, jemalloc, mimalloc) return
//! memory on their own.

/// How many tasks must finish between two releases.
pub(crate) const RELEASE_AFTER_TASKS: u64 = 1 << 16;

/// Hands the allocator's free pages back to the operating system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn release_free_memory() {
    crate::os::malloc_trim();
}

/// Hands the allocator's free pages back to the operating system (nothing to do here).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_memory() {}
