//! A task's gate: counts down its pending arguments, then schedules it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::call_args::Deps;
use crate::error::Error;
use crate::object_ref::missing;
use crate::object_store::{Arrival, Cell, State, Waiter};
use crate::runtime::RuntimeCore;
use crate::scheduler::Queued;
use crate::timeline;

use super::{Phase, TaskControl};

/// Counts down a task's pending dependencies and schedules it (or fails it) after the last.
pub(crate) struct Gate {
    remaining: AtomicUsize,
    failure: Mutex<Option<Error>>,
    /// The task, and its result to fail instead if an argument failed; taken when the gate
    /// opens, so nothing of the task stays behind in the arguments' waiter lists.
    queued: Mutex<Option<(Queued, Arc<Cell>)>>,
    shared: Arc<RuntimeCore>,
    control: Arc<TaskControl>,
}

impl Gate {
    /// Hands `queued` to the scheduler once every object in `deps` is resolved; if one failed
    /// (or does not exist), fails `out` with its error instead.
    pub(crate) fn open_when_ready(
        shared: &Arc<RuntimeCore>,
        deps: Deps,
        out: &Arc<Cell>,
        queued: Queued,
        control: Option<Arc<TaskControl>>,
    ) {
        let Some(control) = control.filter(|_| !deps.is_empty()) else {
            shared.here().queue(shared, queued);
            return;
        };
        // One extra count, held until every subscription is made, so the gate cannot open early.
        let gate = Arc::new(Gate {
            remaining: AtomicUsize::new(deps.cells.len() + 1),
            failure: Mutex::new(deps.missing.map(missing)),
            queued: Mutex::new(Some((queued, Arc::clone(out)))),
            shared: Arc::clone(shared),
            control,
        });
        for dep in deps.cells {
            let subscribed = dep.subscribe(Waiter::new(Arc::clone(&gate) as _));
            if let Some(state) = subscribed {
                gate.arrive(&state);
            }
        }
        gate.arrive_done();
    }

    fn arrive_done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let queued = self.queued.lock().take();
        let failure = self.failure.lock().take();
        match (queued, failure) {
            (Some((queued, out)), Some(error)) => {
                drop(queued);
                timeline::record_skipped(
                    &self.control.function,
                    out.id(),
                    timeline::Skipped::DependencyFailed,
                );
                out.finish(Err(error));
            }
            (Some((queued, out)), None) => {
                drop(out);
                self.control.set_phase(Phase::Queued);
                self.shared.here().queue(&self.shared, queued);
            }
            (None, _) => {}
        }
    }
}

impl Arrival for Gate {
    fn arrive(&self, state: &State) {
        if let Some(error) = state.failure() {
            self.failure.lock().get_or_insert(error);
        }
        self.arrive_done();
    }

    /// Opening a gate runs its task, or fails its result (and the tasks waiting for that).
    fn is_leaf(&self) -> bool {
        false
    }
}
