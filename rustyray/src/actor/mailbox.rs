//! An actor's cell: its mailbox, whether it is alive, and the parked host (see README.md in
//! this folder for the protocol).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use crate::sync::Mutex as MailboxLock;

use super::host::ActorHost;
use super::Method;
use crate::cpu_pool::CpuPool;
use crate::error::{Error, Result};
use crate::object_store::{Cell, Object};

/// What runs an actor's calls, as the mailbox sees it: something that can be parked in it and
/// later run what waits. The runtime's is [`ActorHost`]; the loom model has its own.
pub(crate) trait Host<A>: Send + Sized + 'static {
    /// The calls taken from the mailbox and not run yet.
    fn backlog(&mut self) -> &mut VecDeque<Call<A>>;

    /// Runs the waiting calls on this thread, until `helping` resolves if given; then parks
    /// again (or moves on).
    fn drain(self, state: Box<A>, helping: Option<&Arc<Cell>>);
}

impl<A: Send + 'static> Host<A> for ActorHost<A> {
    fn backlog(&mut self) -> &mut VecDeque<Call<A>> {
        &mut self.backlog
    }

    fn drain(self, state: Box<A>, helping: Option<&Arc<Cell>>) {
        ActorHost::drain(self, state, helping);
    }
}

/// What callers share with a running actor: its mailbox and whether it is alive.
pub(crate) struct ActorCell<A, H = ActorHost<A>> {
    pub(crate) class: Cow<'static, str>,
    /// On a cache line of its own: the host takes its lock too, and callers write the cell's
    /// reference count (the `Arc`'s, just before `class`) at every call.
    pub(crate) mailbox: CachePadded<MailboxLock<Mailbox<A, H>>>,
    pub(crate) alive: AtomicBool,
    /// Set once its constructor returned (until then, `PENDING_CREATION` in the state API).
    pub(crate) created: AtomicBool,
    /// What it holds for life once its lease is granted (`CPU 1`), if it asked for anything;
    /// set when the lease is granted.
    pub(crate) holds: std::sync::OnceLock<String>,
    pub(crate) death: Mutex<Option<String>>,
    pub(crate) task: Mutex<Option<tokio::task::AbortHandle>>,
    /// What the host writes at every call, on a cache line of its own so that callers
    /// reading `alive` do not miss on it.
    pub(crate) progress: CachePadded<Progress>,
}

/// What an actor's host notes as it takes each call.
pub(crate) struct Progress {
    /// The calls running now (a sync call may stay listed after it ends, until the next one
    /// starts), failed at once by `kill` and by the host's drop. Weak: a result nobody refers
    /// to any more needs no failing, and the list must not keep it alive.
    pub(crate) running: Mutex<Vec<Running>>,
    /// Calls the host had taken from the mailbox but not run when it last took one (for
    /// `rustyray::state`).
    pub(crate) queued: AtomicUsize,
}

/// A call the host runs now.
pub(crate) struct Running {
    pub(crate) out: Weak<Cell>,
    pub(crate) method: Cow<'static, str>,
}

impl Running {
    pub(crate) fn of<A>(call: &Call<A>) -> Running {
        Running {
            out: Arc::downgrade(&call.out),
            method: call.method.clone(),
        }
    }
}

/// An actor's mailbox: the calls sent and not yet taken, and its host while it is idle.
///
/// A host that ran out of sync calls on the CPU pool parks here instead of going back to
/// tokio; the next send takes it out and starts it on the pool again. Parking and sending
/// both happen under the mailbox's lock, so a call can never arrive unseen between the host's
/// last look at an empty mailbox and its parking. The host takes all waiting calls at once.
pub(crate) struct Mailbox<A, H = ActorHost<A>> {
    pub(crate) calls: VecDeque<Call<A>>,
    /// Set once no more calls are accepted (the last handle dropped, or the actor died).
    pub(crate) closed: bool,
    /// The host's task, waiting on tokio for the next call.
    pub(crate) waker: Option<Waker>,
    pub(crate) parked: Option<(H, Box<A>)>,
    /// A job that starts the parked host is queued on the CPU pool (so a send need not queue
    /// another).
    pub(crate) started: bool,
    /// The calls of the host's backlog that the last takes moved there (their results'
    /// sequence numbers, unique in the runtime's store, and methods), so that a cancel of one names it: the backlog is the host's alone. Replaced
    /// when the host takes calls into an empty backlog (the earlier ones all left it by then).
    pub(crate) taken: Vec<(u64, Cow<'static, str>)>,
}

impl<A, H> Mailbox<A, H> {
    /// Moves every waiting call to the end of `into`, in order. Whether there were any, or
    /// `None` once the mailbox is closed and empty.
    fn take_into(&mut self, into: &mut VecDeque<Call<A>>) -> Option<bool> {
        if self.calls.is_empty() {
            return if self.closed { None } else { Some(false) };
        }
        let noted = |call: &Call<A>| (call.out.seq(), call.method.clone());
        if into.is_empty() {
            self.taken.clear();
            // What a burst of calls grew is given back once the bursts are over.
            let needed = self.calls.len();
            if self.taken.capacity() > 1024 && self.taken.capacity() > 8 * needed {
                self.taken.shrink_to(needed);
            }
            self.taken.extend(self.calls.iter().map(noted));
            std::mem::swap(into, &mut self.calls); // both keep their capacity
        } else {
            self.taken.extend(self.calls.iter().map(noted));
            into.append(&mut self.calls);
        }
        Some(true)
    }
}

/// What a host that ran out of calls found in the mailbox.
pub(crate) enum ParkOutcome<A, H = ActorHost<A>> {
    /// More calls, now in its backlog.
    Calls(H, Box<A>),
    /// None: it is parked until the next send.
    Parked,
    /// None, and none will come: the host has been dropped.
    Closed,
}

impl<A, H> ActorCell<A, H> {
    pub(crate) fn new(class: Cow<'static, str>) -> ActorCell<A, H> {
        ActorCell {
            class,
            mailbox: CachePadded::new(MailboxLock::new(Mailbox {
                calls: VecDeque::new(),
                closed: false,
                waker: None,
                parked: None,
                started: false,
                taken: Vec::new(),
            })),
            alive: AtomicBool::new(true),
            created: AtomicBool::new(false),
            holds: std::sync::OnceLock::new(),
            death: Mutex::new(None),
            task: Mutex::new(None),
            progress: CachePadded::new(Progress {
                running: Mutex::new(Vec::new()),
                queued: AtomicUsize::new(0),
            }),
        }
    }

    /// Notes how many calls wait in the mailbox (written by the actor's host only).
    pub(crate) fn set_queued(&self, calls: usize) {
        self.progress.queued.store(calls, Ordering::Relaxed);
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub(crate) fn died_error(&self) -> Error {
        Error::ActorDied {
            actor: self.class.to_string(),
            reason: self
                .death
                .lock()
                .clone()
                .unwrap_or_else(|| "it stopped".to_owned()),
        }
    }

    pub(crate) fn mark_dead(&self, reason: String) {
        self.death.lock().get_or_insert(reason);
        self.alive.store(false, Ordering::Release);
    }

    pub(crate) fn set_task(&self, task: tokio::task::AbortHandle) {
        *self.task.lock() = Some(task);
    }

    /// Closes the mailbox and returns the calls still in it (for the host to fail).
    pub(crate) fn close_and_take(&self) -> VecDeque<Call<A>> {
        let mut mailbox = self.mailbox.lock();
        mailbox.closed = true;
        std::mem::take(&mut mailbox.calls)
    }

    /// Notes the sync call starting on the CPU pool (the only one running).
    #[inline]
    pub(crate) fn set_running<X>(&self, call: &Call<X>) {
        let mut running = self.progress.running.lock();
        match running.as_mut_slice() {
            [only] => *only = Running::of(call),
            _ => {
                running.clear();
                running.push(Running::of(call));
            }
        }
    }

    /// Notes an async call starting (beside the others running, on a concurrent actor).
    pub(crate) fn add_running<X>(&self, call: &Call<X>) {
        let mut running = self.progress.running.lock();
        // Forget the finished ones now and then, so a long run of shared calls stays small.
        if running.len() == running.capacity() && running.len() >= 64 {
            running.retain(|r| r.out.upgrade().is_some_and(|out| out.is_pending()));
        }
        running.push(Running::of(call));
    }

    /// Forgets the calls running (they all ended).
    pub(crate) fn clear_running(&self) {
        self.progress.running.lock().clear();
    }

    /// Fails every call still running with `error` (the actor was killed, or its host dropped).
    pub(crate) fn fail_running(&self, error: &Error) {
        let running = std::mem::take(&mut *self.progress.running.lock());
        for out in running.into_iter().filter_map(|r| r.out.upgrade()) {
            out.finish(Err(error.clone()));
        }
    }

    /// `Class::method` of the call producing `out`, if this actor holds it (queued or running).
    pub(crate) fn call_name(&self, out: &Arc<Cell>) -> Option<String> {
        let name = |method: &str| format!("{}::{method}", self.class);
        let queued = {
            let mailbox = self.mailbox.lock();
            let seq = out.seq();
            let sent = mailbox.calls.iter().find(|c| Arc::ptr_eq(&c.out, out));
            match sent {
                Some(call) => Some(name(&call.method)),
                None => mailbox
                    .taken
                    .iter()
                    .find(|(taken, _)| *taken == seq)
                    .map(|(_, method)| name(method)),
            }
        };
        queued.or_else(|| {
            let running = self.progress.running.lock();
            running
                .iter()
                .find(|r| std::ptr::eq(r.out.as_ptr(), Arc::as_ptr(out)))
                .map(|r| name(&r.method))
        })
    }
}

impl<A: Send + 'static, H: Send + 'static> super::current::RunsSyncCalls for ActorCell<A, H> {
    fn running_cancelled(&self) -> bool {
        let running = self.progress.running.lock();
        running
            .first()
            .and_then(|call| call.out.upgrade())
            .is_some_and(|out| !out.is_pending())
    }
}

impl<A: Send + 'static, H: Host<A>> ActorCell<A, H> {
    /// Hands a call to the actor, waking its host (parked, or waiting on tokio); gives the
    /// call back if the mailbox is closed.
    ///
    /// A parked host stays in the mailbox: the job queued on the CPU pool takes it out when it
    /// runs. Until then, a thread that blocks on the call's result may take it first and run
    /// the call itself ([`run_in_caller`](Self::run_in_caller)).
    pub(crate) fn send(
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
    pub(crate) fn run_in_caller(&self, out: &Arc<Cell>) -> bool {
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
                // The calls run here start bodies inside the caller's: its flag goes back after.
                crate::call_args::keeping_last_try(|| host.drain(state, Some(out)));
                true
            }
            None => false,
        }
    }

    /// Moves every waiting call to the end of `into` (in order): whether there were any, or
    /// `None` once the mailbox is closed and empty.
    pub(crate) fn take_calls(&self, into: &mut VecDeque<Call<A>>) -> Option<bool> {
        self.mailbox.lock().take_into(into)
    }

    /// Parks a host that found the mailbox empty, until the next send wakes it. It looks again
    /// under the lock that sends take, so a call sent since its last look is not missed: the
    /// host then gets it (and is given back), as it does when the mailbox was closed meanwhile.
    /// (Only the idle path moves the host; taking calls does not.)
    pub(crate) fn park(&self, mut host: H, state: Box<A>) -> ParkOutcome<A, H> {
        let mut mailbox = self.mailbox.lock();
        match mailbox.take_into(host.backlog()) {
            Some(false) => {
                mailbox.parked = Some((host, state));
                ParkOutcome::Parked
            }
            Some(true) => ParkOutcome::Calls(host, state),
            None => {
                drop(mailbox); // the host's drop takes the lock
                drop((host, state));
                ParkOutcome::Closed
            }
        }
    }

    /// Waits on tokio for calls and moves them to `into`; `None` once the mailbox is closed
    /// and empty.
    pub(crate) fn poll_calls(
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
    pub(crate) fn close(&self) {
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

/// One call in a mailbox.
pub(crate) struct Call<A> {
    pub(crate) method: Cow<'static, str>,
    pub(crate) deps: Vec<Arc<Cell>>,
    pub(crate) out: Arc<Cell>,
    pub(crate) body: Method<A>,
    /// How many times the call was re-sent after a crash.
    pub(crate) attempts: u32,
    /// Its concurrency group: 0 for the default one, else the 1-based index of a named one.
    pub(crate) group: u8,
}

impl<A> Call<A> {
    /// Stores the call's outcome, letting go of the call (its body and argument refs) first,
    /// and of its handle to the result before the result's waiters run.
    #[inline]
    pub(crate) fn finish(self, outcome: Result<Object>) {
        let out = Arc::clone(&self.out);
        drop(self);
        out.finish(outcome);
    }

    /// Whether this run is the call's last try (no retry will need its arguments again).
    /// Its dependencies, resolved by now, are let go: its argument slots hold them, so a ref
    /// moved into the call is then the only handle to its object.
    pub(crate) fn last_try(&mut self, recovery: &super::recovery::Recovery) -> bool {
        if !self.deps.is_empty() {
            self.deps = Vec::new();
        }
        recovery.is_last_try(self.attempts)
    }

    /// A copy of a shared call (sharing its body); `None` for other kinds.
    pub(crate) fn copy_shared(&self) -> Option<Call<A>> {
        let body = match &self.body {
            Method::Shared(body) => Method::Shared(Arc::clone(body)),
            Method::SharedSync(body) => Method::SharedSync(Arc::clone(body)),
            Method::Sync(_) | Method::Async(_) => return None,
        };
        Some(Call {
            method: self.method.clone(),
            deps: self.deps.clone(),
            out: Arc::clone(&self.out),
            body,
            attempts: self.attempts,
            group: self.group,
        })
    }
}

/// The hand-off between callers and a parked host, model-checked: calls sent from two threads
/// to a parked actor, one sender then about to block on its own call's result (and so taking
/// the host to run it, as `get` does), while the start job the first send queued runs on the
/// CPU pool. Every call runs exactly once, each sender's calls in the order sent; a lost call
/// shows as a deadlock. The host here runs calls without a runtime; the protocol is the real
/// one. Run with `.ci/loom`.
#[cfg(all(test, rustyray_loom))]
mod loom_tests {
    use super::*;
    use crate::object_store::ObjectStore;
    use crate::sync::Condvar;

    /// What ran, in order: (sender, sequence number).
    #[derive(Default)]
    struct Ran {
        calls: MailboxLock<Vec<(u8, u8)>>,
        changed: Condvar,
    }

    impl Ran {
        fn wait_for(&self, n: usize) -> Vec<(u8, u8)> {
            let mut calls = self.calls.lock();
            while calls.len() < n {
                self.changed.wait(&mut calls);
            }
            calls.clone()
        }
    }

    struct State;

    /// Runs each call by noting its method name (`"<sender>:<seq>"`).
    struct ModelHost {
        cell: Arc<ActorCell<State, ModelHost>>,
        backlog: VecDeque<Call<State>>,
        ran: Arc<Ran>,
    }

    impl Host<State> for ModelHost {
        fn backlog(&mut self) -> &mut VecDeque<Call<State>> {
            &mut self.backlog
        }

        fn drain(mut self, mut state: Box<State>, _helping: Option<&Arc<Cell>>) {
            loop {
                while let Some(call) = self.backlog.pop_front() {
                    let (sender, seq) = call.method.split_once(':').expect("named");
                    self.ran
                        .calls
                        .lock()
                        .push((sender.parse().unwrap(), seq.parse().unwrap()));
                    self.ran.changed.notify_all();
                    call.finish(Ok(Object::new(())));
                }
                let cell = Arc::clone(&self.cell);
                match cell.park(self, state) {
                    ParkOutcome::Calls(host, back) => (self, state) = (host, back),
                    ParkOutcome::Parked | ParkOutcome::Closed => return,
                }
            }
        }
    }

    fn call(store: &Arc<ObjectStore>, sender: u8, seq: u8) -> Call<State> {
        Call {
            method: Cow::Owned(format!("{sender}:{seq}")),
            deps: Vec::new(),
            out: store.insert_pending(None),
            body: super::super::Method::Sync(Box::new(|_| Ok(Object::new(())))),
            attempts: 0,
            group: 0,
        }
    }

    #[test]
    fn calls_sent_to_a_parked_actor_while_a_caller_takes_its_host_all_run_once_in_order() {
        crate::sync::model(2, || {
            let store = ObjectStore::for_tests(1);
            let pool = CpuPool::new(1, 2, "model".to_owned(), || None);
            let ran = Arc::new(Ran::default());
            let cell = Arc::new(ActorCell::<State, ModelHost>::new(Cow::Borrowed("Model")));
            let host = ModelHost {
                cell: Arc::clone(&cell),
                backlog: VecDeque::new(),
                ran: Arc::clone(&ran),
            };
            assert!(matches!(
                cell.park(host, Box::new(State)),
                ParkOutcome::Parked
            ));

            let helper = {
                let (cell, store, pool) = (Arc::clone(&cell), Arc::clone(&store), pool.clone());
                loom::thread::spawn(move || {
                    for seq in 0..2 {
                        let call = call(&store, 1, seq);
                        let out = Arc::clone(&call.out);
                        assert!(cell.send(call, &pool).is_ok());
                        // About to block on it, as `get` is: may take the host and run it here.
                        cell.run_in_caller(&out);
                    }
                })
            };
            assert!(cell.send(call(&store, 2, 0), &pool).is_ok());
            helper.join().unwrap();

            let calls = ran.wait_for(3);
            let mut of_sender_one: Vec<u8> = calls
                .iter()
                .filter(|(s, _)| *s == 1)
                .map(|(_, q)| *q)
                .collect();
            assert_eq!(
                of_sender_one,
                [0, 1],
                "sender 1's calls once each, in order: {calls:?}"
            );
            of_sender_one.clear();
            assert_eq!(
                calls.iter().filter(|(s, _)| *s == 2).count(),
                1,
                "{calls:?}"
            );
            pool.shutdown();
            cell.close(); // drops a parked host, which holds the cell
        });
    }
}
