//! Work that waits for resources others hold: a warning, as Ray's "cannot be scheduled right
//! now" ones, naming what it needs and what holds it.
//!
//! Work that no node could ever run (more CPUs than the runtime has, a resource it lacks)
//! fails at once where it is sent. What is left may wait for ever, held back by actors that
//! keep their CPUs for life, say: a supervisor starting more workers than there are CPUs. So
//! once something is queued, a watcher on tokio looks at the scheduler's queues every
//! [`LOOK_EVERY`] while any has work; a queue that started nothing for [`WARN_AFTER`] is
//! reported, again every [`REPEAT`] while it stays stuck. It waits on the scheduler's signal
//! while nothing is queued, so an idle runtime runs no timer.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::runtime::RuntimeCore;
use crate::scheduler::{Scheduler, Waiting};
use crate::task::{Phase, TaskControl};

/// How often the queues are looked at while work waits.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How long a queue may start nothing before it is reported.
pub(crate) const WARN_AFTER: Duration = Duration::from_secs(5);
/// How often a queue that stays stuck is reported again.
const REPEAT: Duration = Duration::from_secs(30);

/// What the watcher remembers of one queue.
struct Look {
    demand: String,
    started: u64,
    /// When it last started something (or was first seen).
    moved: Instant,
    warned: Option<Instant>,
}

/// Watches `scheduler`'s queues for as long as `runtime` lives.
pub(super) async fn watch(runtime: Weak<RuntimeCore>, scheduler: Arc<Scheduler>) {
    let mut looks: Vec<Look> = Vec::new();
    loop {
        let waiting = scheduler.waiting();
        if waiting.is_empty() {
            looks.clear();
            scheduler.queued().await;
            continue;
        }
        let now = Instant::now();
        looks.retain(|look| waiting.iter().any(|w| w.demand == look.demand));
        for queue in &waiting {
            let look = match looks.iter_mut().position(|l| l.demand == queue.demand) {
                Some(at) => &mut looks[at],
                None => {
                    looks.push(Look {
                        demand: queue.demand.clone(),
                        started: queue.started,
                        moved: now,
                        warned: None,
                    });
                    continue;
                }
            };
            if look.started != queue.started {
                (look.started, look.moved, look.warned) = (queue.started, now, None);
                continue;
            }
            let stuck = now.duration_since(look.moved);
            let due = look
                .warned
                .is_none_or(|at| now.duration_since(at) >= REPEAT);
            if stuck >= WARN_AFTER && due {
                let Some(shared) = runtime.upgrade() else {
                    return;
                };
                warn(&shared, &scheduler, queue, stuck);
                look.warned = Some(now);
            }
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// Logs that `queue` started nothing for `stuck`, with what the runtime has and who holds it.
fn warn(shared: &RuntimeCore, scheduler: &Scheduler, queue: &Waiting, stuck: Duration) {
    let holders = holders(shared);
    let message = format!(
        "{} task(s) or actor(s) asking for {} have waited {} s and none started: the runtime \
         has {}; held by {}. They start when those end or are killed; ask for less, or give \
         the runtime more (Config::num_cpus, num_gpus, resource)",
        queue.queued,
        queue.demand,
        stuck.as_secs(),
        scheduler.capacity(),
        if holders.is_empty() {
            "nothing that holds resources for long".to_owned()
        } else {
            holders.join(", ")
        },
    );
    tracing::warn!(target: "rustyray::scheduler", "{message}");
}

/// Who holds resources now: the actors holding some for life, and the running tasks.
fn holders(shared: &RuntimeCore) -> Vec<String> {
    // Alike actors counted together: `2 × actor Worker (CPU 1)`.
    let mut actors: Vec<(String, usize)> = Vec::new();
    for (class, holds) in shared.actors().describe_holders() {
        let holder = format!("actor {class} ({holds})");
        match actors.iter_mut().find(|(h, _)| *h == holder) {
            Some((_, n)) => *n += 1,
            None => actors.push((holder, 1)),
        }
    }
    let mut out: Vec<String> = actors
        .into_iter()
        .map(|(holder, n)| match n {
            1 => holder,
            n => format!("{n} × {holder}"),
        })
        .collect();
    let (mut tasks, mut cpus, mut gpus) = (0, 0.0, 0.0);
    for (_, producer) in shared.store().snapshot().producers {
        if let Some(task) = producer.as_any().downcast_ref::<TaskControl>() {
            let (c, g) = task.demand();
            if task.phase() == Phase::Running && (c > 0.0 || g > 0.0) {
                (tasks, cpus, gpus) = (tasks + 1, cpus + c, gpus + g);
            }
        }
    }
    if tasks > 0 {
        out.push(format!("{tasks} running task(s) (CPU {cpus}, GPU {gpus})"));
    }
    out
}
