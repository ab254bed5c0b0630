//! Cancel on Ray, cooperative as embedded. Ray's C++ API has no cancel, so rustyray builds it
//! from an actor and the task's policy.
//!
//! - **Keys.** Every task sent to Ray carries a [`Scope`] in its policy: the name of a *cancel
//!   board* (an actor of the process that started the tree of tasks) and the keys of the task
//!   and of the tasks that submitted it, outermost first. A task submitted from inside a
//!   running task inherits its scope, with a key of its own added.
//! - **Cancelling** writes the task's key to the board (made on the first cancel, by name) and
//!   fails the caller's ref with `Cancelled` at once.
//! - **Workers** keep a copy of each board's keys, read again at most every [`REFRESH`]
//!   (a name lookup while the board does not exist, then the keys added since the last read).
//!   A task whose key, or an ancestor's, is there fails `Cancelled` when it would start (so a
//!   pending task never runs, and its children never run either: that is the recursion), sees
//!   `is_cancelled()` while it runs, and fails `Cancelled` instead of storing its result if it
//!   was cancelled meanwhile (so the tasks waiting for its object fail too, as embedded). So a
//!   cancel reaches a worker within [`REFRESH`] and a round trip; no check costs more than a
//!   lookup in memory in between.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, ActorBuilder, ActorHandle, ActorOptions, NoMethods};
use crate::error::{Error, Result};
use crate::registry::Registration;
use crate::task::BoxFuture;

/// How old a worker's copy of a board may be when it is asked.
pub(crate) const REFRESH: Duration = Duration::from_millis(100);

/// How long a read of a board may take before the copy is used as it is.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

const CONSTRUCTOR: &str = "rustyray::cancel::CancelBoard::new";
const CANCEL: &str = "rustyray::cancel::CancelBoard::cancel";
const SINCE: &str = "rustyray::cancel::CancelBoard::since";

/// Where a task's cancellation is looked up: its tree's board and the keys of the task and of
/// its ancestors (outermost first), sent in its policy.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    board: String,
    keys: Vec<u64>,
}

thread_local! {
    /// The scope of the task this worker thread runs.
    static RUNNING: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

impl Scope {
    /// The scope of a task or actor call submitted now: a child of the running task's, or
    /// the first of a tree whose board is this process's. A task that saw its cancel (this
    /// process's copy of the board says so, without a read) starts a tree of its own instead, as embedded: a cancel reaches the
    /// children pending when it comes, not what the task submits after (a notice that it
    /// stopped, say).
    pub(super) fn for_new_task() -> Scope {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let key = mix(crate::object_store::process_nonce() ^ mix(seq));
        let parent = RUNNING.with(|running| running.borrow().clone());
        let parent = parent.filter(|parent| !parent.seen_cancelled());
        match parent {
            Some(parent) => {
                let mut keys = parent.keys.clone();
                keys.push(key);
                Scope {
                    board: parent.board.clone(),
                    keys,
                }
            }
            None => Scope {
                board: format!(
                    "rustyray.cancel.{:016x}",
                    crate::object_store::process_nonce()
                ),
                keys: vec![key],
            },
        }
    }

    /// The task's own key.
    fn key(&self) -> u64 {
        *self.keys.last().expect("a scope has its task's key")
    }

    /// Whether the task, or one that submitted it, was cancelled (with a copy of the board at
    /// most [`REFRESH`] old).
    pub(super) fn is_cancelled(&self) -> bool {
        let mut boards = BOARDS.lock();
        if !boards.contains_key(&self.board) {
            boards.insert(self.board.clone(), View::default());
        }
        let view = boards.get_mut(&self.board).expect("inserted");
        if view.read.is_none_or(|at| at.elapsed() >= REFRESH) {
            view.refresh(&self.board);
        }
        self.keys.iter().any(|key| view.keys.contains(key))
    }

    /// Whether this process's copy of the board, as last read, has the task or an ancestor
    /// cancelled: no read of the board (a task that saw its cancel read it just now), so a
    /// submission costs a lookup in memory, never a round trip.
    fn seen_cancelled(&self) -> bool {
        let boards = BOARDS.lock();
        boards
            .get(&self.board)
            .is_some_and(|view| self.keys.iter().any(|key| view.keys.contains(key)))
    }

    /// Runs `body` as the task of this scope: `is_cancelled()` in it reads the scope, and the
    /// tasks it submits are its children.
    pub(super) fn running<R>(&self, body: impl FnOnce() -> R) -> R {
        struct Restore(Option<Scope>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                RUNNING.with(|running| *running.borrow_mut() = previous);
            }
        }
        let previous = RUNNING.with(|running| running.borrow_mut().replace(self.clone()));
        let _restore = Restore(previous);
        body()
    }
}

/// Whether the task this thread runs was cancelled.
pub(crate) fn running_is_cancelled() -> bool {
    // (A refresh sends an actor call, which reads no scope: only tasks have one.)
    RUNNING.with(|running| running.borrow().as_ref().is_some_and(Scope::is_cancelled))
}

/// A 64-bit mix (splitmix64's finalizer), so that keys from counters spread.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// This process's copies of the boards it was asked about, by name.
static BOARDS: std::sync::LazyLock<Mutex<HashMap<String, View>>> =
    std::sync::LazyLock::new(Default::default);

#[derive(Default)]
struct View {
    board: Option<ActorHandle<CancelBoard>>,
    /// How many keys of the board's list were read.
    seen: u64,
    keys: HashSet<u64>,
    read: Option<Instant>,
}

impl View {
    /// Reads the keys added to the board since the last read (finding it first by name). A
    /// board that cannot be reached leaves the copy as it was, read again at the next ask.
    fn refresh(&mut self, name: &str) {
        self.read = Some(Instant::now());
        if self.board.is_none() {
            match crate::actor::get_actor::<CancelBoard>(name) {
                Ok(board) => self.board = Some(board),
                Err(_) => return, // nothing was cancelled in this tree yet
            }
        }
        let Some(board) = &self.board else { return };
        let mut call = board.call("since").registered(SINCE);
        let _from = call.arg(self.seen);
        // A board slow to answer (its node lost, say) leaves the copy as it was for this read:
        // every task start of this process waits for the read.
        let added: Result<Vec<u64>> =
            crate::api::get_timeout(&call.spawn_shared(runs_there), READ_TIMEOUT);
        match added {
            Ok(added) => {
                self.seen += added.len() as u64;
                self.keys.extend(added);
            }
            Err(error) => {
                tracing::debug!(target: "rustyray::cancel", %error, board = name, "unread");
                if matches!(error, Error::ActorDied { .. }) {
                    self.board = None;
                }
            }
        }
    }
}

/// What the caller's process keeps of a task it sent, to cancel it.
#[derive(Debug)]
pub(super) struct Cancellable {
    board: String,
    key: u64,
    /// Set by `cancel`: the caller's ref fails with `Cancelled`.
    cancelled: AtomicBool,
}

impl Cancellable {
    pub(super) fn new(scope: &Scope) -> Cancellable {
        Cancellable {
            board: scope.board.clone(),
            key: scope.key(),
            cancelled: AtomicBool::new(false),
        }
    }

    pub(super) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Writes the task's key to its tree's board (made now if it does not exist), then fails
    /// the caller's ref.
    pub(super) fn cancel(&self) -> Result<()> {
        let board = board(&self.board)?;
        let mut call = board.call("cancel").registered(CANCEL);
        let _key = call.arg(self.key);
        let () = crate::api::get(&call.spawn_shared(runs_there))?;
        self.cancelled.store(true, Ordering::Release);
        // This process's own copy knows at once.
        if let Some(view) = BOARDS.lock().get_mut(&self.board) {
            view.read = None;
        }
        Ok(())
    }
}

/// The board named `name`: found, or made by this process.
fn board(name: &str) -> Result<ActorHandle<CancelBoard>> {
    if let Ok(found) = crate::actor::get_actor::<CancelBoard>(name) {
        return Ok(found);
    }
    let made = ActorBuilder::<CancelBoard>::new("CancelBoard")
        .registered(CONSTRUCTOR)
        .concurrent()
        .options(ActorOptions::default().name(name).max_concurrency(8))
        .spawn(|| Ok(CancelBoard::default()));
    // Another process of the tree may have made it first: then that one is the board.
    let mut call = made.call("since").registered(SINCE);
    let _from = call.arg(0u64);
    let answer: Result<Vec<u64>> = crate::api::get(&call.spawn_shared(runs_there));
    match answer {
        Ok(_) => Ok(made),
        Err(_) => crate::actor::get_actor::<CancelBoard>(name),
    }
}

/// The local body of a call that runs in a board's process: never run here.
fn runs_there<R>(_: &CancelBoard) -> BoxFuture<'_, anyhow::Result<R>> {
    Box::pin(async { anyhow::bail!("a call to a cancel board ran in the caller's process") })
}

/// The keys cancelled in one tree of tasks, in the order they were.
#[derive(Default)]
pub(crate) struct CancelBoard {
    keys: Mutex<Vec<u64>>,
}

impl Actor for CancelBoard {
    type Methods = NoMethods;
}

mod entries {
    use std::any::{type_name, Any};

    use super::CancelBoard;
    use crate::error::{Error, Result};
    use crate::object_store::codec::entry;
    use crate::task::BoxFuture;

    fn board(this: &(dyn Any + Send + Sync)) -> Result<&CancelBoard> {
        this.downcast_ref::<CancelBoard>()
            .ok_or(Error::TypeMismatch {
                expected: type_name::<CancelBoard>(),
                found: "another actor type",
            })
    }

    pub(super) fn construct<'a>(
        args: &'a [u8],
    ) -> BoxFuture<'a, Result<Box<dyn Any + Send + Sync>>> {
        Box::pin(async move {
            let () = entry::decode(args, &[])?;
            Ok(Box::new(CancelBoard::default()) as Box<dyn Any + Send + Sync>)
        })
    }

    pub(super) fn cancel<'a>(
        this: &'a (dyn Any + Send + Sync),
        args: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let (key,): (u64,) = entry::decode(args, &[type_name::<u64>()])?;
            board(this)?.keys.lock().push(key);
            entry::encode(&())
        })
    }

    pub(super) fn since<'a>(
        this: &'a (dyn Any + Send + Sync),
        args: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let (from,): (u64,) = entry::decode(args, &[type_name::<u64>()])?;
            let keys = board(this)?.keys.lock();
            let from = usize::try_from(from).unwrap_or(usize::MAX).min(keys.len());
            entry::encode(&keys[from..].to_vec())
        })
    }
}

inventory::submit! { Registration::concurrent_actor_constructor(CONSTRUCTOR, entries::construct) }
inventory::submit! { Registration::shared_actor_method(CANCEL, entries::cancel) }
inventory::submit! { Registration::shared_actor_method(SINCE, entries::since) }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_scope_keeps_its_ancestors_keys_and_board() {
        let root = Scope::for_new_task();
        assert_eq!(root.keys.len(), 1);
        assert!(root.board.starts_with("rustyray.cancel."));
        let child = root.running(Scope::for_new_task);
        assert_eq!(child.board, root.board);
        assert_eq!(child.keys[0], root.keys[0]);
        assert_eq!(child.keys.len(), 2);
        assert_ne!(child.key(), root.key());
        let grandchild = child.running(Scope::for_new_task);
        assert_eq!(grandchild.keys[..2], child.keys[..]);
        assert!(
            RUNNING.with(|r| r.borrow().is_none()),
            "restored after the body"
        );
    }
}
