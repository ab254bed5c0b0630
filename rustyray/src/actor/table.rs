//! The actors of one runtime: each actor's cell (its mailbox and whether it is alive), how many
//! handles refer to it, and the names of named actors.
//!
//! An unnamed actor is freed when its last handle is dropped: its mailbox closes, it runs the
//! calls already sent, and its state is dropped. A named actor lives until it is killed, since
//! `get_actor` can always hand out a new handle.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::ActorId;
use crate::context;
use crate::error::{Error, Result};
use crate::object_store::Cell;
use crate::state::{ActorInfo, ActorState};

use super::mailbox::ActorCell;

/// Called by a thread about to block on `out`: if `out` is the result of the last call this
/// thread sent, and that call waits for an idle sync actor whose host has not started yet, runs
/// it here instead of waiting for a CPU-pool thread to wake up. Returns whether it ran calls.
///
/// The thread was going to wait for it anyway; running it here saves the two thread wake-ups
/// of a round trip (to the pool and back), which dominate a call made one at a time.
pub(crate) fn run_in_caller(out: &Arc<Cell>) -> bool {
    let last = context::with(|cx| {
        let last = cx.last_actor.borrow();
        last.as_ref().and_then(|(_, cell)| cell.upgrade())
    });
    last.is_some_and(|cell| cell.run_in_caller(out))
}

/// The type-erased face of an actor's entry that the table needs: an embedded actor's cell,
/// or (on the Ray backend) what `ray/` keeps of an actor on the cluster.
pub(crate) trait CellOps: Send + Sync {
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn close(&self);
    fn kill(&self, reason: String);
    /// See [`ActorCell::run_in_caller`].
    fn run_in_caller(&self, out: &Arc<Cell>) -> bool;
    /// `Class::method` of the call producing `out`, if this actor holds it in its mailbox or
    /// runs it now.
    fn call_name(&self, _out: &Arc<Cell>) -> Option<String> {
        None
    }
    /// What a live actor holds for life (`CPU 1`), if it holds anything.
    fn holds(&self) -> Option<String> {
        None
    }
    /// Its class, whether it is alive (or why it died), and its queued calls.
    fn describe(&self) -> (String, ActorState, usize);
    /// What another process needs to call this actor, with its class: `None` for an actor
    /// that lives in this process only.
    fn portable(&self) -> Option<Result<(Vec<u8>, String)>> {
        None
    }
}

impl<A: Send + 'static> CellOps for ActorCell<A> {
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn close(&self) {
        ActorCell::close(self)
    }

    fn run_in_caller(&self, out: &Arc<Cell>) -> bool {
        ActorCell::run_in_caller(self, out)
    }

    fn describe(&self) -> (String, ActorState, usize) {
        let state = if !self.is_alive() {
            ActorState::Dead(self.died_error().to_string())
        } else if self.created.load(Ordering::Acquire) {
            ActorState::Alive
        } else {
            ActorState::PendingCreation
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
        self.fail_running(&self.died_error());
    }

    fn call_name(&self, out: &Arc<Cell>) -> Option<String> {
        ActorCell::call_name(self, out)
    }

    fn holds(&self) -> Option<String> {
        let holds = self.holds.get()?;
        self.is_alive().then(|| holds.clone())
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
    pub(crate) fn insert<A: Send + 'static>(&self, cell: Arc<ActorCell<A>>) -> ActorId {
        self.insert_entry(cell)
    }

    /// Enters a new actor of any kind of entry (an actor on Ray, say), counted once for the
    /// handle its creator gets.
    pub(crate) fn insert_entry(&self, cell: Arc<dyn CellOps>) -> ActorId {
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

    /// The entry of `id` as a `T` (the kind of entry a backend keeps); `wrong` if it is of
    /// another kind.
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    pub(crate) fn entry_as<T: Any + Send + Sync>(
        &self,
        id: ActorId,
        wrong: impl FnOnce() -> Error,
    ) -> Result<Arc<T>> {
        let cell = self.cell(id)?;
        cell.as_any().downcast::<T>().map_err(|_| wrong())
    }

    /// What another process needs to call actor `id` (see [`CellOps::portable`]).
    pub(crate) fn portable(&self, id: ActorId) -> Option<Result<(Vec<u8>, String)>> {
        self.cell(id).ok()?.portable()
    }

    fn cell(&self, id: ActorId) -> Result<Arc<dyn CellOps>> {
        if id.owner != self.owner {
            return Err(not_found(id));
        }
        let cell = self.cells.lock().get(&id.seq).map(|e| Arc::clone(&e.cell));
        cell.ok_or_else(|| not_found(id))
    }

    /// Claims `name` for `id`; fails if another live actor holds it.
    pub(crate) fn claim_name(&self, name: &str, id: ActorId) -> Result<()> {
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

    pub(crate) fn named(&self, name: &str) -> Option<ActorId> {
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
    pub(crate) fn kill(&self, id: ActorId) -> Result<()> {
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
    pub(crate) fn get_live<A: Send + 'static>(&self, id: ActorId) -> Result<Arc<ActorCell<A>>> {
        let kept = context::with(|cx| match &*cx.last_actor.borrow() {
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
        context::with(|cx| *cx.last_actor.borrow_mut() = Some((id, weak)));
        Ok(cell)
    }

    pub(crate) fn get<A: Send + 'static>(&self, id: ActorId) -> Result<Arc<ActorCell<A>>> {
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

    /// `Class::method` of the actor call producing `out`, if an actor holds it in its mailbox
    /// or runs it now (for a cancel's error; one look at every actor, as cancels are rare).
    pub(crate) fn call_name(&self, out: &Arc<Cell>) -> Option<String> {
        let cells: Vec<Arc<dyn CellOps>> = self
            .cells
            .lock()
            .values()
            .map(|entry| Arc::clone(&entry.cell))
            .collect();
        cells.iter().find_map(|cell| cell.call_name(out))
    }

    /// The live actors holding resources for life, with what they hold (for a warning about
    /// work that waits for them).
    pub(crate) fn describe_holders(&self) -> Vec<(String, String)> {
        let cells = self.cells.lock();
        cells
            .values()
            .filter_map(|entry| {
                let holds = entry.cell.holds()?;
                Some((entry.cell.describe().0, holds))
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
