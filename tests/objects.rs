//! put / get / wait and ObjectRef behaviour.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustyray::task::TaskBuilder;
use rustyray::{Error, ObjectRef};

#[test]
fn put_then_get_returns_the_value_and_get_arc_shares_it() {
    let rt = runtime(2);
    let _g = rt.enter();
    let r = rustyray::put(vec![7u64; 1000]).unwrap();
    assert_eq!(rustyray::get(&r).unwrap(), vec![7u64; 1000]);
    let a = rustyray::get_arc(&r).unwrap();
    let b = rustyray::get_arc(&r).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "zero-copy get shares one value");
}

#[test]
fn get_all_keeps_input_order_and_reports_the_first_error() {
    let rt = runtime(2);
    let _g = rt.enter();
    let refs: Vec<ObjectRef<i64>> = (0..100).map(|i| add(i, 1)).collect();
    assert_eq!(
        rustyray::get_all(&refs).unwrap(),
        (1..=100).collect::<Vec<i64>>()
    );
    let mixed = vec![add(1, 1), fail("second"), fail("third")];
    match rustyray::get_all(&mixed) {
        Err(Error::TaskFailed { message, .. }) => assert_eq!(message, "second"),
        other => panic!("{other:?}"),
    }
}

/// `get_all` waits for the pending refs together, but a failure ends the wait early: the first
/// error in input order is reported as soon as the refs before it are resolved, while later
/// refs are still pending.
#[test]
fn get_all_fails_at_the_first_error_without_waiting_for_later_refs() {
    let rt = runtime(2);
    let _g = rt.enter();
    let (slow, open) = gated(7i64);
    let first_fails = vec![fail("early"), slow.clone()];
    let (done, finished) = std::sync::mpsc::channel();
    let rt2 = rt.clone();
    let getter = std::thread::spawn(move || {
        let _g = rt2.enter();
        done.send(rustyray::get_all(&first_fails).map_err(|e| e.to_string()))
            .unwrap();
    });
    match finished.recv_timeout(DEADLOCK_GUARD) {
        Ok(Err(message)) => assert!(message.contains("early"), "{message}"),
        other => panic!("get_all waited for the gated ref: {other:?}"),
    }
    getter.join().unwrap();
    // An error after a pending ref is reported once that ref resolves (input order).
    let (gate, open_too) = gated(1i64);
    let later_fails = vec![gate, fail("late")];
    open_too.send(()).unwrap();
    match rustyray::get_all(&later_fails) {
        Err(Error::TaskFailed { message, .. }) => assert_eq!(message, "late"),
        other => panic!("{other:?}"),
    }
    open.send(()).unwrap();
    assert_eq!(rustyray::get(&slow).unwrap(), 7);
}

#[test]
fn refs_clone_cheaply_and_serialize_as_their_id() {
    let rt = runtime(1);
    let _g = rt.enter();
    let value = "x".repeat(1000);
    let r = rustyray::put(value.clone()).unwrap();
    let bytes = postcard::to_stdvec(&r).unwrap();
    // The process's nonce, the runtime and the sequence number, at most 10 + 5 + 10 bytes.
    assert!(bytes.len() <= 25, "a ref serializes as its id only");
    let back: ObjectRef<String> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, r);
    assert_eq!(rustyray::get(&back).unwrap(), value);
}

#[test]
fn reading_an_object_as_another_type_is_a_type_mismatch() {
    let rt = runtime(1);
    let _g = rt.enter();
    let r = rustyray::put(5u32).unwrap();
    let bytes = postcard::to_stdvec(&r).unwrap();
    let wrong: ObjectRef<String> = postcard::from_bytes(&bytes).unwrap();
    match rustyray::get(&wrong) {
        Err(Error::TypeMismatch { expected, found }) => {
            assert!(expected.contains("String"));
            assert_eq!(found, "u32");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refs_of_another_runtime_are_not_found_with_a_clear_error() {
    let rt1 = runtime(1);
    let rt2 = runtime(1);
    let r = {
        let _g = rt1.enter();
        rustyray::put(1u8).unwrap()
    };
    let _g = rt2.enter();
    let err = rustyray::get(&r).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("Runtime::enter"), "{err}");
}

#[test]
fn wait_returns_ready_and_pending_in_input_order_after_the_timeout() {
    let rt = runtime(2);
    let _g = rt.enter();
    let (slow, release) = gated(1);
    let fast = add(1, 1);
    let refs = vec![slow.clone(), fast.clone()];
    let (ready, pending) = rustyray::wait(&refs, 2, Some(Duration::from_millis(200)));
    assert_eq!(ready, vec![fast.clone()]);
    assert_eq!(pending, vec![slow.clone()]);
    release.send(()).unwrap();
    let (ready, pending) = rustyray::wait(&refs, 2, None);
    assert_eq!(ready, refs, "all ready, in input order");
    assert!(pending.is_empty());
}

#[test]
fn wait_returns_at_most_num_returns_and_counts_failures_as_ready() {
    let rt = runtime(2);
    let _g = rt.enter();
    let refs = vec![fail("x"), add(1, 2), add(3, 4)];
    rustyray::get_all(&refs[1..]).unwrap();
    assert!(rustyray::get(&refs[0]).is_err()); // all three resolved, the first one failed
    let (ready, pending) = rustyray::wait(&refs, 2, None);
    assert_eq!(ready, refs[..2].to_vec());
    assert_eq!(pending, refs[2..].to_vec());
    let (ready, _) = rustyray::wait(&refs, 10, None);
    assert_eq!(ready.len(), 3, "num_returns above the count waits for all");
}

#[test]
fn get_timeout_fails_with_timeout_and_the_task_still_finishes() {
    let rt = runtime(2);
    let _g = rt.enter();
    let (slow, release) = gated(9);
    let err = rustyray::get_timeout(&slow, Duration::from_millis(50)).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    release.send(()).unwrap();
    assert_eq!(rustyray::get(&slow).unwrap(), 9);
}

#[test]
fn get_of_a_task_that_runs_eleven_seconds_waits_with_no_hidden_cap() {
    let rt = runtime(1);
    let _g = rt.enter();
    let r = TaskBuilder::new("slow").spawn(|| {
        std::thread::sleep(Duration::from_secs(11));
        Ok(11u32)
    });
    assert_eq!(rustyray::get(&r).unwrap(), 11);
}

#[tokio::test]
async fn refs_are_awaitable_owned_and_by_reference() {
    let rt = runtime(2);
    let r = {
        let _g = rt.enter();
        add(20, 22)
    };
    let _g = rt.enter();
    assert_eq!((&r).await.unwrap(), 42);
    assert_eq!(r.await.unwrap(), 42);
    let failed = fail("boom");
    assert!(matches!(failed.await, Err(Error::TaskFailed { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_get_inside_async_code_does_not_stall_the_caller_runtime() {
    let rt = runtime(2);
    let _g = rt.enter();
    let (slow, release) = gated(3);
    let waiter = {
        let rt = rt.clone();
        tokio::spawn(async move {
            let _g = rt.enter();
            rustyray::get(&slow)
        })
    };
    // The other worker of the caller's runtime stays free while `get` blocks.
    tokio::task::yield_now().await;
    release.send(()).unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), 3);
}

#[test]
fn shutdown_fails_pending_gets_and_later_calls_with_runtime_shutdown() {
    let rt = runtime(1);
    let _g = rt.enter();
    let (slow, _release) = gated(1);
    let ready = rustyray::put(5).unwrap();
    let waiter = {
        let rt = rt.clone();
        let slow = slow.clone();
        std::thread::spawn(move || {
            let _g = rt.enter();
            rustyray::get(&slow)
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    rt.shutdown();
    assert_eq!(waiter.join().unwrap(), Err(Error::RuntimeShutdown));
    assert_eq!(rustyray::get(&ready), Err(Error::RuntimeShutdown));
    assert_eq!(rustyray::put(1).unwrap_err(), Error::RuntimeShutdown);
    assert_eq!(rustyray::get(&add(1, 1)), Err(Error::RuntimeShutdown));
}

#[test]
fn enter_guards_nest_and_restore_the_previous_runtime() {
    let outer = runtime(1);
    let inner = runtime(1);
    let _o = outer.enter();
    let a = rustyray::put(1).unwrap();
    assert_eq!(a.id().owner(), outer.id());
    {
        let _i = inner.enter();
        assert_eq!(rustyray::put(2).unwrap().id().owner(), inner.id());
    }
    assert_eq!(rustyray::put(3).unwrap().id().owner(), outer.id());
}
