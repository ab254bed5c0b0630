//! `as_completed`: refs in the order their objects resolve, as an iterator and a stream.

mod common;

use common::gates::{open, wait_at};
use rustyray::{Config, Error, ObjectRef, Runtime};

#[rustyray::remote]
fn after_gate(gate: u64) -> u64 {
    wait_at(gate);
    gate
}

#[rustyray::remote]
fn fails() -> anyhow::Result<u64> {
    anyhow::bail!("on purpose")
}

fn runtime() -> Runtime {
    Runtime::new(Config::default().num_cpus(4)).unwrap()
}

#[test]
fn refs_come_in_the_order_their_objects_resolve() {
    let rt = runtime();
    let _in = rt.enter();
    let mut refs: Vec<ObjectRef<u64>> = (100..103).map(after_gate::remote).collect();
    refs.push(rustyray::put(7).unwrap()); // resolved already: first
    let mut done = rustyray::as_completed(&refs);
    assert_eq!(done.size_hint(), (4, Some(4)));
    assert_eq!(done.next().unwrap().id(), refs[3].id());
    for (gate, index) in [(102, 2), (100, 0), (101, 1)] {
        open(gate);
        let next = done.next().unwrap();
        assert_eq!(next.id(), refs[index].id(), "gate {gate}");
        assert_eq!(rustyray::get(&next).unwrap(), gate);
    }
    assert!(done.next().is_none());
}

#[test]
fn the_stream_gives_the_same_order_to_async_code() {
    let rt = runtime();
    let _in = rt.enter();
    let refs: Vec<ObjectRef<u64>> = (200..203).map(after_gate::remote).collect();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tokio.block_on(async {
        use futures_util::StreamExt;
        let mut done = rustyray::as_completed(&refs).into_stream();
        for (gate, index) in [(201, 1), (202, 2), (200, 0)] {
            open(gate);
            let next = done.next().await.unwrap();
            assert_eq!(next.id(), refs[index].id(), "gate {gate}");
            assert_eq!(next.await.unwrap(), gate);
        }
        assert!(done.next().await.is_none());
    });
}

#[test]
fn failed_objects_come_too() {
    let rt = runtime();
    let _in = rt.enter();
    let refs = vec![fails::remote(), fails::remote()];
    let done: Vec<_> = rustyray::as_completed(&refs).collect();
    assert_eq!(done.len(), 2);
    for r in done {
        assert!(matches!(rustyray::get(&r), Err(Error::TaskFailed { .. })));
    }
}

#[rustyray::remote]
fn square(x: u64) -> u64 {
    x * x
}

#[rustyray::remote]
fn sum_as_completed(n: u64) -> rustyray::Result<u64> {
    let refs: Vec<_> = (0..n).map(square::remote).collect();
    let mut total = 0;
    for r in rustyray::as_completed(&refs) {
        total += rustyray::get(&r)?;
    }
    Ok(total)
}

#[test]
fn a_task_waiting_in_as_completed_lends_its_cpu_to_the_tasks_it_waits_for() {
    let rt = Runtime::new(Config::default().num_cpus(1)).unwrap();
    let _in = rt.enter();
    let total = rustyray::get(&sum_as_completed::remote(20)).unwrap();
    assert_eq!(total, (0..20u64).map(|x| x * x).sum::<u64>());
}
