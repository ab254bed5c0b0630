//! Tasks: dependencies, scale, nesting, resources, failures and retries.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustyray::task::TaskBuilder;
use rustyray::{Config, Error, ObjectRef, Runtime};

#[test]
fn ten_thousand_task_fan_out() {
    let rt = runtime(2);
    let _g = rt.enter();
    let refs: Vec<ObjectRef<i64>> = (0..10_000).map(|i| add(i, i)).collect();
    let values = rustyray::get_all(&refs).unwrap();
    assert!(values.iter().enumerate().all(|(i, v)| *v == 2 * i as i64));
}

#[test]
fn chain_of_ten_thousand_dependent_tasks() {
    let rt = runtime(2);
    let _g = rt.enter();
    let mut r = add(0, 0);
    for _ in 0..10_000 {
        r = add(&r, 1);
    }
    assert_eq!(rustyray::get(&r).unwrap(), 10_000);
}

#[test]
fn one_task_with_a_thousand_ref_arguments() {
    let rt = runtime(2);
    let _g = rt.enter();
    let inputs: Vec<ObjectRef<i64>> = (0..1000).map(|i| add(i, 0)).collect();
    let total = sum(inputs);
    assert_eq!(rustyray::get(&total).unwrap(), (0..1000).sum::<i64>());
}

#[test]
fn the_same_ref_may_be_passed_twice_and_values_and_refs_mix() {
    let rt = runtime(2);
    let _g = rt.enter();
    let a = rustyray::put(5i64).unwrap();
    assert_eq!(rustyray::get(&add(&a, &a)).unwrap(), 10);
    assert_eq!(rustyray::get(&add(a.clone(), 1)).unwrap(), 6);
}

/// depth-first recursion: each level blocks in `get` on the next.
fn nest(depth: u32) -> ObjectRef<u32> {
    let mut task = TaskBuilder::new("nest");
    let d = task.arg(depth);
    task.spawn(move || {
        let depth = d.get()?;
        if depth == 0 {
            return Ok(0);
        }
        Ok(rustyray::get(&nest(depth - 1))? + 1)
    })
}

/// Binary tree recursion: each node starts both children, then blocks on both.
fn tree(depth: u32) -> ObjectRef<u64> {
    let mut task = TaskBuilder::new("tree");
    let d = task.arg(depth);
    task.spawn(move || {
        let depth = d.get()?;
        if depth == 0 {
            return Ok(1);
        }
        let (l, r) = (tree(depth - 1), tree(depth - 1));
        Ok(rustyray::get(&l)? + rustyray::get(&r)?)
    })
}

#[test]
fn nested_tasks_with_many_more_blocked_gets_than_cpus_do_not_deadlock() {
    let rt = runtime(2);
    let _g = rt.enter();
    // 100 tasks each blocked in `get` at once, on 2 CPU slots.
    assert_eq!(
        rustyray::get_timeout(&nest(100), DEADLOCK_GUARD).unwrap(),
        100
    );
    // 255 tasks, 127 of them blocked at the deepest point.
    assert_eq!(
        rustyray::get_timeout(&tree(7), DEADLOCK_GUARD).unwrap(),
        128
    );
}

#[test]
fn a_task_blocked_in_get_lends_its_only_cpu_to_its_child() {
    let rt = runtime(1);
    let _g = rt.enter();
    let outer = TaskBuilder::new("outer").spawn(|| Ok(rustyray::get(&add(1, 2))? * 10));
    assert_eq!(rustyray::get_timeout(&outer, DEADLOCK_GUARD).unwrap(), 30);
}

/// A task that records how many tasks of its kind run at once.
fn tracked(
    running: &Arc<AtomicUsize>,
    peak: &Arc<AtomicUsize>,
    builder: TaskBuilder,
) -> ObjectRef<()> {
    let (running, peak) = (running.clone(), peak.clone());
    builder.spawn(move || {
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    })
}

#[test]
fn resources_are_held_while_tasks_run() {
    let rt = Runtime::new(
        Config::default()
            .num_cpus(3)
            .num_gpus(1)
            .resource("disk", 2.0),
    )
    .unwrap();
    let _g = rt.enter();
    let counters = || (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

    let (running, peak) = counters();
    let refs: Vec<_> = (0..12)
        .map(|_| tracked(&running, &peak, TaskBuilder::new("cpu")))
        .collect();
    rustyray::get_all(&refs).unwrap();
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "at most 3 one-CPU tasks at once"
    );

    let (running, peak) = counters();
    let refs: Vec<_> = (0..6)
        .map(|_| {
            tracked(
                &running,
                &peak,
                TaskBuilder::new("gpu").num_cpus(0.0).num_gpus(1.0),
            )
        })
        .collect();
    rustyray::get_all(&refs).unwrap();
    assert_eq!(
        peak.load(Ordering::SeqCst),
        1,
        "one GPU: one GPU task at a time"
    );

    let (running, peak) = counters();
    let refs: Vec<_> = (0..6)
        .map(|_| {
            let b = TaskBuilder::new("disk").num_cpus(0.5).resource("disk", 1.0);
            tracked(&running, &peak, b)
        })
        .collect();
    rustyray::get_all(&refs).unwrap();
    assert!(
        peak.load(Ordering::SeqCst) <= 2,
        "two disks: at most two at once"
    );
}

#[test]
fn a_request_larger_than_the_runtime_fails_at_once_naming_the_resource() {
    let rt = runtime(2);
    let _g = rt.enter();
    let r = TaskBuilder::new("big").num_cpus(4.0).spawn(|| Ok(1u8));
    match rustyray::get(&r) {
        Err(Error::Infeasible {
            function,
            resource,
            requested,
            available,
        }) => {
            assert_eq!(function, "big");
            assert_eq!(resource, "CPU");
            assert_eq!((requested, available), (4.0, 2.0));
        }
        other => panic!("{other:?}"),
    }
    let r = TaskBuilder::new("tpu")
        .resource("tpu", 1.0)
        .spawn(|| Ok(1u8));
    let err = rustyray::get(&r).unwrap_err();
    assert!(
        err.to_string().contains("`tpu`") || err.to_string().contains("tpu"),
        "{err}"
    );
    let r = TaskBuilder::new("neg").num_cpus(-1.0).spawn(|| Ok(1u8));
    assert!(matches!(rustyray::get(&r), Err(Error::InvalidArgument(_))));
}

#[test]
fn an_upstream_failure_reaches_every_downstream_of_a_diamond() {
    let rt = runtime(2);
    let _g = rt.enter();
    let top = fail("bad input");
    let left = add(&top, 1);
    let right = add(&top, 2);
    let bottom = add(&left, &right);
    for r in [&top, &left, &right, &bottom] {
        match rustyray::get(r) {
            Err(Error::TaskFailed {
                function, message, ..
            }) => {
                assert_eq!(function, "fail", "names the function that failed first");
                assert_eq!(message, "bad input");
            }
            other => panic!("{other:?}"),
        }
    }
    // The runtime survives.
    assert_eq!(rustyray::get(&add(1, 1)).unwrap(), 2);
}

#[test]
fn dependents_of_a_failed_task_do_not_run() {
    let rt = runtime(2);
    let _g = rt.enter();
    let ran = Arc::new(AtomicUsize::new(0));
    let upstream = fail("no");
    let mut task = TaskBuilder::new("after");
    let x = task.arg(&upstream);
    let counter = ran.clone();
    let r = task.spawn(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(x.get()?)
    });
    assert!(rustyray::get(&r).is_err());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panic_fails_the_task_with_its_message_and_the_runtime_survives() {
    let rt = runtime(2);
    let _g = rt.enter();
    let r = TaskBuilder::new("explode").spawn(|| -> anyhow::Result<u8> { panic!("kaboom") });
    match rustyray::get(&r) {
        Err(Error::TaskFailed {
            function, message, ..
        }) => {
            assert_eq!(function, "explode");
            assert!(
                message.starts_with("panicked at tests/tasks.rs:") && message.ends_with(": kaboom"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // An async body that panics while making its future (before the first poll) fails the
    // same way, instead of leaving its result pending.
    let r = TaskBuilder::new("explode_early")
        .spawn_async(|| -> std::future::Ready<anyhow::Result<u8>> { panic!("too soon") });
    match rustyray::get(&r) {
        Err(Error::TaskFailed { message, .. }) => assert!(
            message.starts_with("panicked at tests/tasks.rs:") && message.ends_with(": too soon"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    let downstream = add(rustyray::put(1).unwrap(), 1);
    assert_eq!(rustyray::get(&downstream).unwrap(), 2);
}

#[test]
fn errors_keep_their_cause_chain() {
    let rt = runtime(1);
    let _g = rt.enter();
    let r = TaskBuilder::new("read_config").spawn(|| -> anyhow::Result<u8> {
        use anyhow::Context;
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        Err(io).context("loading settings.toml")
    });
    match rustyray::get(&r) {
        Err(e @ Error::TaskFailed { .. }) => {
            let Error::TaskFailed {
                message, causes, ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(message, "loading settings.toml");
            assert_eq!(causes, &vec!["no such file".to_string()]);
            assert_eq!(
                e.to_string(),
                "task `read_config` failed: loading settings.toml: no such file"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn retries_rerun_after_panics_and_with_retry_exceptions_after_errors() {
    let rt = runtime(2);
    let _g = rt.enter();
    let tries = Arc::new(AtomicUsize::new(0));
    let flaky = |builder: TaskBuilder, panic: bool| {
        let tries = tries.clone();
        tries.store(0, Ordering::SeqCst);
        builder.spawn(move || {
            let n = tries.fetch_add(1, Ordering::SeqCst) + 1;
            if n < 3 {
                if panic {
                    panic!("try {n}");
                }
                anyhow::bail!("try {n}");
            }
            Ok(n)
        })
    };
    assert_eq!(
        rustyray::get(&flaky(TaskBuilder::new("p").max_retries(2), true)).unwrap(),
        3
    );
    match rustyray::get(&flaky(TaskBuilder::new("p").max_retries(1), true)) {
        Err(Error::TaskFailed { message, .. }) => {
            assert!(
                message.starts_with("panicked at tests/tasks.rs:") && message.ends_with(": try 2"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    match rustyray::get(&flaky(TaskBuilder::new("e").max_retries(5), false)) {
        Err(Error::TaskFailed { message, .. }) => {
            assert_eq!(message, "try 1", "errors are not retried by default")
        }
        other => panic!("{other:?}"),
    }
    let r = flaky(
        TaskBuilder::new("e").max_retries(5).retry_exceptions(true),
        false,
    );
    assert_eq!(rustyray::get(&r).unwrap(), 3);
}

#[test]
fn async_tasks_run_on_tokio_and_may_await_refs_and_nest() {
    let rt = runtime(1);
    let _g = rt.enter();
    let base = add(1, 1);
    let mut task = TaskBuilder::new("async_outer");
    let b = task.arg(&base);
    let r = task.spawn_async(move || {
        let b = b.get();
        async move {
            // Await a child task while holding the only CPU: the await lends it back.
            let child = add(b?, 40);
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(child.await?)
        }
    });
    assert_eq!(rustyray::get_timeout(&r, DEADLOCK_GUARD).unwrap(), 42);
}

#[test]
fn async_and_sync_tasks_chain_through_refs() {
    let rt = runtime(2);
    let _g = rt.enter();
    let mut r = add(0, 0);
    for i in 0..200 {
        let mut task = TaskBuilder::new("async_inc");
        let x = task.arg(&r);
        r = if i % 2 == 0 {
            task.spawn_async(move || {
                let x = x.get();
                async move { Ok(x? + 1) }
            })
        } else {
            add(&r, 1)
        };
    }
    assert_eq!(rustyray::get(&r).unwrap(), 200);
}

#[test]
fn tasks_may_put_get_and_wait_inside_their_bodies() {
    let rt = runtime(2);
    let _g = rt.enter();
    let r = TaskBuilder::new("inner_api").spawn(|| {
        let stored = rustyray::put(10i64)?;
        let children: Vec<_> = (0..10).map(|i| add(&stored, i)).collect();
        let (ready, _) = rustyray::wait(&children, 10, None);
        Ok(rustyray::get_all(&ready)?.into_iter().sum::<i64>())
    });
    assert_eq!(rustyray::get(&r).unwrap(), 145);
}

#[test]
fn a_named_call_reports_its_name() {
    let rt = runtime(1);
    let _g = rt.enter();
    let r = TaskBuilder::new("f")
        .name("f-for-user-7")
        .spawn(|| -> anyhow::Result<u8> { anyhow::bail!("x") });
    match rustyray::get(&r) {
        Err(Error::TaskFailed { function, .. }) => assert_eq!(function, "f-for-user-7"),
        other => panic!("{other:?}"),
    }
}
