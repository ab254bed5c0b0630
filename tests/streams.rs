//! Streaming tasks: items as objects while the producer runs, errors, backpressure, drop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use rustyray::{Config, Error, ObjectRef, Runtime};

fn runtime() -> Runtime {
    Runtime::new(Config::default().num_cpus(2)).unwrap()
}

#[rustyray::remote(streaming)]
fn count_to(n: u64) -> impl Iterator<Item = u64> {
    1..=n
}

#[rustyray::remote]
fn double(x: u64) -> u64 {
    x * 2
}

#[test]
fn items_arrive_in_order_and_feed_other_tasks() {
    let rt = runtime();
    let _guard = rt.enter();
    let doubled: Vec<ObjectRef<u64>> = count_to::remote(5).map(double::remote).collect();
    assert_eq!(rustyray::get_all(&doubled).unwrap(), [2, 4, 6, 8, 10]);
}
