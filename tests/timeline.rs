//! `rustyray::timeline` writes a Chrome trace: the format's fields, one event per task and
//! actor call, proper nesting on each thread's row, and a bounded buffer.

mod common;

use std::collections::HashMap;

use rustyray::task::TaskBuilder;
use rustyray::ObjectRef;
use serde_json::Value as Json;

#[rustyray::actor]
struct Tally {
    n: u64,
}

#[rustyray::actor]
impl Tally {
    fn new() -> Self {
        Tally { n: 0 }
    }

    fn add(&mut self, k: u64) -> u64 {
        self.n += k;
        self.n
    }

    async fn add_later(&mut self, k: u64) -> u64 {
        tokio::task::yield_now().await;
        self.n += k;
        self.n
    }
}

fn sync_task(name: &'static str, i: u64) -> ObjectRef<u64> {
    let mut task = TaskBuilder::new(name);
    let i = task.arg(i);
    task.spawn(move || Ok(i.get()? * 2))
}

fn write_and_read(tag: &str) -> (usize, Vec<Json>) {
    let path = std::env::temp_dir().join(format!("rr-timeline-{tag}-{}.json", std::process::id()));
    let written = rustyray::timeline(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let trace: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(trace["displayTimeUnit"], "ms");
    let events = trace["traceEvents"]
        .as_array()
        .expect("a traceEvents array")
        .clone();
    (written, events)
}

fn count(events: &[Json], name: &str, ph: &str) -> usize {
    events
        .iter()
        .filter(|e| e["name"] == name && e["ph"] == ph)
        .count()
}

#[test]
fn the_timeline_is_a_chrome_trace_with_one_event_per_task_and_call() {
    let rt = common::runtime(2);
    let _guard = rt.enter();
    let sync: Vec<_> = (0..20).map(|i| sync_task("tl_sync", i)).collect();
    let asynchronous: Vec<ObjectRef<u64>> = (0..10u64)
        .map(|i| {
            let mut task = TaskBuilder::new("tl_async");
            let i = task.arg(i);
            task.spawn_async(move || {
                let i = i.get();
                async move { Ok(i? + 1) }
            })
        })
        .collect();
    let failing = common::fail("tl_fail on purpose");
    let tally = Tally::remote();
    let calls: Vec<_> = (0..5).map(|k| tally.add(k)).collect();
    let later: Vec<_> = (0..3).map(|k| tally.add_later(k)).collect();
    rustyray::get_all(&sync).unwrap();
    rustyray::get_all(&asynchronous).unwrap();
    rustyray::get_all(&calls).unwrap();
    rustyray::get_all(&later).unwrap();
    assert!(rustyray::get(&failing).is_err());

    let (written, events) = write_and_read("format");
    assert!(written >= 20 + 10 + 1 + 5 + 3, "{written}");
    let pid = rt.id();
    for e in &events {
        assert!(e["name"].is_string(), "{e}");
        assert!(e["ts"].is_u64(), "{e}");
        assert_eq!(e["pid"], pid, "{e}");
        assert!(e["tid"].is_u64(), "{e}");
        match e["ph"].as_str().unwrap() {
            "X" => assert!(e["dur"].is_u64(), "{e}"),
            "b" | "e" => assert!(e["id"].is_string(), "{e}"),
            "M" => assert_eq!(e["name"], "thread_name", "{e}"),
            other => panic!("unexpected phase {other}: {e}"),
        }
        if e["ph"] != "M" {
            let cat = e["cat"].as_str().unwrap();
            assert!(cat == "task" || cat == "actor_call", "{e}");
        }
    }
    // One event per task and per call.
    assert_eq!(count(&events, "tl_sync", "X"), 20);
    assert_eq!(count(&events, "tl_async", "b"), 10);
    assert_eq!(count(&events, "tl_async", "e"), 10);
    assert_eq!(count(&events, "Tally.add", "X"), 5);
    assert_eq!(count(&events, "Tally.add_later", "b"), 3);
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e["args"]["failed"] == true && e["ph"] == "X")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    // Every row that has events is named.
    let named: Vec<_> = events
        .iter()
        .filter(|e| e["ph"] == "M")
        .map(|e| e["tid"].clone())
        .collect();
    for e in events.iter().filter(|e| e["ph"] != "M") {
        assert!(named.contains(&e["tid"]), "row {} has no name", e["tid"]);
    }
    // On each row, complete events nest or follow each other; they never half overlap.
    let mut rows: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let (ts, dur) = (e["ts"].as_u64().unwrap(), e["dur"].as_u64().unwrap());
        rows.entry(e["tid"].as_u64().unwrap())
            .or_default()
            .push((ts, ts + dur));
    }
    for spans in rows.values_mut() {
        spans.sort();
        for pair in spans.windows(2) {
            let ((_, a_end), (b_start, b_end)) = (pair[0], pair[1]);
            assert!(b_start >= a_end || b_end <= a_end, "{pair:?}");
        }
    }
}

#[test]
fn the_timeline_keeps_a_bounded_number_of_events() {
    let rt = common::runtime(1);
    let _guard = rt.enter();
    let total = rustyray::EVENTS_PER_THREAD + 5_000;
    let refs: Vec<_> = (0..total as u64).map(|i| sync_task("tl_many", i)).collect();
    rustyray::get_all(&refs).unwrap();
    let (written, events) = write_and_read("bounded");
    let rows = events.iter().filter(|e| e["ph"] == "M").count();
    assert!(written < total, "{written} of {total}: nothing was dropped");
    assert!(
        written <= rustyray::EVENTS_PER_THREAD * rows,
        "{written} > {rows} rows"
    );
    // The most recent ones are the ones kept.
    let last = refs.last().unwrap().id().to_string();
    assert!(events.iter().any(|e| e["args"]["object"] == last.as_str()));
}
