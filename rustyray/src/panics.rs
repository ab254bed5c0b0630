//! Panics of task bodies and actor methods: caught, and reported once.
//!
//! A panic in a body becomes the task's [`Error::TaskFailed`](crate::Error) (with the panic's
//! message and where it happened) and one `tracing` event. Rust's panic hook would print it
//! too, with its backtrace: for a job with many injected failures, that is a flood of
//! messages about failures already handled. So the first runtime installs a hook, chained to
//! the one it finds, that stays silent for a panic raised inside [`catch`] or
//! [`catch_async`] when the runtime is quiet (`Config::print_task_panics(false)`, the
//! default). Every other panic (the user's own threads, RustyRay itself outside a body)
//! reaches the previous hook unchanged. A hook the user installs later replaces this one, and
//! is then called for every panic, as they asked.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, UnwindSafe};
use std::sync::Once;

use futures_util::FutureExt;

thread_local! {
    /// Inside a body: `Some(print)`, whether its panics are printed too.
    static CATCHING: Cell<Option<bool>> = const { Cell::new(None) };
    /// Where the last panic caught in a body of this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook, once per process.
pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // `try_with`: the hook may run while this thread's locals are being destroyed.
            let catching = CATCHING.try_with(Cell::get).ok().flatten();
            if let Some(print) = catching {
                let location = info.location().map(ToString::to_string);
                let _ = LOCATION.try_with(|l| {
                    if let Ok(mut kept) = l.try_borrow_mut() {
                        *kept = location;
                    }
                });
                if !print {
                    return;
                }
            }
            previous(info);
        }));
    });
}

/// Where the panic just caught in a body on this thread happened, if the hook saw it.
pub(crate) fn take_location() -> Option<String> {
    LOCATION.with(|l| l.borrow_mut().take())
}

/// Marks this thread as running a body until dropped.
struct Catching(Option<bool>);

impl Catching {
    fn enter(print: bool) -> Catching {
        // The location is not cleared here (a hot path): it is set by every panic the hook
        // sees in a body and taken right after the panic is caught.
        Catching(CATCHING.with(|c| c.replace(Some(print))))
    }
}

impl Drop for Catching {
    fn drop(&mut self) {
        CATCHING.with(|c| c.set(self.0));
    }
}

/// Runs a body, catching its panic; `print` says whether the panic hook prints it too.
pub(crate) fn catch<R>(
    print: bool,
    body: impl FnOnce() -> R + UnwindSafe,
) -> std::thread::Result<R> {
    let _catching = Catching::enter(print);
    std::panic::catch_unwind(body)
}

/// [`catch`] for a future: every poll of `body` runs marked, and its panic is caught.
pub(crate) async fn catch_async<F: Future>(print: bool, body: F) -> std::thread::Result<F::Output> {
    let mut caught = std::pin::pin!(AssertUnwindSafe(body).catch_unwind());
    std::future::poll_fn(|cx| {
        let _catching = Catching::enter(print);
        caught.as_mut().poll(cx)
    })
    .await
}
