//! `/metrics`: a [`Snapshot`] in the Prometheus text format, written by `prometheus-client`
//! (its OpenMetrics text, which Prometheus reads) through a collector that reads the
//! snapshot at each scrape, so nothing is counted twice and the hot paths record nothing new.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::snapshot::{FunctionRow, Snapshot};

/// The snapshot's metrics, in the text format.
pub(crate) fn render(snapshot: Snapshot) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("rustyray");
    registry.register_collector(Box::new(Metrics(snapshot)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct Metrics(Snapshot);

/// The labels of a function's series.
fn labels(row: &FunctionRow) -> Vec<(&'static str, String)> {
    let mut labels = vec![
        ("function", row.function.clone()),
        ("kind", row.kind.to_owned()),
    ];
    if let Some(actor) = &row.actor {
        labels.push(("actor", actor.clone()));
    }
    labels
}

/// One series: its labels and its value.
type Series = (Vec<(&'static str, String)>, u64);

/// Writes one family of `kind` (counter or gauge): a value per label set.
fn family(
    encoder: &mut DescriptorEncoder<'_>,
    kind: MetricType,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = Series>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        let encoder = family.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(encoder)?,
            _ => ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(encoder)?,
        }
    }
    Ok(())
}

fn counters(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = Series>,
) -> Result<(), std::fmt::Error> {
    family(encoder, MetricType::Counter, name, help, series)
}

fn gauges(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = Series>,
) -> Result<(), std::fmt::Error> {
    family(encoder, MetricType::Gauge, name, help, series)
}

/// Writes one gauge without labels.
fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(family)
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let tasks = &s.tasks;
        let per_row = |value: fn(&FunctionRow) -> u64| move |r: &FunctionRow| (labels(r), value(r));
        counters(
            &mut encoder,
            "tasks_submitted",
            "Tasks and actor calls submitted.",
            tasks.iter().map(per_row(|r| r.submitted)),
        )?;
        counters(
            &mut encoder,
            "tasks_finished",
            "Tasks and actor calls ended, failed or not.",
            tasks.iter().map(per_row(|r| r.finished)),
        )?;
        counters(
            &mut encoder,
            "tasks_failed",
            "Tasks and actor calls that failed.",
            tasks.iter().map(per_row(|r| r.failed)),
        )?;
        counters(
            &mut encoder,
            "tasks_retried",
            "Tries of tasks run again after a failure.",
            tasks
                .iter()
                .filter(|r| r.actor.is_none())
                .map(per_row(|r| r.retried)),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "task_run_seconds",
                "How long tasks and actor calls ran.",
                None,
                MetricType::Histogram,
            )?;
            for row in tasks.iter().filter(|r| !r.buckets.is_empty()) {
                let buckets = coarse(&row.buckets);
                let count = buckets.iter().map(|b| b.1).sum();
                let labels = labels(row);
                family
                    .encode_family(&labels)?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                        row.run_seconds,
                        count,
                        &buckets,
                        None,
                    )?;
            }
        }
        gauges(
            &mut encoder,
            "tasks",
            "Tasks and actor calls not finished, by state (QUEUED is the queue depth).",
            ["RUNNING", "QUEUED", "WAITING_FOR_DEPENDENCIES"]
                .into_iter()
                .map(|state| {
                    let n: u64 = tasks.iter().filter_map(|r| r.live.get(state)).sum();
                    (vec![("state", state.to_owned())], n)
                }),
        )?;
        let o = &s.objects;
        let memory = "Bytes of objects in memory counted against the budget.";
        gauge(&mut encoder, "object_store_bytes", memory, o.memory_bytes)?;
        let limit = "The object store's memory budget.";
        gauge(
            &mut encoder,
            "object_store_limit_bytes",
            limit,
            o.limit_bytes,
        )?;
        gauges(
            &mut encoder,
            "objects",
            "Objects in the store, by state.",
            o.by_state
                .iter()
                .map(|(state, (n, _))| (vec![("state", state.clone())], *n as u64)),
        )?;
        let spilled = "Objects spilled to disk now.";
        gauge(&mut encoder, "spilled_objects", spilled, o.spilled_objects)?;
        let spilled = "Bytes spilled to disk now.";
        gauge(&mut encoder, "spilled_bytes", spilled, o.spilled_bytes)?;
        gauges(
            &mut encoder,
            "actors",
            "Actors, by state.",
            ["ALIVE", "DEAD"].into_iter().map(|state| {
                let n = s.actors.iter().filter(|a| a.state == state).count();
                (vec![("state", state.to_owned())], n as u64)
            }),
        )?;
        let mut restarts: std::collections::BTreeMap<&str, u64> = Default::default();
        for actor in &s.actors {
            restarts.insert(&actor.class, actor.restarts);
        }
        counters(
            &mut encoder,
            "actor_restarts",
            "Actors rebuilt after a panic.",
            restarts
                .into_iter()
                .map(|(class, n)| (vec![("class", class.to_owned())], n)),
        )?;
        gauges(
            &mut encoder,
            "placement_groups",
            "Placement groups alive, by state.",
            ["PENDING", "CREATED"].into_iter().map(|state| {
                let n = s
                    .placement_groups
                    .iter()
                    .filter(|g| g.state == state)
                    .count();
                (vec![("state", state.to_owned())], n as u64)
            }),
        )?;
        Ok(())
    }
}

/// The fine buckets (each twice the last, in clock readings) merged in pairs, from 2^8 readings
/// on: a bound 4x the last, enough for a latency histogram and a quarter of the series.
fn coarse(fine: &[(f64, u64)]) -> Vec<(f64, u64)> {
    const FIRST: usize = 7;
    let mut out: Vec<(f64, u64)> = Vec::new();
    let below: u64 = fine.iter().take(FIRST).map(|b| b.1).sum();
    for pair in fine[FIRST..].chunks(2) {
        let bound = pair.last().map_or(0.0, |b| b.0);
        out.push((bound, pair.iter().map(|b| b.1).sum()));
    }
    if let Some(first) = out.first_mut() {
        first.1 += below;
    }
    if let Some(last) = out.last_mut() {
        last.0 = f64::MAX; // written as `+Inf`
    }
    out
}
