//! One snapshot for every request: built off the async workers, at most once per interval.
//!
//! Building a snapshot reads the whole runtime (a few milliseconds with many tasks), and the
//! runtime's tokio workers also run async task bodies, so no request builds one itself:
//!
//! - A request takes the latest build if that build *started* within the last `interval`
//!   (250 ms by default, [`Config::dashboard_interval`](crate::Config::dashboard_interval)): so
//!   what it shows is never older than the interval, however many clients poll.
//! - Otherwise it asks for a build, unless one is under way, and waits (a [`Notify`], no
//!   polling) for the next one to be published. The build runs on tokio's blocking threads
//!   and encodes every endpoint's answer there too, so a request only copies bytes.
//! - Many requests at once share one build; builds are at most one per interval plus the
//!   ones that requests arriving during a build (wanting newer data) start after it.
//!
//! A sampler beside it reads how many tasks have finished once a second (a sum over the
//! per-thread tallies, microseconds) and keeps the last ten minutes, for the rate chart.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{metrics, snapshot};
use crate::runtime;
use crate::timeline;

/// Every endpoint's answer, encoded once per build.
pub(super) struct Built {
    pub(super) snapshot: Bytes,
    pub(super) tasks: Bytes,
    pub(super) actors: Bytes,
    pub(super) objects: Bytes,
    pub(super) placement_groups: Bytes,
    pub(super) timeline: Bytes,
    /// The Prometheus text, or `None` if it could not be encoded.
    pub(super) metrics: Option<Bytes>,
}

/// How many rate samples are kept: ten minutes, one a second.
const SAMPLES: usize = 600;

#[derive(Default)]
struct State {
    /// The latest build, and when it started.
    latest: Option<(Instant, Arc<Built>)>,
    /// Whether a build is under way.
    building: bool,
}

/// The shared, rate-limited source of snapshots for one runtime's dashboard.
pub(super) struct Publisher {
    runtime: u32,
    interval: Duration,
    state: Mutex<State>,
    published: Notify,
    /// (seconds from the trace's zero, tasks finished per second over the second before).
    rate: Mutex<VecDeque<(f64, f64)>>,
}

impl Publisher {
    pub(super) fn new(runtime: u32, interval: Duration) -> Arc<Publisher> {
        Arc::new(Publisher {
            runtime,
            interval,
            state: Mutex::default(),
            published: Notify::new(),
            rate: Mutex::default(),
        })
    }

    /// A snapshot no older than the interval (see the module's notes).
    pub(super) async fn latest(self: &Arc<Self>) -> Arc<Built> {
        let asked = Instant::now();
        let oldest = asked.checked_sub(self.interval);
        loop {
            let published = self.published.notified();
            let mut published = std::pin::pin!(published);
            published.as_mut().enable(); // before looking: no publication is missed
            {
                let mut state = self.state.lock();
                if let Some((started, built)) = &state.latest {
                    let fresh = match oldest {
                        Some(oldest) => *started >= oldest,
                        None => true, // the process is younger than the interval
                    };
                    if fresh {
                        return Arc::clone(built);
                    }
                }
                if !state.building {
                    state.building = true;
                    let this = Arc::clone(self);
                    tokio::task::spawn_blocking(move || this.build());
                }
            }
            published.await;
        }
    }

    /// Builds and publishes a snapshot (on a blocking thread, where this runtime is current).
    fn build(&self) {
        /// Should a build panic, the next request starts another instead of waiting for good.
        struct Unblock<'a>(&'a Publisher);
        impl Drop for Unblock<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.state.lock().building = false;
                    self.0.published.notify_waiters();
                }
            }
        }
        let _unblock = Unblock(self);
        let started = Instant::now();
        let rate = self.rate.lock().iter().copied().collect();
        let snapshot = snapshot::take(&runtime::current(), rate);
        let built = Built {
            snapshot: json(&snapshot),
            tasks: json(&snapshot.tasks),
            actors: json(&snapshot.actors),
            objects: json(&snapshot.objects),
            placement_groups: json(&snapshot.placement_groups),
            timeline: json(&snapshot.timeline),
            metrics: metrics::render(snapshot).ok().map(Bytes::from),
        };
        let mut state = self.state.lock();
        state.latest = Some((started, Arc::new(built)));
        state.building = false;
        drop(state);
        self.published.notify_waiters();
    }

    /// Reads the finished count once a second, for the rate chart, until the runtime stops
    /// (which drops this task with the others).
    pub(super) async fn sample(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<(Instant, u64)> = None;
        loop {
            ticks.tick().await;
            let now = Instant::now();
            let finished = snapshot::finished(self.runtime);
            if let Some((then, before)) = last {
                let seconds = now.duration_since(then).as_secs_f64().max(1e-9);
                let per_second = finished.saturating_sub(before) as f64 / seconds;
                let at = timeline::since_start(timeline::now()).as_secs_f64();
                let mut rate = self.rate.lock();
                if rate.len() == SAMPLES {
                    rate.pop_front();
                }
                rate.push_back((at, per_second));
            }
            last = Some((now, finished));
        }
    }
}

/// A part of the snapshot as JSON. The parts are plain data: encoding them cannot fail.
fn json<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec()))
}
