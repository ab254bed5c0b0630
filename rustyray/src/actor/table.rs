//! The actors of one runtime: each actor's cell (its mailbox and whether it is alive), how many
//! handles refer to it, and the names of named actors.
//!
//! An unnamed actor is freed when its last handle is dropped: its mailbox closes, it runs the
//! calls already sent, and its state is dropped. A named actor lives until it is killed, since
//! `get_actor` can always hand out a new handle.

use std::any::Any;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::host::ActorHost;
use super::{ActorId, Call};
use crate::cpu_pool::CpuPool;
use crate::error::{Error, Result};
use crate::object_store::Cell;
use crate::ray::RemoteActor;
use crate::state::{ActorInfo, ActorState};

/// What callers share with a running actor: its mailbox and whether it is alive.
pub(super) struct ActorCell<A> {
    pub(super) class: Cow<'static, str>,
    /// On a cache line of its own: the host takes its lock too, and callers write the cell's
    /// reference count (the `Arc`'s, just before `class`) at every call.
    mailbox: CachePadded<Mutex<Mailbox<A>>>,
    alive: AtomicBool,
    death: Mutex<Option<String>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    /// What the host writes at every call, on a cache line of its own so that callers
    /// reading `alive` do not miss on it.
    progress: CachePadded<Progress>,
}

/// What an actor's host notes as it takes each call.
struct Progress {
    /// The sync call running on the CPU pool now (or the last one run), failed at once by
    /// `kill`.
    running: Mutex<Option<Weak<Cell>>>,
    /// Calls the host had taken from the mailbox but not run when it last took one (for
    /// `rustyray::state`).
    queued: AtomicUsize,
}

/// An actor's mailbox: the calls sent and not yet taken, and its host while it is idle.
///
/// A host that ran out of sync calls on the CPU pool parks here instead of going back to
/// tokio; the next send takes it out and starts it on the pool again. Parking and sending
/// both happen under the mailbox's lock, so a call can never arrive unseen between the host's
/// last look at an empty mailbox and its parking. The host takes all waiting calls at once.
struct Mailbox<A> {
    calls: VecDeque<Call<A>>,
    /// Set once no more calls are accepted (the last handle dropped, or the actor died).
    closed: bool,
    /// The host's task, waiting on tokio for the next call.
    waker: Option<Waker>,
    parked: Option<(ActorHost<A>, Box<A>)>,
    /// A job that starts the parked host is queued on the CPU pool (so a send need not queue
    /// another).
    started: bool,
}

impl<A> Mailbox<A> {
    /// Moves every waiting call to the end of `into`, in order. Whether there were any, or
    /// `None` once the mailbox is closed and empty.
    fn take_into(&mut self, into: &mut VecDeque<Call<A>>) -> Option<bool> {
        if self.calls.is_empty() {
            return if self.closed { None } else { Some(false) };
        }
        if into.is_empty() {
            std::mem::swap(into, &mut self.calls); // both keep their capacity
        } else {
            into.append(&mut self.calls);
        }
        Some(true)
    }
}

thread_local! {
    /// The cell of the actor this thread last sent a call to (see [`ActorTable::get_live`]
    /// and [`help`]).
    static LAST: RefCell<Option<(ActorId, Weak<dyn CellOps>)>> = const { RefCell::new(None) };
}

/// Called by a thread about to block on `out`: if `out` is the result of the last call this
/// thread sent, and that call waits for an idle sync actor whose host has not started yet, runs
/// it here instead of waiting for a CPU-pool thread to wake up. Returns whether it ran calls.
///
/// The thread was going to wait for it anyway; running it here saves the two thread wake-ups
/// of a round trip (to the pool and back), which dominate a call made one at a time.
pub(crate) fn help(out: &Arc<Cell>) -> bool {
    let last = LAST.with(|last| last.borrow().as_ref().and_then(|(_, cell)| cell.upgrade()));
    last.is_some_and(|cell| cell.help(out))
}

/// What a host that ran out of calls found in the mailbox.
pub(super) enum Taken<A> {
    /// More calls, now in its backlog.
    Calls(ActorHost<A>, Box<A>),
    /// None: it is parked until the next send.
    Parked,
    /// None, and none will come: the host has been dropped.
    Closed,
}

impl<A> ActorCell<A> {
    pub(super) fn new(class: Cow<'static, str>) -> ActorCell<A> {
        ActorCell {
            class,
            mailbox: CachePadded::new(Mutex::new(Mailbox {
                calls: VecDeque::new(),
                closed: false,
                waker: None,
                parked: None,
                started: false,
            })),
            alive: AtomicBool::new(true),
            death: Mutex::new(None),
            task: Mutex::new(None),
            progress: CachePadded::new(Progress {
                running: Mutex::new(None),
                queued: AtomicUsize::new(0),
            }),
        }
    }

    /// Notes how many calls wait in the mailbox (written by the actor's host only).
    pub(super) fn set_queued(&self, calls: usize) {
        self.progress.queued.store(calls, Ordering::Relaxed);
    }

    pub(super) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub(super) fn died_error(&self) -> Error {
        Error::ActorDied {
            actor: self.class.to_string(),
            reason: self
                .death
                .lock()
                .clone()
                .unwrap_or_else(|| "it stopped".to_owned()),
        }
    }

    pub(super) fn mark_dead(&self, reason: String) {
        self.death.lock().get_or_insert(reason);
        self.alive.store(false, Ordering::Release);
    }

    pub(super) fn set_task(&self, task: tokio::task::AbortHandle) {
        *self.task.lock() = Some(task);
    }

    /// Closes the mailbox and returns the calls still in it (for the host to fail).
    pub(super) fn close_and_take(&self) -> VecDeque<Call<A>> {
        let mut mailbox = self.mailbox.lock();
        mailbox.closed = true;
        std::mem::take(&mut mailbox.calls)
    }

    /// Notes the sync call starting on the CPU pool.
    pub(super) fn set_running(&self, call: Weak<Cell>) {
        *self.progress.running.lock() = Some(call);
    }
}

impl<A: Send + 'static> ActorCell<A> {
    /// Hands a call to the actor, waking its host (parked, or waiting on tokio); gives the
    /// call back if the mailbox is closed.
    ///
    /// A parked host stays in the mailbox: the job queued on the CPU pool takes it out when it
    /// runs. Until then, a thread that blocks on the call's result may take it first and run
    /// the call itself ([`help`](Self::help)).
    pub(super) fn send(
        self: &Arc<Self>,
        call: Call<A>,
        pool: &CpuPool,
    ) -> std::result::Result<(), Call<A>> {
        let (start, waker) = {
            let mut mailbox = self.mailbox.lock();
            if mailbox.closed {
                return Err(call);
            }
            mailbox.calls.push_back(call);
            let start = mailbox.parked.is_some() && !mailbox.started;
            mailbox.started |= start;
            (start, mailbox.waker.take())
        };
        if start {
            let cell = Arc::clone(self);
            pool.spawn(Box::new(move || cell.start_parked()));
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// The start job of a parked host: runs the waiting calls on this pool thread, unless a
    /// helper took the host meanwhile (or nothing waits).
    fn start_parked(&self) {
        let parked = {
            let mut mailbox = self.mailbox.lock();
            mailbox.started = false;
            if mailbox.calls.is_empty() {
                None
            } else {
                mailbox.parked.take()
            }
        };
        if let Some((host, state)) = parked {
            host.drain(state, None);
        }
    }

    /// Runs the calls waiting for a parked host on this thread, if the last one is the call
    /// producing `out` (the thread is about to block on it): returns whether it did. The host
    /// runs until `out` resolves, then parks again (or goes on on the CPU pool if more calls
    /// came meanwhile).
    pub(super) fn help(&self, out: &Arc<Cell>) -> bool {
        let parked = {
            let mut mailbox = self.mailbox.lock();
            let produces = |call: &Call<A>| Arc::ptr_eq(&call.out, out);
            if !mailbox.calls.back().is_some_and(produces) {
                return false;
            }
            mailbox.parked.take()
        };
        match parked {
            Some((host, state)) => {
                host.drain(state, Some(out));
                true
            }
            None => false,
        }
    }

    /// Moves every waiting call to the end of `into` (in order): whether there were any, or
    /// `None` once the mailbox is closed and empty.
    pub(super) fn take_calls(&self, into: &mut VecDeque<Call<A>>) -> Option<bool> {
        self.mailbox.lock().take_into(into)
    }

    /// Parks a host that found the mailbox empty, until the next send wakes it. It looks again
    /// under the lock that sends take, so a call sent since its last look is not missed: the
    /// host then gets it (and is given back), as it does when the mailbox was closed meanwhile.
    /// (Only the idle path moves the host; taking calls does not.)
    pub(super) fn park(&self, mut host: ActorHost<A>, state: Box<A>) -> Taken<A> {
        let mut mailbox = self.mailbox.lock();
        match mailbox.take_into(&mut host.backlog) {
            Some(false) => {
                mailbox.parked = Some((host, state));
                Taken::Parked
            }
            Some(true) => Taken::Calls(host, state),
            None => {
                drop(mailbox); // the host's drop takes the lock
                drop((host, state));
                Taken::Closed
            }
        }
    }

    /// Waits on tokio for calls and moves them to `into`; `None` once the mailbox is closed
    /// and empty.
    pub(super) fn poll_calls(
        &self,
        cx: &mut Context<'_>,
        into: &mut VecDeque<Call<A>>,
    ) -> Poll<Option<()>> {
        let mut mailbox = self.mailbox.lock();
        match mailbox.take_into(into) {
            Some(true) => Poll::Ready(Some(())),
            None => Poll::Ready(None),
            Some(false) => {
                mailbox.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Closes the mailbox: the actor runs what was sent, then stops. A parked host has
    /// nothing left to run, so it (and the actor's state) is dropped now.
    pub(super) fn close(&self) {
        let (parked, waker) = {
            let mut mailbox = self.mailbox.lock();
            mailbox.closed = true;
            (mailbox.parked.take(), mailbox.waker.take())
        };
        drop(parked);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The type-erased face of a cell that the table needs.
trait CellOps: Send + Sync {
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn close(&self);
    fn kill(&self, reason: String);
    /// See [`ActorCell::help`].
    fn help(&self, out: &Arc<Cell>) -> bool;
    /// Its class, whether it is alive (or why it died), and its queued calls.
    fn describe(&self) -> (String, ActorState, usize);
}

impl<A: Send + 'static> CellOps for ActorCell<A> {
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn close(&self) {
        ActorCell::close(self)
    }

    fn help(&self, out: &Arc<Cell>) -> bool {
        ActorCell::help(self, out)
    }

    fn describe(&self) -> (String, ActorState, usize) {
        let state = if self.is_alive() {
            ActorState::Alive
        } else {
            ActorState::Dead(self.died_error().to_string())
        };
        // The calls the host took but has not run, and those still in the mailbox.
        let waiting = self.mailbox.lock().calls.len();
        (
            self.class.to_string(),
            state,
            self.progress.queued.load(Ordering::Relaxed) + waiting,
        )
    }

    fn kill(&self, reason: String) {
        self.mark_dead(reason);
        self.close();
        // Stops the actor mid-call; its host fails every call it still holds as it drops.
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        // A sync call running on the CPU pool finishes on its thread; its result is
        // discarded, since it fails now (the first outcome stays).
        let running = self.progress.running.lock().take();
        if let Some(out) = running.and_then(|out| out.upgrade()) {
            out.finish(Err(self.died_error()));
        }
    }
}

impl CellOps for RemoteActor {
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn close(&self) {
        // Ray owns the actor: it ends with the job, or when killed.
    }

    fn help(&self, _out: &Arc<Cell>) -> bool {
        false // its calls run in Ray's workers
    }

    fn kill(&self, _reason: String) {
        // At shutdown; a failure here (Ray already gone) leaves nothing to clean up.
        let _ = RemoteActor::kill(self);
    }

    fn describe(&self) -> (String, ActorState, usize) {
        (self.describe_class(), ActorState::Alive, 0)
    }
}

struct Entry {
    refs: usize,
    name: Option<String>,
    cell: Arc<dyn CellOps>,
}

/// The actors of one runtime, and the names of named ones.
pub(crate) struct ActorTable {
    owner: u32,
    next: AtomicU64,
    cells: Mutex<FxHashMap<u64, Entry>>,
    names: Mutex<FxHashMap<String, ActorId>>,
}

impl ActorTable {
    pub(crate) fn new(owner: u32) -> ActorTable {
        ActorTable {
            owner,
            next: AtomicU64::new(1),
            cells: Mutex::default(),
            names: Mutex::default(),
        }
    }

    /// Enters a new actor, counted once for the handle its creator gets.
    pub(super) fn insert<A: Send + 'static>(&self, cell: Arc<ActorCell<A>>) -> ActorId {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            refs: 1,
            name: None,
            cell,
        };
        self.cells.lock().insert(seq, entry);
        ActorId {
            owner: self.owner,
            seq,
        }
    }

    /// Enters an actor that runs on Ray, counted once for the handle its creator gets.
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    pub(crate) fn insert_remote(&self, actor: RemoteActor) -> ActorId {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            refs: 1,
            name: None,
            cell: Arc::new(actor),
        };
        self.cells.lock().insert(seq, entry);
        ActorId {
            owner: self.owner,
            seq,
        }
    }

    /// The Ray actor behind `id`.
    #[cfg(feature = "ray")]
    pub(super) fn remote(&self, id: ActorId) -> Result<Arc<RemoteActor>> {
        let cell = self.cell(id)?;
        cell.as_any()
            .downcast::<RemoteActor>()
            .map_err(|_| Error::TypeMismatch {
                expected: "an actor on the Ray cluster",
                found: "an actor of an embedded runtime",
            })
    }

    fn cell(&self, id: ActorId) -> Result<Arc<dyn CellOps>> {
        if id.owner != self.owner {
            return Err(not_found(id));
        }
        let cell = self.cells.lock().get(&id.seq).map(|e| Arc::clone(&e.cell));
        cell.ok_or_else(|| not_found(id))
    }

    /// Claims `name` for `id`; fails if another live actor holds it.
    pub(super) fn claim_name(&self, name: &str, id: ActorId) -> Result<()> {
        let mut cells = self.cells.lock();
        let mut names = self.names.lock();
        if let Some(holder) = names.get(name) {
            return Err(Error::InvalidArgument(format!(
                "an actor named `{name}` already exists ({holder}); pick another name, or get \
                 the existing one with `rustyray::get_actor`"
            )));
        }
        if let Some(entry) = cells.get_mut(&id.seq) {
            entry.name = Some(name.to_owned());
            names.insert(name.to_owned(), id);
        }
        Ok(())
    }

    pub(super) fn named(&self, name: &str) -> Option<ActorId> {
        self.names.lock().get(name).copied()
    }

    /// Counts one more handle; false if the actor is gone.
    pub(crate) fn retain(&self, id: ActorId) -> bool {
        if id.owner != self.owner {
            return false;
        }
        match self.cells.lock().get_mut(&id.seq) {
            Some(entry) => {
                entry.refs += 1;
                true
            }
            None => false,
        }
    }

    /// Counts one handle less. An unnamed actor with no handle left is freed.
    pub(crate) fn release(&self, id: ActorId) {
        let freed = {
            let mut cells = self.cells.lock();
            let Some(entry) = cells.get_mut(&id.seq) else {
                return;
            };
            entry.refs = entry.refs.saturating_sub(1);
            if entry.refs > 0 || entry.name.is_some() {
                return;
            }
            cells.remove(&id.seq)
        };
        if let Some(entry) = freed {
            entry.cell.close();
        }
    }

    /// Kills the actor: it stops at once and every call it holds fails with `ActorDied`.
    pub(super) fn kill(&self, id: ActorId) -> Result<()> {
        let cell = {
            let mut cells = self.cells.lock();
            let entry = cells.get_mut(&id.seq).filter(|_| id.owner == self.owner);
            let entry = entry.ok_or_else(|| not_found(id))?;
            if let Some(name) = entry.name.take() {
                self.names.lock().remove(&name);
            }
            let cell = Arc::clone(&entry.cell);
            if entry.refs == 0 {
                cells.remove(&id.seq);
            }
            cell
        };
        cell.kill("killed by rustyray::kill".to_owned());
        Ok(())
    }

    /// The cell of a live actor to send a call to. The last one this thread sent to is kept
    /// (weakly) per thread, so a run of calls to one actor skips the table's shared lock; a
    /// kept cell whose actor died is looked up again, so errors are the table's.
    pub(super) fn get_live<A: Send + 'static>(&self, id: ActorId) -> Result<Arc<ActorCell<A>>> {
        let kept = LAST.with(|last| match &*last.borrow() {
            Some((kept, cell)) if *kept == id => cell.upgrade(),
            _ => None,
        });
        if let Some(cell) = kept.and_then(|cell| cell.as_any().downcast::<ActorCell<A>>().ok()) {
            if cell.is_alive() {
                return Ok(cell);
            }
        }
        let cell = self.get::<A>(id)?;
        let weak = Arc::downgrade(&cell) as Weak<dyn CellOps>;
        LAST.with(|last| *last.borrow_mut() = Some((id, weak)));
        Ok(cell)
    }

    pub(super) fn get<A: Send + 'static>(&self, id: ActorId) -> Result<Arc<ActorCell<A>>> {
        self.cell(id)?
            .as_any()
            .downcast::<ActorCell<A>>()
            .map_err(|_| Error::TypeMismatch {
                expected: std::any::type_name::<A>(),
                found: "another actor type",
            })
    }

    /// Every actor in the table (for `rustyray::state`).
    pub(crate) fn describe(&self) -> Vec<ActorInfo> {
        let cells = self.cells.lock();
        cells
            .iter()
            .map(|(&seq, entry)| {
                let (class, state, queued_calls) = entry.cell.describe();
                ActorInfo {
                    id: ActorId {
                        owner: self.owner,
                        seq,
                    },
                    class,
                    state,
                    handles: entry.refs,
                    queued_calls,
                }
            })
            .collect()
    }

    /// How many actors are alive or still referred to.
    pub(crate) fn len(&self) -> usize {
        self.cells.lock().len()
    }

    /// Kills every actor (at shutdown).
    pub(crate) fn clear(&self) {
        let cells = std::mem::take(&mut *self.cells.lock());
        self.names.lock().clear();
        for entry in cells.into_values() {
            entry.cell.kill(Error::RuntimeShutdown.to_string());
        }
    }
}

fn not_found(id: ActorId) -> Error {
    Error::NotFound {
        what: format!("{id} (freed once no handle to it remained, or made by another runtime)"),
    }
}
