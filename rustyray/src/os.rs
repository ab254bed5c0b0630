//! The few calls into the C library outside the Ray backend's FFI (`ray/ffi.rs`), each wrapped
//! in a safe function: the only other place `unsafe` code is allowed. Like `error`, this module
//! imports nothing of the crate, so every layer may use it.

/// Hands the allocator's free pages back to the operating system (glibc's `malloc_trim(0)`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn malloc_trim() {
    // SAFETY: `malloc_trim` takes no pointers and only rearranges glibc's own free lists under
    // its arena locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The effective user id of this process.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn effective_user() -> u32 {
    // SAFETY: `geteuid` takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes glibc keep up to `bytes` of freed memory mapped (a Ray worker's: see
/// `ray/kept_memory.rs`): large blocks come from the heap instead of a
/// fresh `mmap` each (`M_MMAP_MAX` 0), and the heap's free top is given back only beyond
/// `bytes` (`M_TRIM_THRESHOLD`). A large argument's buffer, which Ray's C++ worker allocates
/// for every call, then lands in memory written before instead of page-faulting every page.
/// Whether glibc took both settings (`bytes` must fit an `int`).
#[cfg(all(target_os = "linux", target_env = "gnu", feature = "ray"))]
#[allow(unsafe_code)]
pub(crate) fn keep_freed_heap(bytes: u64) -> bool {
    let Ok(threshold) = libc::c_int::try_from(bytes) else {
        return false;
    };
    // SAFETY: `mallopt` takes two integers and only changes glibc's allocation parameters
    // under its own lock; it is safe to call from any thread at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, threshold) == 1
    }
}

/// Elsewhere than on glibc there is no such setting: nothing is changed.
#[cfg(all(not(all(target_os = "linux", target_env = "gnu")), feature = "ray"))]
pub(crate) fn keep_freed_heap(_bytes: u64) -> bool {
    false
}
