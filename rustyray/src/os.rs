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
