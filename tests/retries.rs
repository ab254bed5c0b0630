//! 100k tasks, 10% of which panic on their first tries: with `max_retries = 5` every result is
//! correct. In its own binary because it installs a panic hook that silences the injected
//! panics (20k of them would otherwise flood the output).
mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use rustyray::task::TaskBuilder;
use rustyray::ObjectRef;

const INJECTED: &str = "injected failure";

#[test]
fn a_hundred_thousand_tasks_with_ten_percent_panics_all_succeed_with_retries() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&INJECTED) {
            default_hook(info);
        }
    }));
    let rt = common::runtime(2);
    let _g = rt.enter();
    const N: usize = 100_000;
    let tries: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    let refs: Vec<ObjectRef<u64>> = (0..N)
        .map(|i| {
            let tries = tries.clone();
            TaskBuilder::new("flaky").max_retries(5).spawn(move || {
                let attempt = tries[i].fetch_add(1, Ordering::Relaxed) + 1;
                // Every tenth task panics on its first two tries.
                if i % 10 == 0 && attempt <= 2 {
                    std::panic::panic_any(INJECTED);
                }
                Ok(i as u64 * 3)
            })
        })
        .collect();
    let values = rustyray::get_all(&refs).unwrap();
    assert!(values.iter().enumerate().all(|(i, v)| *v == i as u64 * 3));
    let retried = tries
        .iter()
        .filter(|t| t.load(Ordering::Relaxed) == 3)
        .count();
    assert_eq!(
        retried,
        N / 10,
        "each injected task ran exactly three times"
    );
}
