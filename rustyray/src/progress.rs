//! Progress bars for waiting on many refs: opt in by calling these instead of `get_all` or a
//! `wait` loop.
//!
//! The bar is drawn on stderr with `indicatif`, only when stderr is a terminal: piped into a
//! file or a CI log, it draws nothing. It advances as objects resolve (each completion wakes
//! the waiting thread; nothing polls), and is cleared when all are done.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Result;
use crate::object_ref::ObjectRef;
use crate::object_store::Value;
use crate::runtime;

/// Like [`get_all`](crate::get_all), with a progress bar labelled `label` while the objects
/// resolve.
///
/// ```
/// #[rustyray::remote]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> rustyray::Result<()> {
/// # let rt = rustyray::Runtime::new(rustyray::Config::default())?;
/// # let _guard = rt.enter();
/// let refs: Vec<_> = (0..100).map(square::remote).collect();
/// let squares = rustyray::get_all_with_progress(&refs, "squares")?;
/// assert_eq!(squares[9], 81);
/// # Ok(())
/// # }
/// ```
pub fn get_all_with_progress<T: Value + Clone>(
    refs: &[ObjectRef<T>],
    label: &str,
) -> Result<Vec<T>> {
    wait_with_progress(refs, label);
    crate::get_all(refs)
}

/// Waits until every one of `refs` is resolved (ready or failed), with a progress bar labelled
/// `label`; fetches nothing. Use it to follow tasks whose results stay in the store, such as
/// the inputs of a reduction that is already submitted.
pub fn wait_with_progress<T>(refs: &[ObjectRef<T>], label: &str) {
    let bar = new_bar(refs.len(), label, ProgressDrawTarget::stderr());
    wait_reporting(refs, |done| bar.set_position(done as u64));
    bar.finish_and_clear();
}

/// A bar for `len` objects drawn to `target` (hidden when the target is not a terminal).
fn new_bar(len: usize, label: &str, target: ProgressDrawTarget) -> ProgressBar {
    let style = ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} ({per_sec}, {eta})")
        .expect("a valid template");
    ProgressBar::with_draw_target(Some(len as u64), target)
        .with_style(style)
        .with_prefix(label.to_owned())
}

/// Waits for all of `refs`, calling `progress` with how many are resolved as that grows.
fn wait_reporting<T>(refs: &[ObjectRef<T>], progress: impl FnMut(usize)) {
    let shared = runtime::current();
    shared.backend().wait_reporting(&shared, refs, progress);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Runtime};

    #[test]
    fn progress_counts_up_to_all() {
        let rt = Runtime::new(Config::default().num_cpus(2)).unwrap();
        let _guard = rt.enter();
        let refs: Vec<ObjectRef<u64>> = (0..200u64)
            .map(|i| {
                let mut task = crate::task::TaskBuilder::new("sleepy");
                let i = task.arg(i);
                task.spawn(move || {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    Ok(i.get()?)
                })
            })
            .collect();
        let mut seen = Vec::new();
        wait_reporting(&refs, |done| seen.push(done));
        assert_eq!(seen.last(), Some(&200));
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        let values = get_all_with_progress(&refs, "sleepy").unwrap();
        assert_eq!(values.iter().sum::<u64>(), (0..200u64).sum::<u64>());
    }
}
