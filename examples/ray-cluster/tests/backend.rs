//! The semantics tests that apply to both backends, run on each: on the embedded runtime
//! always, and on a Ray cluster when `RUSTYRAY_ADDRESS` is set (`.ci/ray` starts a local head
//! and sets it, with `RUSTYRAY_CODE_SEARCH_PATH` pointing at this crate's cdylib).
//!
//! Ray's C++ API allows one cluster connection per process, so every Ray case shares one
//! runtime; each embedded case gets its own.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ray_cluster::probe::{self, exits_its_process, flaky, panics, record_then_exit, Fragile};
use ray_cluster::{
    add_through, add_to_all, after_signal, check_even, counted, deal, div_mod, doubles,
    fails_after, first_then_wait, make_refs, node_label, numbers, pair_and_three, parent_of_gated,
    pass_on, plus_one, produce, record_run, sleep_ms, square, sum, sum_inside, sum_of_squares,
    total, total_in_place, weighted_sum, works_until_cancelled, Counter, Counters, Grouped, Keeper,
    Meeting, QueueWorker, RefsInside, Relay, Signal, WorkQueue,
};
use rustyray::{ActorHandle, Config, Error, ObjectRef, Runtime};

/// The Ray cases run on the global runtime, started on the cluster: `rustyray::shutdown` then
/// disconnects from Ray before the process exits (a Ray driver that is still connected while
/// the process tears down its statics can crash in Ray's exit path).
fn start_ray() -> bool {
    let Some(address) = std::env::var("RUSTYRAY_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty())
    else {
        println!("RUSTYRAY_ADDRESS is not set: the Ray cases are SKIPPED (run .ci/ray)");
        return false;
    };
    let mut config = Config::default().ray(address);
    if let Ok(path) = std::env::var("RUSTYRAY_CODE_SEARCH_PATH") {
        config = config.code_search_path(path);
    }
    rustyray::init(config).expect("connect to the Ray cluster");
    true
}

/// Runs `case` on every available backend, naming the backend when it fails.
fn on_each_backend(case: impl Fn(&str)) {
    let embedded = Runtime::new(Config::default().num_cpus(2)).expect("embedded runtime");
    {
        let _guard = embedded.enter();
        case("embedded");
    }
    if ray_started() {
        case("ray");
    }
}

fn ray_started() -> bool {
    std::env::var_os("RUSTYRAY_BACKEND_TESTS_ON_RAY").is_some()
}

fn chains_resolve_refs_before_the_task_runs() {
    on_each_backend(|backend| {
        let four = square::remote(2);
        let sixteen = square::remote(&four);
        assert_eq!(rustyray::get(&sixteen).unwrap(), 16, "{backend}");
        let mut link = plus_one::remote(0);
        for _ in 1..50 {
            link = plus_one::remote(&link);
        }
        assert_eq!(rustyray::get(&link).unwrap(), 50, "{backend}");
    });
}

fn fan_out_and_gather() {
    on_each_backend(|backend| {
        let squares: Vec<ObjectRef<u64>> = (1..=200).map(square::remote).collect();
        let values = rustyray::get_all(&squares).unwrap();
        assert_eq!(values.len(), 200, "{backend}");
        let total = sum::remote(values);
        assert_eq!(rustyray::get(&total).unwrap(), 2_686_700, "{backend}");
    });
}

fn nested_tasks_run_on_the_same_backend() {
    on_each_backend(|backend| {
        let r = sum_of_squares::remote(10);
        assert_eq!(rustyray::get(&r).unwrap(), 385, "{backend}");
    });
}

fn actor_calls_run_in_order_with_ref_arguments() {
    on_each_backend(|backend| {
        let counter: ActorHandle<Counter> = Counter::remote(0);
        let squares: Vec<ObjectRef<u64>> = (1..=10).map(square::remote).collect();
        let after: Vec<ObjectRef<u64>> = squares.iter().map(|r| counter.add(r)).collect();
        let expected: Vec<u64> = (1..=10u64)
            .scan(0, |acc, x| {
                *acc += x * x;
                Some(*acc)
            })
            .collect();
        assert_eq!(rustyray::get_all(&after).unwrap(), expected, "{backend}");
        assert_eq!(rustyray::get(&counter.get()).unwrap(), 385, "{backend}");
    });
}

fn a_failure_reaches_the_caller_and_every_dependent() {
    on_each_backend(|backend| {
        let failed = check_even::remote(3);
        let err = rustyray::get(&failed).unwrap_err();
        assert!(
            matches!(err, Error::TaskFailed { .. }),
            "{backend}: {err:?}"
        );
        assert!(err.to_string().contains("3 is odd"), "{backend}: {err}");
        let downstream = plus_one::remote(&failed);
        let err = rustyray::get(&downstream).unwrap_err();
        assert!(
            matches!(err, Error::TaskFailed { .. }),
            "{backend}: {err:?}"
        );
        assert!(err.to_string().contains("3 is odd"), "{backend}: {err}");
        assert_eq!(
            rustyray::get(&check_even::remote(4)).unwrap(),
            4,
            "{backend}"
        );
    });
}

fn a_failing_method_leaves_the_actor_working() {
    on_each_backend(|backend| {
        let counter = Counter::remote(7);
        let err = rustyray::get(&counter.fail()).unwrap_err();
        assert!(
            err.to_string().contains("asked to fail at 7"),
            "{backend}: {err}"
        );
        assert_eq!(rustyray::get(&counter.add(1)).unwrap(), 8, "{backend}");
    });
}

fn named_actors_are_found_by_name() {
    on_each_backend(|backend| {
        let name = format!("counter-{backend}-{}", std::process::id());
        let made = Counter::options().name(name.clone()).remote(5);
        assert_eq!(rustyray::get(&made.add(1)).unwrap(), 6, "{backend}");
        let found: ActorHandle<Counter> = rustyray::get_actor(&name).unwrap();
        assert_eq!(rustyray::get(&found.add(1)).unwrap(), 7, "{backend}");
        let missing = rustyray::get_actor::<Counter>("no-such-counter").unwrap_err();
        assert!(
            matches!(missing, Error::NotFound { .. }),
            "{backend}: {missing:?}"
        );
        // Killed through one handle: a call through the handle found by name fails at once,
        // and the name is free, as soon as `kill` returns.
        rustyray::kill(&made).unwrap();
        let err = rustyray::get(&found.add(1)).unwrap_err();
        assert!(
            matches!(&err, Error::ActorDied { reason, .. } if reason.contains("kill")),
            "{backend}: {err:?}"
        );
        let gone = rustyray::get_actor::<Counter>(&name).unwrap_err();
        assert!(
            matches!(gone, Error::NotFound { .. }),
            "{backend}: {gone:?}"
        );
    });
}

/// Actor handles cross as arguments (Ray's pipelining and signal-actor patterns): borrowed,
/// owned and found by name, to a task, to an actor's constructor and its methods, inside a
/// value, and back as a result. Every copy calls the same actor.
fn actor_handles_pass_as_arguments() {
    on_each_backend(|backend| {
        let counter = Counter::remote(0);
        let adds: Vec<ObjectRef<u64>> = (1..=3).map(|n| add_through::remote(&counter, n)).collect();
        let mut seen = rustyray::get_all(&adds).unwrap();
        seen.sort_unstable();
        assert_eq!(
            seen.last(),
            Some(&6),
            "{backend}: borrowed, to tasks: {seen:?}"
        );
        let owned = add_through::remote(counter.clone(), 4);
        assert_eq!(rustyray::get(&owned).unwrap(), 10, "{backend}: owned");

        let name = format!("handle-target-{backend}-{}", std::process::id());
        let named = Counter::options().name(name.clone()).remote(100);
        let found: ActorHandle<Counter> = rustyray::get_actor(&name).unwrap();
        let via_found = add_through::remote(&found, 1);
        assert_eq!(
            rustyray::get(&via_found).unwrap(),
            101,
            "{backend}: by name"
        );

        let both = Counters {
            all: vec![counter.clone(), found.clone()],
        };
        let nested = add_to_all::remote(both, 10);
        assert_eq!(
            rustyray::get(&nested).unwrap(),
            [20, 111],
            "{backend}: inside a value"
        );

        let relay = Relay::remote(&counter);
        assert_eq!(
            rustyray::get(&relay.relay(1)).unwrap(),
            21,
            "{backend}: to a constructor"
        );
        let other = relay.relay_to(&found, 1);
        assert_eq!(
            rustyray::get(&other).unwrap(),
            112,
            "{backend}: to a method"
        );
        let back: ActorHandle<Counter> = rustyray::get(&relay.target()).unwrap();
        assert_eq!(
            rustyray::get(&back.add(1)).unwrap(),
            22,
            "{backend}: as a result"
        );
        assert_eq!(
            rustyray::get(&counter.get()).unwrap(),
            22,
            "{backend}: one actor"
        );
        if backend == "ray" && std::env::var_os("RUSTYRAY_TEST_SECOND_NODE").is_some() {
            // The same, from tasks on the other node: borrowed, owned, found by name.
            let there = || add_through::options().resource("second_node", 1.0);
            assert_eq!(rustyray::get(&there().remote(&counter, 1)).unwrap(), 23);
            assert_eq!(
                rustyray::get(&there().remote(counter.clone(), 1)).unwrap(),
                24
            );
            assert_eq!(rustyray::get(&there().remote(&found, 1)).unwrap(), 113);
        }
        rustyray::kill(&named).unwrap();
    });
}

/// Refs inside a value read the sender's objects, never the receiver's: in an actor whose own
/// objects have the same numbers, in a task, handed on to another task, kept in an actor's
/// state past the call, inside a `put` value, and as a result that the driver reads.
fn refs_inside_values_read_the_senders_objects() {
    on_each_backend(|backend| {
        let refs: Vec<ObjectRef<u64>> = (7..12).map(|v| rustyray::put(v).unwrap()).collect();
        let inside = RefsInside { all: refs };
        let keeper = Keeper::remote();
        assert_eq!(rustyray::get(&keeper.keep(20)).unwrap(), 20, "{backend}");
        let sum = keeper.sum_of(inside.clone());
        assert_eq!(rustyray::get(&sum).unwrap(), 45, "{backend}: in an actor");
        let in_task = sum_inside::remote(inside.clone());
        assert_eq!(rustyray::get(&in_task).unwrap(), 45, "{backend}: in a task");
        let handed_on = pass_on::remote(inside.clone());
        assert_eq!(
            rustyray::get(&handed_on).unwrap(),
            45,
            "{backend}: handed on"
        );
        assert_eq!(rustyray::get(&keeper.hold(inside.clone())).unwrap(), 25);
        assert_eq!(
            rustyray::get(&keeper.sum_kept()).unwrap(),
            (1000..1020).sum::<u64>() + 45,
            "{backend}: kept past the call"
        );
        let stored = rustyray::put(inside).unwrap();
        let from_put = sum_inside::remote(&stored);
        assert_eq!(
            rustyray::get(&from_put).unwrap(),
            45,
            "{backend}: in a put value"
        );

        let made = rustyray::get(&make_refs::remote(100, 3)).unwrap();
        let values = rustyray::get_all(&made.all).unwrap();
        assert_eq!(values, [100, 101, 102, 10_000], "{backend}: returned");
        let again = sum_inside::remote(made);
        assert_eq!(
            rustyray::get(&again).unwrap(),
            10_303,
            "{backend}: sent back"
        );
    });
}

/// Ray's signal-actor pattern: tasks handed the signal's handle wait on it, and go on once the
/// driver sends it; none can end before.
fn tasks_wait_on_a_signal_actor_they_were_handed() {
    on_each_backend(|backend| {
        let signal = Signal::options().max_concurrency(8).remote();
        let waiters: Vec<ObjectRef<u64>> =
            (1..=2).map(|n| after_signal::remote(&signal, n)).collect();
        let (early, _) = rustyray::wait(&waiters, 1, Some(Duration::from_millis(300)));
        assert!(
            early.is_empty(),
            "{backend}: a waiter ended before the signal"
        );
        rustyray::get(&signal.send()).unwrap();
        assert_eq!(rustyray::get_all(&waiters).unwrap(), [1, 2], "{backend}");
    });
}

/// Ray's pipelining pattern: a work queue's handle given to worker actors, which pull items
/// from it until it is empty; every item is worked on once.
fn worker_actors_pull_from_a_queue_they_were_handed() {
    on_each_backend(|backend| {
        let queue = WorkQueue::remote((1..=20).collect::<Vec<u64>>());
        let workers: Vec<_> = (0..3).map(|_| QueueWorker::remote(&queue)).collect();
        let drained: Vec<_> = workers.iter().map(|w| w.drain()).collect();
        let mut all: Vec<u64> = rustyray::get_all(&drained)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        all.sort_unstable();
        let expected: Vec<u64> = (1..=20u64).map(|i| i * i).collect();
        assert_eq!(all, expected, "{backend}");
    });
}

fn a_killed_actor_fails_its_calls() {
    on_each_backend(|backend| {
        let counter = Counter::remote(1);
        assert_eq!(rustyray::get(&counter.add(1)).unwrap(), 2, "{backend}");
        rustyray::kill(&counter).unwrap();
        let err = rustyray::get_timeout(&counter.add(1), Duration::from_secs(60)).unwrap_err();
        assert!(matches!(err, Error::ActorDied { .. }), "{backend}: {err:?}");
    });
}

fn put_get_and_wait() {
    on_each_backend(|backend| {
        let words = rustyray::put(vec!["a".to_owned(), "b".to_owned()]).unwrap();
        assert_eq!(rustyray::get(&words).unwrap(), ["a", "b"], "{backend}");
        // A copy of a slice (16 MiB: built in a kept block the second time, and on Ray large
        // enough for a worker to keep its freed memory, see `ray/kept_memory.rs`), read by a
        // task and by `get`; the slice stays the caller's. Each round's numbers differ, so a
        // task reading its argument in memory a previous call's argument held (on Ray, see
        // `codec/raw.rs`) must see this round's.
        const N: u64 = 1 << 21;
        for round in 0..3u64 {
            let numbers: Vec<u64> = (0..N).map(|i| i * (round + 1)).collect();
            let copied = rustyray::put_slice(&numbers).unwrap();
            let expected = (round + 1) * N * (N - 1) / 2;
            assert_eq!(
                rustyray::get(&total::remote(&copied)).unwrap(),
                expected,
                "{backend}"
            );
            assert_eq!(rustyray::get(&copied).unwrap(), numbers, "{backend}");
            // A `&[u64]` parameter reads the same numbers (on Ray, where Ray's buffer holds
            // them), from a ref and from a value sent with the call.
            assert_eq!(
                rustyray::get(&total_in_place::remote(&copied)).unwrap(),
                expected,
                "{backend}"
            );
            let small = vec![round, 2];
            assert_eq!(
                rustyray::get(&total_in_place::remote(small)).unwrap(),
                round + 2,
                "{backend}"
            );
            if backend == "ray" && std::env::var_os("RUSTYRAY_TEST_SECOND_NODE").is_some() {
                // On the second node, whose workers keep a fixed size of freed memory from their
                // start (.ci/ray): the same sums.
                let there = || total_in_place::options().resource("second_node", 1.0);
                assert_eq!(rustyray::get(&there().remote(&copied)).unwrap(), expected);
                let by_ref = total::options().resource("second_node", 1.0);
                assert_eq!(rustyray::get(&by_ref.remote(&copied)).unwrap(), expected);
            }
        }
        let refs = vec![
            sleep_ms::remote(0),
            sleep_ms::remote(0),
            sleep_ms::remote(5_000),
        ];
        let (ready, pending) = rustyray::wait(&refs, 2, Some(Duration::from_secs(4)));
        assert_eq!((ready.len(), pending.len()), (2, 1), "{backend}");
        assert_eq!(pending[0], refs[2], "{backend}");
        // The same ref twice counts twice, as embedded.
        let twice = vec![refs[0].clone(), refs[0].clone(), refs[2].clone()];
        let (ready, pending) = rustyray::wait(&twice, 2, Some(Duration::from_secs(4)));
        assert_eq!((ready.len(), pending.len()), (2, 1), "{backend}");
        let err = rustyray::get_timeout(&refs[2], Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{backend}: {err:?}");
    });
}

fn async_code_awaits_refs() {
    on_each_backend(|backend| {
        let r = square::remote(9);
        let value = futures_executor(async move { r.await });
        assert_eq!(value.unwrap(), 81, "{backend}");
    });
}

/// The files [`tries_file`] named, removed when the suite ends.
static TRIES_FILES: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A fresh file to count a task's tries in (workers on this machine share the temp folder).
fn tries_file(backend: &str, what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "rustyray-tries-{}-{backend}-{what}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let name = path.display().to_string();
    TRIES_FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path);
    name
}

/// Long enough for Ray to notice a dead process and report it.
const DEATH_NOTICE: Duration = Duration::from_secs(120);

fn retries_follow_max_retries_and_retry_exceptions() {
    on_each_backend(|backend| {
        let path = tries_file(backend, "err-retried");
        let r = flaky::options()
            .max_retries(3)
            .retry_exceptions(true)
            .remote(path.clone(), 3, false);
        assert_eq!(rustyray::get(&r).unwrap(), 4, "{backend}");
        assert_eq!(probe::tries(&path), 4, "{backend}");

        let path = tries_file(backend, "panic-retried");
        let r = flaky::options()
            .max_retries(3)
            .remote(path.clone(), 3, true);
        assert_eq!(rustyray::get(&r).unwrap(), 4, "{backend}");

        // An `Err` is retried only with retry_exceptions.
        let path = tries_file(backend, "err-kept");
        let r = flaky::options()
            .max_retries(3)
            .remote(path.clone(), 3, false);
        let err = rustyray::get(&r).unwrap_err();
        assert!(err.to_string().contains("try 1 failed"), "{backend}: {err}");
        assert_eq!(probe::tries(&path), 1, "{backend}");

        // Retries run out: the last try's error.
        let path = tries_file(backend, "panic-out");
        let r = flaky::options()
            .max_retries(2)
            .remote(path.clone(), 9, true);
        let err = rustyray::get(&r).unwrap_err();
        assert!(
            err.to_string().contains("try 3 panicked"),
            "{backend}: {err}"
        );
        assert_eq!(probe::tries(&path), 3, "{backend}");

        // No retries by default.
        let path = tries_file(backend, "default");
        let err = rustyray::get(&flaky::remote(path.clone(), 9, true)).unwrap_err();
        assert!(
            err.to_string().contains("try 1 panicked"),
            "{backend}: {err}"
        );
        assert_eq!(probe::tries(&path), 1, "{backend}");
    });
}

fn a_panicking_task_is_named_as_embedded() {
    on_each_backend(|backend| match rustyray::get(&panics::remote()) {
        Err(Error::TaskFailed {
            function, message, ..
        }) => {
            assert_eq!(function, "panics", "{backend}");
            assert!(
                message.contains("panicked on purpose"),
                "{backend}: {message}"
            );
        }
        other => panic!("{backend}: {other:?}"),
    });
}

fn a_panicking_method_ends_the_actor() {
    on_each_backend(|backend| {
        let actor = Fragile::remote(10);
        assert_eq!(rustyray::get(&actor.add(1)).unwrap(), 11, "{backend}");
        match rustyray::get(&actor.add_then_panic(1000)) {
            Err(Error::TaskFailed {
                function, message, ..
            }) => {
                assert_eq!(function, "Fragile::add_then_panic", "{backend}");
                assert!(
                    message.contains("panicked on purpose"),
                    "{backend}: {message}"
                );
            }
            other => panic!("{backend}: {other:?}"),
        }
        match rustyray::get_timeout(&actor.add(1), DEATH_NOTICE) {
            Err(Error::ActorDied { reason, .. }) => {
                assert!(
                    reason.contains("panicked on purpose"),
                    "{backend}: {reason}"
                )
            }
            other => panic!("{backend}: a call after the panic gave {other:?}"),
        }
    });
}

fn a_panicking_method_restarts_the_actor_while_restarts_remain() {
    on_each_backend(|backend| {
        let actor = Fragile::options().max_restarts(1).remote(10);
        assert_eq!(rustyray::get(&actor.add(1)).unwrap(), 11, "{backend}");
        let err = rustyray::get(&actor.add_then_panic(1000)).unwrap_err();
        assert!(
            matches!(err, Error::TaskFailed { .. }),
            "{backend}: {err:?}"
        );
        // Rebuilt from its constructor's arguments.
        assert_eq!(rustyray::get(&actor.add(0)).unwrap(), 10, "{backend}");
        let err = rustyray::get(&actor.add_then_panic(1)).unwrap_err();
        assert!(
            matches!(err, Error::TaskFailed { .. }),
            "{backend}: {err:?}"
        );
        let err = rustyray::get_timeout(&actor.add(0), DEATH_NOTICE).unwrap_err();
        assert!(matches!(err, Error::ActorDied { .. }), "{backend}: {err:?}");
    });
}

fn a_ref_read_as_another_type_is_a_type_mismatch() {
    on_each_backend(|backend| {
        let nine = square::remote(3);
        let json = serde_json::to_string(&nine).unwrap();
        let wrong: ObjectRef<String> = serde_json::from_str(&json).unwrap();
        match rustyray::get(&wrong) {
            Err(Error::TypeMismatch { expected, found }) => {
                assert_eq!(expected, "alloc::string::String", "{backend}");
                assert_eq!(found, "u64", "{backend}");
            }
            other => panic!("{backend}: {other:?}"),
        }
        // The same across the process boundary: a task's argument of the wrong type.
        let text = rustyray::put("nine".to_owned()).unwrap();
        let json = serde_json::to_string(&text).unwrap();
        let wrong: ObjectRef<u64> = serde_json::from_str(&json).unwrap();
        let err = rustyray::get(&plus_one::remote(&wrong)).unwrap_err();
        assert!(
            err.to_string().contains("type mismatch"),
            "{backend}: {err}"
        );
        assert_eq!(
            rustyray::get(&nine).unwrap(),
            9,
            "{backend}: the object is intact"
        );
    });
}

/// Several returns: split embedded; on Ray (not emulated yet) every part fails at once with
/// an error naming `num_returns`.
fn several_returns_split_into_objects_of_their_own() {
    on_each_backend(|backend| {
        let (q, r) = div_mod::remote(17, 5);
        assert_eq!(
            (rustyray::get(&q).unwrap(), rustyray::get(&r).unwrap()),
            (3, 2),
            "{backend}"
        );
        let (ready, _) = rustyray::wait(&[q.clone(), r.clone()], 2, None);
        assert_eq!(ready.len(), 2, "{backend}: wait");
        assert_eq!(
            rustyray::get(&plus_one::remote(&r)).unwrap(),
            3,
            "{backend}: an argument"
        );
        let gathered = sum::remote(vec![q.clone(), r.clone()]);
        assert_eq!(rustyray::get(&gathered).unwrap(), 5, "{backend}: gathered");
        let inside = sum_inside::remote(RefsInside {
            all: vec![q.clone(), r.clone()],
        });
        assert_eq!(
            rustyray::get(&inside).unwrap(),
            5,
            "{backend}: inside a value"
        );
        if backend == "ray" && std::env::var_os("RUSTYRAY_TEST_SECOND_NODE").is_some() {
            let there = plus_one::options().resource("second_node", 1.0).remote(&q);
            assert_eq!(
                rustyray::get(&there).unwrap(),
                4,
                "{backend}: on the other node"
            );
        }

        let counter = Counter::remote(7);
        let (count, parity) = counter.count_and_parity();
        assert_eq!(rustyray::get(&count).unwrap(), 7, "{backend}: a method's");
        assert_eq!(
            rustyray::get(&parity).unwrap(),
            "odd",
            "{backend}: a method's"
        );

        // `num_returns(n)` per call on a function returning a `Vec`: one object per element,
        // each usable on the other node; another length fails every part saying so.
        for n in [1, 10, 100] {
            let piles = deal::options().num_returns(n).remote(1000, n);
            assert_eq!(piles.len(), n, "{backend}");
            let sums: Vec<_> = piles
                .iter()
                .map(|pile| match backend {
                    "ray" => sum::options().resource("second_node", 0.001).remote(pile),
                    _ => sum::remote(pile),
                })
                .collect();
            let total: u64 = rustyray::get_all(&sums).unwrap().into_iter().sum();
            assert_eq!(total, 999 * 1000 / 2, "{backend}: n = {n}");
        }
        let wrong = deal::options().num_returns(3).remote(10, 2);
        for part in &wrong {
            let error = rustyray::get(part).unwrap_err();
            assert!(
                error.to_string().contains("returned 2 values"),
                "{backend}: {error}"
            );
        }

        // A task that fails fails every part with its error.
        let (q, r) = div_mod::remote(1, 0);
        for part in [q, r] {
            match rustyray::get(&part) {
                Err(Error::TaskFailed { function, .. }) => assert_eq!(function, "div_mod"),
                other => panic!("{backend}: a part of a failed task gave {other:?}"),
            }
        }
    });
}

/// Streams, each as embedded: items in order (from a task, an async task and an actor method,
/// as refs and as values); the first item used by a task (on the other node, on Ray) while the
/// producer still runs; backpressure; an `Err` item; dropping the stream stops the producer.
fn streams_hand_over_items_while_the_producer_runs() {
    on_each_backend(|backend| {
        let refs: Vec<ObjectRef<u64>> = numbers::remote(3).collect();
        assert_eq!(rustyray::get_all(&refs).unwrap(), [0, 1, 2], "{backend}");
        // Streams one after another (on Ray, each reuses the last one's actor): empty, short,
        // and longer than one take answers with (1024 items), each whole and in order.
        for n in [0, 1, 3, 0, 2500, 7] {
            let refs: Vec<ObjectRef<u64>> = numbers::remote(n).collect();
            let values = rustyray::get_all(&refs).unwrap();
            assert_eq!(values, (0..n).collect::<Vec<u64>>(), "{backend}: {n} items");
        }
        let doubled: Vec<u64> = doubles::remote(4).values().map(Result::unwrap).collect();
        assert_eq!(doubled, [0, 2, 4, 6], "{backend}: async producer");
        let counter = Counter::remote(10);
        let counts: Vec<u64> = counter.count_on(3).values().map(Result::unwrap).collect();
        assert_eq!(counts, [11, 12, 13], "{backend}: actor method");
        assert_eq!(rustyray::get(&counter.get()).unwrap(), 13, "{backend}");
        let awaited: Vec<u64> = futures_executor(async {
            use rustyray::Stream;
            let mut values = numbers::remote(3).values().into_stream();
            let mut out = Vec::new();
            while let Some(v) =
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut values).poll_next(cx)).await
            {
                out.push(v.unwrap());
            }
            out
        });
        assert_eq!(awaited, [0, 1, 2], "{backend}: as a Stream");

        // The first item, used while the producer waits for the signal.
        let signal = Signal::options().max_concurrency(4).remote();
        let mut stream = first_then_wait::remote(41, &signal);
        let first = stream.next().expect("a first item");
        let used = if backend == "ray" && std::env::var_os("RUSTYRAY_TEST_SECOND_NODE").is_some() {
            plus_one::options()
                .resource("second_node", 1.0)
                .remote(&first)
        } else {
            plus_one::remote(&first)
        };
        assert_eq!(
            rustyray::get(&used).unwrap(),
            42,
            "{backend}: first item used"
        );
        let done = stream.completed();
        assert!(
            rustyray::wait(std::slice::from_ref(&done), 1, Some(Duration::ZERO))
                .0
                .is_empty(),
            "{backend}: the producer still runs"
        );
        rustyray::get(&signal.send()).unwrap();
        assert!(stream.next().is_none(), "{backend}: the end");
        rustyray::get(&done).unwrap();

        // Backpressure 2: one item taken, the producer stops after making three.
        let made = Counter::remote(0);
        let mut stream = counted::options().backpressure(2).remote(&made, 20);
        assert_eq!(rustyray::get(&stream.next().unwrap()).unwrap(), 0);
        std::thread::sleep(Duration::from_millis(500));
        let ahead = rustyray::get(&made.get()).unwrap();
        assert!(
            (1..=3).contains(&ahead),
            "{backend}: made {ahead} with one taken"
        );
        let rest: Vec<u64> = stream.values().map(Result::unwrap).collect();
        assert_eq!(rest, (1..20).collect::<Vec<u64>>(), "{backend}");
        assert_eq!(rustyray::get(&made.get()).unwrap(), 20, "{backend}");

        // An `Err` item: a failed ref, then the end.
        let mut stream = fails_after::remote(2);
        let items: Vec<ObjectRef<u64>> = stream.by_ref().collect();
        assert_eq!(items.len(), 3, "{backend}");
        assert_eq!(rustyray::get_all(&items[..2]).unwrap(), [0, 1], "{backend}");
        let err = rustyray::get(&items[2]).unwrap_err().to_string();
        assert!(err.contains("item 2 could not be made"), "{backend}: {err}");
        assert!(rustyray::get(&stream.completed()).is_err(), "{backend}");

        // Dropped after two items: the producer of an endless stream stops.
        let made = Counter::remote(0);
        let mut stream = counted::remote(&made, u64::MAX);
        let two: Vec<_> = stream.by_ref().take(2).collect();
        let done = stream.completed();
        drop(stream);
        assert_eq!(
            rustyray::get_all(&two).unwrap(),
            [0, 1],
            "{backend}: items taken stay"
        );
        rustyray::get_timeout(&done, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{backend}: the producer did not stop: {e}"));
    });
}

/// Cancel, cooperative on both: a running task sees `is_cancelled`; a queued one never runs,
/// and the task waiting for it fails; a parent's pending child never runs. Each caller's ref
/// fails `Cancelled` at once.
fn cancel_stops_queued_running_and_child_tasks() {
    let is_cancelled = |e: Error| matches!(e, Error::Cancelled { .. });
    on_each_backend(|backend| {
        let signal = || Signal::options().max_concurrency(4).remote();
        // Running: it sees the cancel.
        let (started, noticed) = (signal(), signal());
        let running = works_until_cancelled::remote(&started, &noticed, 60_000);
        rustyray::get(&started.wait()).unwrap();
        assert!(rustyray::cancel(&running), "{backend}: it was running");
        assert!(
            is_cancelled(rustyray::get(&running).unwrap_err()),
            "{backend}"
        );
        rustyray::get_timeout(&noticed.wait(), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{backend}: the running task did not see it: {e}"));
        assert!(!rustyray::cancel(&running), "{backend}: cancelled once");

        // Queued behind an object: it never runs, and its dependent fails.
        let (gate, ran) = (signal(), Counter::remote(0));
        let opened = after_signal::remote(&gate, 1);
        let queued = record_run::remote(&opened, &ran);
        let after = plus_one::remote(&queued);
        assert!(rustyray::cancel(&queued), "{backend}: it was queued");
        assert!(
            is_cancelled(rustyray::get(&queued).unwrap_err()),
            "{backend}"
        );
        rustyray::get(&gate.send()).unwrap();
        assert_eq!(rustyray::get(&opened).unwrap(), 1, "{backend}");
        let err = rustyray::get(&after).unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{backend}: {err}");
        assert_eq!(rustyray::get(&ran.get()).unwrap(), 0, "{backend}: it ran");

        // A parent's pending child never runs.
        let (gate, ran, submitted) = (signal(), Counter::remote(0), signal());
        let parent = parent_of_gated::remote(&gate, &ran, &submitted);
        let after = plus_one::remote(&parent);
        rustyray::get(&submitted.wait()).unwrap();
        assert!(
            rustyray::cancel(&parent),
            "{backend}: the parent was running"
        );
        assert!(
            is_cancelled(rustyray::get(&parent).unwrap_err()),
            "{backend}"
        );
        rustyray::get(&gate.send()).unwrap();
        assert!(rustyray::get(&after).is_err(), "{backend}");
        assert_eq!(
            rustyray::get(&ran.get()).unwrap(),
            0,
            "{backend}: the child ran"
        );

        // A finished task is not cancelled.
        let done = plus_one::remote(1);
        assert_eq!(rustyray::get(&done).unwrap(), 2);
        assert!(!rustyray::cancel(&done), "{backend}: it had finished");
    });
}

/// Ray's actor semantics on both: an async actor takes many calls at once by default (a signal
/// actor releases its waiters, and its sync method answers while they wait); a threaded actor
/// runs sync calls side by side; class options are defaults; a running call sees its cancel and
/// a queued one never runs, the actor serving the calls after them.
fn actors_behave_as_rays() {
    let is_cancelled = |e: Error| matches!(e, Error::Cancelled { .. });
    on_each_backend(|backend| {
        let signal = Signal::remote(); // no options: an async actor's 1000 calls at once
        let waiters: Vec<_> = (0..4).map(|_| signal.wait()).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while rustyray::get(&signal.waiting()).unwrap() < 4 {
            assert!(
                Instant::now() < deadline,
                "{backend}: the waiters never all waited"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        rustyray::get(&signal.send()).unwrap();
        rustyray::get_timeout(&waiters[3], Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{backend}: the waiters were not released: {e}"));

        // Two sync calls inside one method together (the embedded runtime has 2 CPUs).
        let meeting = Meeting::options().max_concurrency(2).remote(2);
        let met = [meeting.meet(0), meeting.meet(1)];
        assert_eq!(
            rustyray::get_all(&met).unwrap(),
            [0, 1],
            "{backend}: they met"
        );
        // The class default `max_restarts = 1`: rebuilt once.
        assert!(rustyray::get(&meeting.crash()).is_err(), "{backend}");
        let met = [meeting.meet(2), meeting.meet(3)];
        assert_eq!(
            rustyray::get_all(&met).unwrap(),
            [2, 3],
            "{backend}: rebuilt"
        );

        // Cancel: the running call sees it; the queued one never runs.
        let (started, noticed) = (Signal::remote(), Signal::remote());
        let running = meeting.until_cancelled(&started, &noticed);
        rustyray::get(&started.wait()).unwrap();
        let queued = meeting.until_cancelled(&started, &noticed);
        assert!(rustyray::cancel(&queued), "{backend}: it was queued");
        assert!(rustyray::cancel(&running), "{backend}: it was running");
        for call in [&running, &queued] {
            let error = rustyray::get(call).unwrap_err();
            assert!(
                error.to_string().contains("Meeting::until_cancelled"),
                "{backend}: {error}"
            );
            assert!(is_cancelled(error), "{backend}");
        }
        rustyray::get_timeout(&noticed.wait(), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{backend}: the running call did not see it: {e}"));
        let met = [meeting.meet(4), meeting.meet(5)];
        assert_eq!(
            rustyray::get_all(&met).unwrap(),
            [4, 5],
            "{backend}: alive after"
        );
    });
}

/// Placement groups on both backends: a group is reserved (`wait` and `ready`), a task and an
/// actor placed in its bundle run, it is found by name, and once removed it is not. A bundle
/// asking for nothing fails at once on both. `gpu_ids` is empty outside a GPU task on both.
fn placement_groups_reserve_and_place() {
    use rustyray::{Bundle, PlacementGroup};
    on_each_backend(|backend| {
        let name = format!("reserved-{backend}");
        let pg = PlacementGroup::builder()
            .bundle(Bundle::new().cpus(1.0))
            .name(name.clone())
            .create()
            .unwrap();
        assert!(pg.wait(Duration::from_secs(60)).unwrap(), "{backend}");
        rustyray::get(&pg.ready()).unwrap();
        let inside = square::options().placement_group(&pg, 0).remote(3);
        assert_eq!(rustyray::get(&inside).unwrap(), 9, "{backend}");
        let counter = Counter::options()
            .num_cpus(0.5)
            .placement_group(&pg, 0)
            .remote(1);
        assert_eq!(rustyray::get(&counter.add(2)).unwrap(), 3, "{backend}");
        rustyray::kill(&counter).unwrap();
        let found = rustyray::get_placement_group(&name).unwrap();
        assert_eq!(found, pg, "{backend}");
        assert_eq!(found.bundle_count(), 1, "{backend}");
        rustyray::remove_placement_group(&pg).unwrap();
        let gone = rustyray::get_placement_group(&name).unwrap_err();
        assert!(matches!(gone, Error::NotFound { .. }), "{backend}: {gone}");
        let empty = PlacementGroup::builder().bundle(Bundle::new()).create();
        let err = empty.unwrap_err().to_string();
        assert!(
            err.contains("bundle 0 asks for nothing"),
            "{backend}: {err}"
        );
        assert!(rustyray::gpu_ids().is_empty(), "{backend}");
    });
}

/// STRICT_SPREAD on the two-node cluster puts one bundle on each node: a task placed in each
/// bundle reports a different node.
fn strict_spread_puts_bundles_on_both_nodes() {
    use rustyray::{Bundle, PlacementGroup, Strategy};
    if !ray_started() {
        return;
    }
    if std::env::var_os("RUSTYRAY_TEST_SECOND_NODE").is_none() {
        println!("RUSTYRAY_TEST_SECOND_NODE is not set: the STRICT_SPREAD case is SKIPPED");
        return;
    }
    let pg = PlacementGroup::builder()
        .bundles([Bundle::new().cpus(1.0), Bundle::new().cpus(1.0)])
        .strategy(Strategy::StrictSpread)
        .create()
        .unwrap();
    assert!(pg.wait(Duration::from_secs(60)).unwrap());
    let labels: Vec<ObjectRef<String>> = (0..2)
        .map(|i| node_label::options().placement_group(&pg, i).remote())
        .collect();
    let mut labels = rustyray::get_all(&labels).unwrap();
    labels.sort();
    assert_eq!(labels, ["head", "second"]);
    rustyray::remove_placement_group(&pg).unwrap();
}

/// The `ray.util` helpers and concurrency groups: `ActorPool` works on both backends; `Queue`
/// and concurrency groups run embedded and fail clearly on Ray, naming the feature.
fn util_helpers_queues_and_concurrency_groups_work() {
    on_each_backend(|backend| {
        let mut pool = rustyray::util::ActorPool::new([Counter::remote(0), Counter::remote(100)]);
        let mut sums: Vec<u64> = pool
            .map_unordered(|c, n| c.add(n), [1, 2])
            .collect::<rustyray::Result<_>>()
            .unwrap();
        sums.sort_unstable();
        assert_eq!(sums.len(), 2, "{backend}");
        let queue = rustyray::util::Queue::<u64>::new(2).unwrap();
        queue.put(5).unwrap();
        assert_eq!(queue.get().unwrap(), 5, "{backend}");
        assert!(
            matches!(queue.get_nowait(), Err(Error::QueueEmpty)),
            "{backend}"
        );
        // A producer task (on the other node, on Ray) fills the bounded queue as it empties.
        let producer =
            if backend == "ray" && std::env::var_os("RUSTYRAY_TEST_SECOND_NODE").is_some() {
                produce::options()
                    .resource("second_node", 1.0)
                    .remote(queue.clone(), 6)
            } else {
                produce::remote(queue.clone(), 6)
            };
        let got: Vec<u64> = (0..6).map(|_| queue.get().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4, 5], "{backend}: between tasks");
        assert_eq!(rustyray::get(&producer).unwrap(), 6, "{backend}");
        queue.put_nowait(1).unwrap();
        queue.put_nowait(2).unwrap();
        assert!(
            matches!(queue.put_nowait(3), Err(Error::QueueFull { capacity: 2 })),
            "{backend}"
        );
        assert_eq!(queue.len().unwrap(), 2, "{backend}");

        // A concurrency group answers while the default one is busy.
        let grouped = Grouped::remote();
        let held = grouped.hold();
        assert_eq!(rustyray::get(&grouped.ping()).unwrap(), 1, "{backend}");
        let (done, _) = rustyray::wait(std::slice::from_ref(&held), 1, Some(Duration::ZERO));
        assert!(
            done.is_empty(),
            "{backend}: `hold` ended before its release"
        );
        rustyray::get(&grouped.release()).unwrap();
        assert_eq!(rustyray::get(&held).unwrap(), 7, "{backend}");
    });
}

/// Porting helpers: `get_all_arc`, and refs gathered into one parameter (a `Vec` of refs for a
/// `Vec<T>` parameter, a tuple and an array of refs for a tuple and an array), on both backends.
fn porting_helpers_work_or_fail_clearly() {
    on_each_backend(|backend| {
        let refs: Vec<ObjectRef<u64>> = (1..=3).map(square::remote).collect();
        let shared = rustyray::get_all_arc(&refs).unwrap();
        assert_eq!(
            shared.iter().map(|v| **v).collect::<Vec<_>>(),
            [1, 4, 9],
            "{backend}"
        );
        let gathered = sum::remote(&refs);
        assert_eq!(
            rustyray::get(&gathered).unwrap(),
            14,
            "{backend}: a Vec of refs"
        );
        let name = rustyray::put("four".to_owned()).unwrap();
        let three = [refs[0].clone(), refs[1].clone(), refs[2].clone()];
        let mixed = pair_and_three::remote((refs[2].clone(), name), three);
        assert_eq!(
            rustyray::get(&mixed).unwrap(),
            9 + 4 + 14,
            "{backend}: a tuple, an array"
        );
    });
}

fn as_completed_gives_every_ref_once() {
    on_each_backend(|backend| {
        let refs: Vec<ObjectRef<u64>> = [40, 1, 20].into_iter().map(sleep_ms::remote).collect();
        let mut seen: Vec<u64> = rustyray::as_completed(&refs)
            .map(|r| rustyray::get(&r).unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [1, 20, 40], "{backend}");
    });
}

fn borrowed_shared_and_moved_parameters() {
    on_each_backend(|backend| {
        let values = rustyray::put(vec![1u64, 2, 3]).unwrap();
        let scale = rustyray::put_arc(std::sync::Arc::new(10u64)).unwrap();
        let tail = rustyray::put(vec![0u64; 5]).unwrap();
        // Refs, a value and an `Arc`; `tail`'s last ref moved in.
        let sum = weighted_sum::remote(&values, &scale, tail);
        assert_eq!(rustyray::get(&sum).unwrap(), 65, "{backend}");
        let direct = weighted_sum::remote(vec![4u64], std::sync::Arc::new(2u64), vec![1u64]);
        assert_eq!(rustyray::get(&direct).unwrap(), 9, "{backend}");
        let counter = Counter::remote(0);
        let added = counter.add_all(&values, std::sync::Arc::new(1u64));
        assert_eq!(rustyray::get(&added).unwrap(), 7, "{backend}");
        assert_eq!(
            rustyray::get(&values).unwrap(),
            vec![1, 2, 3],
            "{backend}: intact"
        );
    });
}

/// Whether `text` is a readable reason: not empty, no binary.
fn readable(text: &str) -> bool {
    !text.trim().is_empty() && !text.chars().any(|c| c.is_control() && c != '\n')
}

/// Ray only: a process that exits cannot be probed embedded, where it is the test's own.
fn an_actor_whose_process_exits_fails_its_calls() {
    if !ray_started() {
        return;
    }
    let actor = Fragile::remote(1);
    assert_eq!(rustyray::get(&actor.add(1)).unwrap(), 2);
    match rustyray::get_timeout(&actor.exit_process(), DEATH_NOTICE) {
        Err(Error::ActorDied { reason, .. }) => assert!(readable(&reason), "{reason:?}"),
        other => panic!("the call in flight gave {other:?}"),
    }
    match rustyray::get_timeout(&actor.add(1), DEATH_NOTICE) {
        Err(Error::ActorDied { reason, .. }) => assert!(readable(&reason), "{reason:?}"),
        other => panic!("a later call gave {other:?}"),
    }

    // With a restart left, Ray rebuilds it from its constructor; the call in flight fails.
    let restarted = Fragile::options().max_restarts(1).remote(5);
    assert_eq!(rustyray::get(&restarted.add(1)).unwrap(), 6);
    match rustyray::get_timeout(&restarted.exit_process(), DEATH_NOTICE) {
        Err(Error::ActorDied { reason, .. }) => assert!(readable(&reason), "{reason:?}"),
        Err(Error::TaskFailed { message, .. }) => assert!(readable(&message), "{message:?}"),
        other => panic!("the call in flight gave {other:?}"),
    }
    assert_eq!(
        rustyray::get_timeout(&restarted.add(1), DEATH_NOTICE).unwrap(),
        6
    );
}

/// Ray only, as above. Ray's C++ API re-runs a task whose worker died once, whatever
/// `max_retries` says (docs/ray.md, "Options on Ray"); the error after that names Ray's reason.
fn a_task_whose_worker_exits_fails_with_rays_reason() {
    if !ray_started() {
        return;
    }
    match rustyray::get_timeout(&exits_its_process::remote(), DEATH_NOTICE) {
        Err(Error::TaskFailed {
            function, message, ..
        }) => {
            assert_eq!(function, "exits_its_process");
            let reason = message
                .strip_prefix("its Ray worker died: ")
                .unwrap_or_else(|| panic!("{message:?}"));
            assert!(readable(reason) && reason.len() > 10, "{message:?}");
        }
        other => panic!("{other:?}"),
    }
    let path = tries_file("ray", "worker-exit");
    let err = rustyray::get_timeout(&record_then_exit::remote(path.clone()), DEATH_NOTICE);
    assert!(err.is_err(), "{err:?}");
    assert_eq!(probe::tries(&path), RAY_WORKER_DEATH_TRIES);
}

/// Tries of a task whose worker dies, on Ray 2.60's C++ API (measured; see docs/ray.md).
const RAY_WORKER_DEATH_TRIES: u64 = 2;

/// Runs a future to completion on this thread (the tests need no async runtime of their own).
fn futures_executor<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}

fn tasks_with_a_custom_resource_land_on_the_node_that_has_it() {
    if !ray_started() {
        return;
    }
    if std::env::var_os("RUSTYRAY_TEST_SECOND_NODE").is_none() {
        println!("RUSTYRAY_TEST_SECOND_NODE is not set: the second-node case is SKIPPED");
        return;
    }
    let labels: Vec<ObjectRef<String>> = (0..4)
        .map(|_| node_label::options().resource("second_node", 1.0).remote())
        .collect();
    for label in rustyray::get_all(&labels).unwrap() {
        assert_eq!(label, "second");
    }
    let anywhere = rustyray::get(&node_label::remote()).unwrap();
    assert!(anywhere == "head" || anywhere == "second", "{anywhere}");
}

/// Python, on the same cluster, calls RustyRay functions through Ray's cross-language API.
fn python_calls_rust_functions_with_json() {
    if !ray_started() {
        return;
    }
    let Ok(python) = std::env::var("RUSTYRAY_PYTHON") else {
        println!("RUSTYRAY_PYTHON is not set: the Python case is SKIPPED");
        return;
    };
    let address = std::env::var("RUSTYRAY_ADDRESS").unwrap();
    let code = std::env::var("RUSTYRAY_CODE_SEARCH_PATH").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/call_rust.py");
    let out = std::process::Command::new(python)
        .args([script, &address, &code])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("python -> rust: ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The cases, run one after the other: on Ray they share the process's one connection.
const CASES: &[(&str, fn())] = &[
    (
        "chains_resolve_refs_before_the_task_runs",
        chains_resolve_refs_before_the_task_runs,
    ),
    ("fan_out_and_gather", fan_out_and_gather),
    (
        "actor_handles_pass_as_arguments",
        actor_handles_pass_as_arguments,
    ),
    (
        "refs_inside_values_read_the_senders_objects",
        refs_inside_values_read_the_senders_objects,
    ),
    (
        "tasks_wait_on_a_signal_actor_they_were_handed",
        tasks_wait_on_a_signal_actor_they_were_handed,
    ),
    (
        "worker_actors_pull_from_a_queue_they_were_handed",
        worker_actors_pull_from_a_queue_they_were_handed,
    ),
    (
        "nested_tasks_run_on_the_same_backend",
        nested_tasks_run_on_the_same_backend,
    ),
    (
        "actor_calls_run_in_order_with_ref_arguments",
        actor_calls_run_in_order_with_ref_arguments,
    ),
    (
        "a_failure_reaches_the_caller_and_every_dependent",
        a_failure_reaches_the_caller_and_every_dependent,
    ),
    (
        "a_failing_method_leaves_the_actor_working",
        a_failing_method_leaves_the_actor_working,
    ),
    (
        "named_actors_are_found_by_name",
        named_actors_are_found_by_name,
    ),
    (
        "a_killed_actor_fails_its_calls",
        a_killed_actor_fails_its_calls,
    ),
    ("put_get_and_wait", put_get_and_wait),
    (
        "borrowed_shared_and_moved_parameters",
        borrowed_shared_and_moved_parameters,
    ),
    (
        "as_completed_gives_every_ref_once",
        as_completed_gives_every_ref_once,
    ),
    (
        "several_returns_split_into_objects_of_their_own",
        several_returns_split_into_objects_of_their_own,
    ),
    (
        "streams_hand_over_items_while_the_producer_runs",
        streams_hand_over_items_while_the_producer_runs,
    ),
    (
        "cancel_stops_queued_running_and_child_tasks",
        cancel_stops_queued_running_and_child_tasks,
    ),
    (
        "placement_groups_reserve_and_place",
        placement_groups_reserve_and_place,
    ),
    (
        "util_helpers_queues_and_concurrency_groups_work",
        util_helpers_queues_and_concurrency_groups_work,
    ),
    (
        "porting_helpers_work_or_fail_clearly",
        porting_helpers_work_or_fail_clearly,
    ),
    ("async_code_awaits_refs", async_code_awaits_refs),
    (
        "retries_follow_max_retries_and_retry_exceptions",
        retries_follow_max_retries_and_retry_exceptions,
    ),
    (
        "a_panicking_task_is_named_as_embedded",
        a_panicking_task_is_named_as_embedded,
    ),
    (
        "a_panicking_method_ends_the_actor",
        a_panicking_method_ends_the_actor,
    ),
    (
        "a_panicking_method_restarts_the_actor_while_restarts_remain",
        a_panicking_method_restarts_the_actor_while_restarts_remain,
    ),
    (
        "a_ref_read_as_another_type_is_a_type_mismatch",
        a_ref_read_as_another_type_is_a_type_mismatch,
    ),
    (
        "an_actor_whose_process_exits_fails_its_calls",
        an_actor_whose_process_exits_fails_its_calls,
    ),
    (
        "a_task_whose_worker_exits_fails_with_rays_reason",
        a_task_whose_worker_exits_fails_with_rays_reason,
    ),
    (
        "tasks_with_a_custom_resource_land_on_the_node_that_has_it",
        tasks_with_a_custom_resource_land_on_the_node_that_has_it,
    ),
    (
        "strict_spread_puts_bundles_on_both_nodes",
        strict_spread_puts_bundles_on_both_nodes,
    ),
    ("actors_behave_as_rays", actors_behave_as_rays),
    (
        "python_calls_rust_functions_with_json",
        python_calls_rust_functions_with_json,
    ),
];

/// A small harness (this target has `harness = false`): it must disconnect from Ray after the
/// last case, which libtest gives no place for. It prints libtest's summary line.
fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if start_ray() {
        std::env::set_var("RUSTYRAY_BACKEND_TESTS_ON_RAY", "1");
    }
    let started = Instant::now();
    let (mut passed, mut failed, mut filtered) = (0, Vec::new(), 0);
    println!("\nrunning {} tests", CASES.len());
    for (name, case) in CASES {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            filtered += 1;
            continue;
        }
        let t = Instant::now();
        match catch_unwind(AssertUnwindSafe(case)) {
            Ok(()) => {
                println!("test {name} ... ok ({:.2}s)", t.elapsed().as_secs_f64());
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED ({:.2}s)", t.elapsed().as_secs_f64());
                failed.push(*name);
            }
        }
    }
    rustyray::shutdown();
    for path in TRIES_FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        let _ = std::fs::remove_file(path);
    }
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    if !failed.is_empty() {
        println!("\nfailures:\n    {}", failed.join("\n    "));
    }
    println!(
        "\ntest result: {verdict}. {passed} passed; {} failed; 0 ignored; 0 measured; {filtered} \
         filtered out; finished in {:.2}s\n",
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    std::process::exit(if failed.is_empty() { 0 } else { 101 });
}
