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

use std::future::Future;
use std::panic::{AssertUnwindSafe, UnwindSafe};
use std::sync::Once;

use futures_util::FutureExt;

use crate::context;

/// Installs the hook, once per process.
pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // While the thread's context is torn down, `with` finds nothing caught.
            let catching = context::with(|cx| cx.catching.get());
            if let Some(print) = catching {
                let location = info.location().map(ToString::to_string);
                context::with(|cx| {
                    if let Ok(mut kept) = cx.panic_location.try_borrow_mut() {
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
    context::with(|cx| cx.panic_location.borrow_mut().take())
}

/// Marks this thread as running a body until dropped.
struct Catching(Option<bool>);

impl Catching {
    fn enter(print: bool) -> Catching {
        // The location is not cleared here (a hot path): it is set by every panic the hook
        // sees in a body and taken right after the panic is caught.
        Catching(context::with(|cx| cx.catching.replace(Some(print))))
    }
}

impl Drop for Catching {
    fn drop(&mut self) {
        context::with(|cx| cx.catching.set(self.0));
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
