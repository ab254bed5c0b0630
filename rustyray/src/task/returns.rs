//! Several returns (`num_returns = N`): a task's tuple result split into N objects, each freed
//! on its own.
//!
//! # Design
//!
//! The task stores its tuple as one hidden object, as any result. The caller gets N refs to
//! pending objects, and the hidden object one waiter, the splitter. When the tuple resolves,
//! the splitter moves it out of the hidden object (the splitter holds its only handle by then:
//! the task lets go of its result before waking its waiters), stores each field as its own
//! object, and lets the hidden one go. A failed or cancelled task fails all N with its error.
//! Cancelling any of the N cancels the task (their producer forwards it), which then fails all.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::error::Error;
use crate::object_ref::ObjectRef;
use crate::object_store::{Arrival, Cell, Object, ObjectId, Producer, State, Value, Waiter};
use crate::runtime;

/// A tuple a task can return as several objects.
pub(crate) trait Fields: Value + Clone {
    /// How many fields.
    const N: usize;
    /// The fields, each as an object.
    fn into_objects(self) -> SmallVec<[Object; 4]>;
}

/// A tuple a `num_returns` entry point returns, as its fields' frames (the Ray backend stores
/// it so; see `codec::frame::join_parts`).
#[doc(hidden)]
pub trait Frames {
    /// Each field, framed.
    fn frames(&self) -> crate::Result<Vec<Vec<u8>>>;
}

/// What produces the N objects (one for all of them): cancelling any cancels the task. Weak:
/// the splitter must hold the task's result alone when it resolves, to move the tuple out.
struct Part {
    function: &'static str,
    task: Weak<Cell>,
}

impl Producer for Part {
    fn function(&self) -> &str {
        self.function
    }

    fn cancelled(&self, _object: ObjectId) {
        if let Some(task) = self.task.upgrade() {
            task.cancel();
        }
    }

    fn is_cancelled(&self) -> bool {
        self.task.upgrade().is_none_or(|task| !task.is_pending())
    }

    fn adopt(&self, _child: &Arc<Cell>) {}

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// The objects of a tuple's fields (on the stack up to four).
type Parts = SmallVec<[Arc<Cell>; 4]>;

/// The task's (hidden) result and the objects of its fields.
type Split = (Arc<Cell>, Parts);

/// The task's whole result once it resolved with `state`: moved out when nothing else holds
/// it, copied otherwise; or its error.
fn whole<T: Value + Clone>(task: &Arc<Cell>, state: &State) -> crate::Result<T> {
    if let Some(error) = state.failure() {
        return Err(error);
    }
    match task.take_last_value::<T>() {
        Some(whole) => Ok(whole),
        None => task
            .read::<T>()
            .unwrap_or_else(|| Err(Error::InvalidArgument("unresolved".to_owned())))
            .map(|whole| (*whole).clone()),
    }
}

/// The hidden object's waiter: stores the fields, or fails every part.
struct Splitter<T> {
    /// Taken when the task's result resolves.
    taken: Mutex<Option<Split>>,
    _fields: std::marker::PhantomData<fn() -> T>,
}

impl<T: Fields> Arrival for Splitter<T> {
    fn arrive(&self, state: &State) {
        let Some((task, parts)) = self.taken.lock().take() else {
            return;
        };
        let fields = whole::<T>(&task, state);
        drop(task);
        // `finish` lets go of each part before waking what waits for it, so a part whose
        // refs are all dropped by then is freed at once.
        match fields {
            Ok(tuple) => {
                for (part, object) in parts.into_iter().zip(tuple.into_objects()) {
                    part.finish(Ok(object));
                }
            }
            Err(error) => {
                for part in parts {
                    part.finish(Err(error.clone()));
                }
            }
        }
    }

    fn is_leaf(&self) -> bool {
        false // it resolves the parts, whose waiters run next
    }
}

/// The N refs of a task returning `T` as N objects: `r` is the task's own (hidden) result.
pub(crate) fn split<T: Fields>(r: ObjectRef<T>, function: &'static str) -> Parts {
    split_into(r, T::N, function, |taken| Splitter::<T> {
        taken,
        _fields: std::marker::PhantomData,
    })
}

/// The `n` parts of the task making `r`: split by the backend (Ray stores them as parts of one
/// object), else pending objects that the waiter `splitter(..)` makes stores when `r` resolves.
fn split_into<T, W: Arrival + 'static>(
    r: ObjectRef<T>,
    n: usize,
    function: &'static str,
    splitter: impl FnOnce(Mutex<Option<Split>>) -> W,
) -> Parts {
    let shared = runtime::current();
    let Some(task) = r.cell().cloned() else {
        let error = crate::object_ref::missing(r.id());
        return (0..n)
            .map(|_| shared.store().insert_failed(error.clone()))
            .collect();
    };
    drop(r);
    if let Some(parts) = shared.backend().split_returns(&shared, &task, n) {
        return parts.into_iter().collect();
    }
    let producer: Arc<dyn Producer> = Arc::new(Part {
        function,
        task: Arc::downgrade(&task),
    });
    let parts: Parts = (0..n)
        .map(|_| shared.store().insert_pending(Some(Arc::clone(&producer))))
        .collect();
    let splitter = Arc::new(splitter(Mutex::new(Some((
        Arc::clone(&task),
        parts.clone(),
    )))));
    if let Some(state) = task.subscribe(Waiter::new(Arc::clone(&splitter) as _)) {
        drop(task);
        splitter.arrive(&state);
    }
    parts
}

/// The hidden object's waiter for a `Vec` result split into `n` parts (`num_returns(n)` set
/// per call): stores each element, or fails every part (also when the `Vec` has another
/// length).
struct VecSplitter<T> {
    function: &'static str,
    taken: Mutex<Option<Split>>,
    _elements: std::marker::PhantomData<fn() -> T>,
}

impl<T: Value + Clone> Arrival for VecSplitter<T> {
    fn arrive(&self, state: &State) {
        let Some((task, parts)) = self.taken.lock().take() else {
            return;
        };
        let elements = whole::<Vec<T>>(&task, state);
        drop(task);
        let elements = elements.and_then(|elements| match elements.len() == parts.len() {
            true => Ok(elements),
            false => Err(wrong_count(self.function, elements.len(), parts.len())),
        });
        match elements {
            Ok(elements) => {
                for (part, element) in parts.into_iter().zip(elements) {
                    part.finish(Ok(Object::new(element)));
                }
            }
            Err(error) => {
                for part in parts {
                    part.finish(Err(error.clone()));
                }
            }
        }
    }

    fn is_leaf(&self) -> bool {
        false // it resolves the parts, whose waiters run next
    }
}

thread_local! {
    /// While a Ray worker runs a call that asked for `num_returns(n)` per call: `n`.
    static DYNAMIC: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// How many objects the call running here asked its `Vec` result to come back as, if it did.
pub(crate) fn dynamic_returns() -> Option<usize> {
    DYNAMIC.with(std::cell::Cell::get)
}

/// Runs `body` (a call's entry point) as a call that asked for `n` returns per call.
#[cfg_attr(not(feature = "ray"), allow(dead_code))]
pub(crate) fn with_dynamic_returns<R>(n: Option<usize>, body: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DYNAMIC.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DYNAMIC.with(|d| d.replace(n)));
    body()
}

/// The error of a `Vec` result of `got` elements asked to come back as `wanted` objects.
pub(crate) fn wrong_count(function: &str, got: usize, wanted: usize) -> Error {
    Error::task_failed(
        function,
        &anyhow::anyhow!(
            "it returned {got} values, but the call asked for num_returns({wanted}): return a \
             Vec of exactly {wanted} values, or ask for as many as it returns"
        ),
    )
}

/// The `n` refs of a call of a function returning `Vec<T>` with `num_returns(n)` set: `r` is
/// the task's own (hidden) result (the macros call it).
#[doc(hidden)]
pub fn split_vec<T: Value + Clone>(
    r: ObjectRef<Vec<T>>,
    n: usize,
    function: &'static str,
) -> Vec<ObjectRef<T>> {
    let parts = split_into(r, n, function, |taken| VecSplitter::<T> {
        function,
        taken,
        _elements: std::marker::PhantomData,
    });
    parts.into_iter().map(ObjectRef::from_new_cell).collect()
}

macro_rules! tuples {
    ($($split:ident: $n:literal => ($($t:ident $i:tt),+);)+) => {$(
        impl<$($t: Value + Clone),+> Fields for ($($t,)+) {
            const N: usize = $n;
            fn into_objects(self) -> SmallVec<[Object; 4]> {
                smallvec::smallvec![$(Object::new(self.$i)),+]
            }
        }

        impl<$($t: Value),+> Frames for ($($t,)+) {
            fn frames(&self) -> crate::Result<Vec<Vec<u8>>> {
                Ok(vec![$(crate::object_store::codec::frame::encode(&self.$i)?),+])
            }
        }

        /// Splits the result of a task declared with `num_returns` into its objects (the
        /// macros call it).
        #[doc(hidden)]
        pub fn $split<$($t: Value + Clone),+>(
            r: ObjectRef<($($t,)+)>,
            function: &'static str,
        ) -> ($(ObjectRef<$t>,)+) {
            let mut parts = split(r, function).into_iter();
            ($(ObjectRef::<$t>::from_new_cell(
                parts.next().expect(concat!("part ", stringify!($i))),
            ),)+)
        }
    )+};
}

tuples! {
    split2: 2 => (A 0, B 1);
    split3: 3 => (A 0, B 1, C 2);
    split4: 4 => (A 0, B 1, C 2, D 3);
    split5: 5 => (A 0, B 1, C 2, D 3, E 4);
    split6: 6 => (A 0, B 1, C 2, D 3, E 4, F 5);
    split7: 7 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6);
    split8: 8 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
}
