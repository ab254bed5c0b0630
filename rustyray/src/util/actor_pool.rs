//! `ActorPool`: spread calls over a fixed set of actors (Ray's `ray.util.ActorPool`).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use crate::actor::{Actor, ActorHandle};
use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::Value;

/// A call waiting for an idle actor.
type Pending<A, R> = Box<dyn FnOnce(&ActorHandle<A>) -> ObjectRef<R> + Send>;

/// A pool of actors that calls are spread over, one call per actor at a time (Ray's
/// `ray.util.ActorPool`). Each call is a closure given an idle actor's handle and returning the
/// call's ref; a call submitted while every actor is busy waits for one to come back. Results
/// come back in submission order ([`get_next`](Self::get_next), [`map`](Self::map)) or as they
/// finish ([`get_next_unordered`](Self::get_next_unordered),
/// [`map_unordered`](Self::map_unordered)); taking a result gives its actor back to the pool.
///
/// ```
/// use rustyray::util::ActorPool;
///
/// #[rustyray::actor]
/// struct Doubler;
///
/// #[rustyray::actor]
/// impl Doubler {
///     fn new() -> Self {
///         Doubler
///     }
///     fn double(&self, x: u64) -> u64 {
///         x * 2
///     }
/// }
///
/// # fn main() -> rustyray::Result<()> {
/// # let rt = rustyray::Runtime::new(rustyray::Config::default())?;
/// # let _guard = rt.enter();
/// let mut pool = ActorPool::new([Doubler::remote(), Doubler::remote()]);
/// let doubled: Vec<u64> = pool
///     .map(|actor, x| actor.double(x), 1..=4)
///     .collect::<rustyray::Result<_>>()?;
/// assert_eq!(doubled, [2, 4, 6, 8]);
/// # Ok(())
/// # }
/// ```
pub struct ActorPool<A: Actor, R> {
    idle: VecDeque<ActorHandle<A>>,
    /// Calls made, by submission number, with the actor each runs on.
    running: BTreeMap<u64, (ObjectRef<R>, ActorHandle<A>)>,
    /// Calls waiting for an actor, in submission order (numbered after every running one).
    waiting: VecDeque<(u64, Pending<A, R>)>,
    /// The next submission's number.
    submitted: u64,
}

impl<A: Actor, R: Value + Clone> ActorPool<A, R> {
    /// A pool of `actors`, all idle.
    pub fn new(actors: impl IntoIterator<Item = ActorHandle<A>>) -> ActorPool<A, R> {
        ActorPool {
            idle: actors.into_iter().collect(),
            running: BTreeMap::new(),
            waiting: VecDeque::new(),
            submitted: 0,
        }
    }

    /// Calls `call(actor, value)` on an idle actor, or as soon as one is idle.
    pub fn submit<V: Send + 'static>(
        &mut self,
        call: impl FnOnce(&ActorHandle<A>, V) -> ObjectRef<R> + Send + 'static,
        value: V,
    ) {
        let number = self.submitted;
        self.submitted += 1;
        self.waiting
            .push_back((number, Box::new(move |actor| call(actor, value))));
        self.dispatch();
    }

    /// Whether a submitted call's result has not been taken yet.
    pub fn has_next(&self) -> bool {
        !self.running.is_empty() || !self.waiting.is_empty()
    }

    /// Whether an actor is idle (a call submitted now starts at once).
    pub fn has_free(&self) -> bool {
        self.idle.len() > self.waiting.len()
    }

    /// The result of the oldest call not taken yet, waiting for it; its actor goes back to the
    /// pool. Fails with [`Error::NotFound`] when nothing was submitted, or with the call's error.
    pub fn get_next(&mut self) -> Result<R> {
        // Calls start in submission order, so the oldest one not taken is running.
        let Some((call, actor)) = self.running.pop_first().map(|(_, running)| running) else {
            return Err(self.none_running());
        };
        self.take(call, actor)
    }

    /// The result of whichever call finishes first among those not taken yet; its actor goes
    /// back to the pool. Results taken this way are skipped by [`get_next`](Self::get_next).
    pub fn get_next_unordered(&mut self) -> Result<R> {
        if self.running.is_empty() {
            return Err(self.none_running());
        }
        let refs: Vec<ObjectRef<R>> = self.running.values().map(|(r, _)| r.clone()).collect();
        let (done, _) = crate::api::wait(&refs, 1, None);
        let first = done.first().map(ObjectRef::id);
        let number = *self
            .running
            .iter()
            .find(|(_, (r, _))| Some(r.id()) == first)
            .map(|(n, _)| n)
            .expect("wait returns one of the running calls");
        let (call, actor) = self.running.remove(&number).expect("found above");
        self.take(call, actor)
    }

    /// Submits `call` for every value, then yields the results in the order of the values.
    pub fn map<V: Send + 'static>(
        &mut self,
        call: impl Fn(&ActorHandle<A>, V) -> ObjectRef<R> + Send + Sync + Clone + 'static,
        values: impl IntoIterator<Item = V>,
    ) -> impl Iterator<Item = Result<R>> + '_ {
        let count = self.submit_all(call, values);
        (0..count).map(move |_| self.get_next())
    }

    /// Submits `call` for every value, then yields the results as the calls finish.
    pub fn map_unordered<V: Send + 'static>(
        &mut self,
        call: impl Fn(&ActorHandle<A>, V) -> ObjectRef<R> + Send + Sync + Clone + 'static,
        values: impl IntoIterator<Item = V>,
    ) -> impl Iterator<Item = Result<R>> + '_ {
        let count = self.submit_all(call, values);
        (0..count).map(move |_| self.get_next_unordered())
    }

    /// Adds an actor to the pool (idle; a waiting call starts on it at once).
    pub fn push(&mut self, actor: ActorHandle<A>) {
        self.idle.push_back(actor);
        self.dispatch();
    }

    /// Takes an idle actor out of the pool, if one is idle.
    pub fn pop_idle(&mut self) -> Option<ActorHandle<A>> {
        if self.has_free() {
            self.idle.pop_front()
        } else {
            None
        }
    }

    fn submit_all<V: Send + 'static>(
        &mut self,
        call: impl Fn(&ActorHandle<A>, V) -> ObjectRef<R> + Send + Sync + Clone + 'static,
        values: impl IntoIterator<Item = V>,
    ) -> usize {
        // Results not taken before are dropped from the count `map` yields, as in Ray.
        let mut count = 0;
        for value in values {
            self.submit(call.clone(), value);
            count += 1;
        }
        count
    }

    /// Starts waiting calls while actors are idle.
    fn dispatch(&mut self) {
        while !self.waiting.is_empty() && !self.idle.is_empty() {
            let (number, call) = self.waiting.pop_front().expect("checked");
            let actor = self.idle.pop_front().expect("checked");
            let r = call(&actor);
            self.running.insert(number, (r, actor));
        }
    }

    /// Reads a call's result and gives its actor back.
    fn take(&mut self, call: ObjectRef<R>, actor: ActorHandle<A>) -> Result<R> {
        let result = crate::api::get(&call);
        self.idle.push_back(actor);
        self.dispatch();
        result
    }
}

impl<A: Actor, R> ActorPool<A, R> {
    /// Why there is no running call to wait for.
    fn none_running(&self) -> Error {
        if self.waiting.is_empty() {
            Error::NotFound {
                what: "a result in the actor pool: every submitted call's result was taken; \
                       submit more first"
                    .to_owned(),
            }
        } else {
            Error::InvalidArgument(
                "the actor pool has no actors, so its submitted calls cannot run; `push` one"
                    .to_owned(),
            )
        }
    }
}

impl<A: Actor, R> fmt::Debug for ActorPool<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorPool")
            .field("idle", &self.idle.len())
            .field("running", &self.running.len())
            .field("waiting", &self.waiting.len())
            .finish()
    }
}
