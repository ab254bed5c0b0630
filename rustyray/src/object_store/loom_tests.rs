//! The cell's resolution, model-checked: a result being stored, a cancellation and a waiter
//! subscribing, all at once. Whatever the interleaving, exactly one outcome takes effect, the
//! waiter is told exactly once unless `subscribe` already gave it the state, and what the
//! waiter is told is the outcome that took effect.
//! Run with `.ci/loom`.

use std::sync::Arc;

use super::{Arrival, Cell, ObjectStore, State, Waiter};
use crate::error::Error;
use crate::object_store::Object;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Mutex;

/// A waiter recording what it was told.
#[derive(Default)]
struct Told {
    times: AtomicUsize,
    state: Mutex<Option<State>>,
}

impl Arrival for Told {
    fn arrive(&self, state: &State) {
        self.times.fetch_add(1, Ordering::SeqCst);
        *self.state.lock() = Some(state.clone());
    }

    fn is_leaf(&self) -> bool {
        true
    }
}

/// Two threads racing on `cell`: one storing the result 5, one cancelling the task; each
/// tells whether it took effect.
fn store_and_cancel(
    cell: &Arc<Cell>,
) -> (
    loom::thread::JoinHandle<bool>,
    loom::thread::JoinHandle<bool>,
) {
    let finisher = {
        let cell = Arc::clone(cell);
        loom::thread::spawn(move || cell.complete(Ok(Object::new(5u64))))
    };
    let canceller = {
        let cell = Arc::clone(cell);
        loom::thread::spawn(move || cell.cancel())
    };
    (finisher, canceller)
}

#[test]
fn a_result_a_cancel_and_a_subscriber_at_once_agree_on_one_outcome() {
    crate::sync::model(3, || {
        let store = ObjectStore::for_tests(1);
        let cell = store.insert_pending(None);
        let (finisher, canceller) = store_and_cancel(&cell);
        let told = Arc::new(Told::default());
        let at_once = cell.subscribe(Waiter::new(Arc::clone(&told) as _));
        let finished = finisher.join().unwrap();
        let cancelled = canceller.join().unwrap();

        assert!(finished != cancelled, "exactly one outcome takes effect");
        let state = cell.state();
        let expected = if finished {
            State::Ready
        } else {
            State::Failed(Box::new(Error::Cancelled {
                function: String::new(),
            }))
        };
        assert_eq!(
            std::mem::discriminant(&state),
            std::mem::discriminant(&expected)
        );
        match at_once {
            Some(now) => {
                assert_eq!(
                    told.times.load(Ordering::SeqCst),
                    0,
                    "given the state, not told"
                );
                assert_eq!(std::mem::discriminant(&now), std::mem::discriminant(&state));
            }
            None => {
                assert_eq!(told.times.load(Ordering::SeqCst), 1, "told exactly once");
                let seen = told.state.lock().clone().expect("told");
                assert_eq!(
                    std::mem::discriminant(&seen),
                    std::mem::discriminant(&state)
                );
            }
        }
        if finished {
            assert_eq!(*cell.read::<u64>().unwrap().unwrap(), 5);
        }
    });
}

/// A scalar result read without the cell's lock while it is stored: the reader finds the
/// object pending or reads the stored value, never the bits before it; with a cancellation
/// racing the result, whatever it reads agrees with the outcome that took effect.
#[test]
fn a_scalar_read_without_the_lock_sees_pending_or_the_stored_value() {
    crate::sync::model(3, || {
        let store = ObjectStore::for_tests(1);
        let cell = store.insert_pending(None);
        let (finisher, canceller) = store_and_cancel(&cell);
        let early = cell.read_value::<u64>();
        let finished = finisher.join().unwrap();
        canceller.join().unwrap();
        match early {
            None => {}
            Some(Ok(value)) => assert!(finished && value == 5, "read {value}"),
            Some(Err(error)) => assert!(!finished, "read {error}"),
        }
        let late = cell.read_value::<u64>().expect("resolved");
        assert_eq!(late.is_ok(), finished);
        if finished {
            assert_eq!(late.unwrap(), 5);
        }
    });
}
