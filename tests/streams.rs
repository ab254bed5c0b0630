//! Streaming tasks: items are objects usable while the producer runs; failures, backpressure,
//! drop, retries, cancel, async producers and consumers, and the state API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

mod common;

use common::gates::{open, wait_at};
use rustyray::{Config, Error, ObjectRef, Runtime};

const PATIENCE: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new(Config::default().num_cpus(2)).unwrap()
}

/// Per-test channels on which producers report each item they take.
static REPORTS: Mutex<Option<HashMap<u64, mpsc::Sender<u64>>>> = Mutex::new(None);

fn reports(test: u64) -> mpsc::Receiver<u64> {
    let (tx, rx) = mpsc::channel();
    REPORTS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(test, tx);
    rx
}

fn report(test: u64, item: u64) {
    if let Some(tx) = REPORTS.lock().unwrap().as_ref().and_then(|m| m.get(&test)) {
        let _ = tx.send(item);
    }
}

#[rustyray::remote(streaming)]
fn count_to(n: u64) -> impl Iterator<Item = u64> {
    1..=n
}

#[rustyray::remote]
fn double(x: u64) -> u64 {
    x * 2
}

#[test]
fn items_arrive_in_order_and_feed_other_tasks() {
    let rt = runtime();
    let _guard = rt.enter();
    let doubled: Vec<ObjectRef<u64>> = count_to::remote(5).map(double::remote).collect();
    assert_eq!(rustyray::get_all(&doubled).unwrap(), [2, 4, 6, 8, 10]);
    assert_eq!(count_to::remote(0).count(), 0, "an empty stream just ends");
}

/// Makes item 0, then waits at `gate` before making item 1.
#[rustyray::remote(streaming)]
fn first_then_gate(gate: u64) -> impl Iterator<Item = u64> {
    (0..2).inspect(move |&i| {
        if i == 1 {
            wait_at(gate);
        }
    })
}

#[test]
fn the_first_item_is_used_before_the_last_exists() {
    let rt = runtime();
    let _guard = rt.enter();
    let mut stream = first_then_gate::remote(1);
    let first = stream.next().unwrap();
    // The producer is held at the gate: item 1 does not exist yet, but item 0 feeds a task.
    let used = double::remote(first);
    assert_eq!(rustyray::get_timeout(&used, PATIENCE).unwrap(), 0);
    open(1);
    let rest: Vec<u64> = stream.map(|r| rustyray::get(&r).unwrap()).collect();
    assert_eq!(rest, [1]);
}

#[rustyray::remote(streaming)]
fn fails_at_third() -> impl Iterator<Item = Result<u64, String>> {
    (1..=4).map(|i| {
        if i == 3 {
            Err(format!("no {i}"))
        } else {
            Ok(i)
        }
    })
}

#[rustyray::remote(streaming)]
fn panics_at_third() -> impl Iterator<Item = u64> {
    (1..=4).inspect(|&i| assert!(i != 3, "boom at {i}"))
}

#[test]
fn an_err_or_a_panic_fails_that_ref_and_ends_the_stream() {
    let rt = runtime();
    let _guard = rt.enter();
    for (refs, expect) in [
        (fails_at_third::remote().collect::<Vec<_>>(), "no 3"),
        (panics_at_third::remote().collect(), "boom at 3"),
    ] {
        assert_eq!(refs.len(), 3, "two items, then the failure, then the end");
        assert_eq!(rustyray::get(&refs[0]).unwrap(), 1);
        assert_eq!(rustyray::get(&refs[1]).unwrap(), 2);
        let error = rustyray::get(&refs[2]).unwrap_err();
        assert!(matches!(error, Error::TaskFailed { .. }), "{error:?}");
        assert!(error.to_string().contains(expect), "{error}");
    }
    // The producer's own result fails the same way.
    let stream = fails_at_third::remote();
    let done = stream.completed();
    assert!(rustyray::get(&done)
        .unwrap_err()
        .to_string()
        .contains("no 3"));
}

/// Reports each item it takes to `test`'s channel; never ends.
#[rustyray::remote(streaming, backpressure = 2)]
fn endless(test: u64) -> impl Iterator<Item = u64> {
    (0..).inspect(move |&i| report(test, i))
}

#[test]
fn backpressure_bounds_how_far_the_producer_runs_ahead() {
    let rt = runtime();
    let _guard = rt.enter();
    let taken = reports(10);
    let mut stream = endless::remote(10);
    // Nothing consumed: the producer makes two items and waits.
    assert_eq!(taken.recv_timeout(PATIENCE), Ok(0));
    assert_eq!(taken.recv_timeout(PATIENCE), Ok(1));
    assert!(
        taken.recv_timeout(Duration::from_millis(300)).is_err(),
        "a third item was made while two were unconsumed"
    );
    // One consumed: room for one more, and no more.
    assert_eq!(rustyray::get(&stream.next().unwrap()).unwrap(), 0);
    assert_eq!(taken.recv_timeout(PATIENCE), Ok(2));
    assert!(taken.recv_timeout(Duration::from_millis(300)).is_err());
    // The per-call option overrides the attribute's default.
    let taken = reports(11);
    let _wide = endless::options().backpressure(4).remote(11);
    for expected in 0..4 {
        assert_eq!(taken.recv_timeout(PATIENCE), Ok(expected));
    }
    assert!(taken.recv_timeout(Duration::from_millis(300)).is_err());
}

#[rustyray::remote(streaming)]
fn endless_unbounded(test: u64) -> impl Iterator<Item = u64> {
    (0..).inspect(move |&i| report(test, i))
}

#[test]
fn dropping_the_stream_stops_the_producer() {
    let rt = runtime();
    let _guard = rt.enter();
    for backpressure in [None, Some(1)] {
        let test = 20 + backpressure.unwrap_or(0) as u64;
        let taken = reports(test);
        let mut stream = match backpressure {
            None => endless_unbounded::remote(test),
            Some(n) => endless_unbounded::options().backpressure(n).remote(test),
        };
        let first: Vec<u64> = stream
            .by_ref()
            .take(3)
            .map(|r| rustyray::get(&r).unwrap())
            .collect();
        assert_eq!(first, [0, 1, 2]);
        let done = stream.completed();
        drop(stream);
        // An endless producer ends: it saw the stream go at its next item.
        assert_eq!(rustyray::get_timeout(&done, PATIENCE), Ok(()));
        let made = taken.try_iter().count();
        assert!(made >= 3, "{made}");
    }
}

static TRIES: AtomicUsize = AtomicUsize::new(0);

/// Panics once, after two items, on its first try.
#[rustyray::remote(streaming, max_retries = 1)]
fn flaky_once() -> impl Iterator<Item = u64> {
    let first_try = TRIES.fetch_add(1, Ordering::SeqCst) == 0;
    (0..5).inspect(move |&i| assert!(!(first_try && i == 2), "first try fails at 2"))
}

#[test]
fn a_retried_producer_skips_what_it_delivered() {
    let rt = runtime();
    let _guard = rt.enter();
    let got: Vec<u64> = flaky_once::remote()
        .map(|r| rustyray::get(&r).unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2, 3, 4], "each item once, in order");
    assert_eq!(TRIES.load(Ordering::SeqCst), 2);
}

/// A sink moved out of the producer's body outlives its try, so the next try has none: its
/// items are dropped (with a warning in the log), and the stream still ends, with what the
/// first try delivered.
#[test]
fn a_sink_kept_past_its_try_leaves_the_retry_without_items() {
    static KEPT: Mutex<Vec<rustyray::task::StreamSink<u64>>> = Mutex::new(Vec::new());
    static TRIES: AtomicUsize = AtomicUsize::new(0);
    let rt = runtime();
    let _guard = rt.enter();
    let stream = rustyray::task::TaskBuilder::new("keeps_its_sink")
        .max_retries(1)
        .retry_exceptions(true)
        .spawn_stream(|mut sink| {
            sink.send(1)?;
            if TRIES.fetch_add(1, Ordering::SeqCst) == 0 {
                KEPT.lock().unwrap().push(sink);
                anyhow::bail!("the first try fails, keeping its sink");
            }
            sink.send(2)?;
            Ok(())
        });
    let completed = stream.completed();
    let got: Vec<u64> = stream.values().map(|v| v.unwrap()).collect();
    assert_eq!(got, [1], "the retry's new item had nowhere to go");
    rustyray::get(&completed).unwrap();
    assert_eq!(TRIES.load(Ordering::SeqCst), 2);
    KEPT.lock().unwrap().clear();
}

#[test]
fn cancelling_the_stream_ends_it_with_a_cancelled_ref() {
    let rt = runtime();
    let _guard = rt.enter();
    let mut stream = first_then_gate::remote(30);
    assert_eq!(rustyray::get(&stream.next().unwrap()).unwrap(), 0);
    assert!(stream.cancel());
    open(30);
    let rest: Vec<_> = stream.collect();
    let last = rest.last().expect("a last, failed ref");
    assert!(
        matches!(rustyray::get(last), Err(Error::Cancelled { .. })),
        "{:?}",
        rustyray::get(last)
    );
}

#[rustyray::remote(streaming)]
async fn ticks(n: u64) -> impl rustyray::Stream<Item = u64> {
    futures_util::StreamExt::then(futures_util::stream::iter(0..n), |i| async move {
        tokio::task::yield_now().await;
        i * 10
    })
}

#[rustyray::remote(streaming)]
fn sync_stream(n: u64) -> impl rustyray::Stream<Item = Result<u64, String>> {
    futures_util::StreamExt::map(futures_util::stream::iter(0..n), |i| {
        if i < 2 {
            Ok(i)
        } else {
            Err("two".into())
        }
    })
}

#[rustyray::remote(streaming)]
async fn async_iter(n: u64) -> impl Iterator<Item = u64> {
    tokio::task::yield_now().await;
    0..n
}

#[test]
fn async_producers_and_async_consumers() {
    let rt = runtime();
    let _guard = rt.enter();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tokio.block_on(async {
        // `StreamExt` in scope, as every async consumer has: its combinators just work on
        // `into_stream()`, and the stream's own `Iterator` ones stay unambiguous.
        use futures_util::StreamExt;
        let mut stream = ticks::remote(4).into_stream();
        let mut got = Vec::new();
        while let Some(item) = stream.next().await {
            got.push(item.await.unwrap());
        }
        assert_eq!(got, [0, 10, 20, 30]);
        let refs: Vec<_> = sync_stream::remote(5).into_stream().collect().await;
        assert_eq!(refs.len(), 3);
        assert!(refs[2]
            .clone()
            .await
            .unwrap_err()
            .to_string()
            .contains("two"));
        let refs: Vec<_> = async_iter::remote(3).into_stream().collect().await;
        let firsts: Vec<_> = async_iter::remote(3).take(2).collect(); // `Iterator::take`
        assert_eq!(rustyray::get_all(&firsts).unwrap(), [0, 1]);
        assert_eq!(rustyray::get_all(&refs).unwrap(), [0, 1, 2]);
    });
}

#[test]
fn the_state_api_shows_streams_and_their_items() {
    let rt = runtime();
    let _guard = rt.enter();
    let mut stream = first_then_gate::remote(40);
    let first = stream.next().unwrap();
    let info = rustyray::state::streams()
        .into_iter()
        .find(|s| s.function == "first_then_gate")
        .expect("listed");
    assert_eq!((info.delivered, info.unconsumed, info.ended), (1, 0, false));
    assert_eq!(info.producer, stream.completed().id());
    let summary = rustyray::state::summary();
    assert_eq!(summary.streams, (1, 1));
    assert!(summary
        .to_string()
        .contains("STREAMS: 1 live, 1 items made"));
    open(40);
    rustyray::get(&stream.completed()).unwrap();
    let info = &rustyray::state::streams()[0];
    assert_eq!((info.delivered, info.unconsumed, info.ended), (2, 1, true));
    drop((stream, first));
    assert!(
        rustyray::state::streams().is_empty(),
        "gone with its consumer and producer"
    );
}

#[rustyray::actor]
struct Tape {
    cells: Vec<u64>,
}

#[rustyray::actor]
impl Tape {
    fn new(n: u64) -> Self {
        Tape {
            cells: (0..n).collect(),
        }
    }

    /// Items borrowed from the actor's state while the call runs.
    #[rustyray(streaming)]
    fn read(&mut self, scale: u64) -> impl Iterator<Item = u64> + '_ {
        self.cells.iter().map(move |c| c * scale)
    }

    #[rustyray(streaming, backpressure = 1)]
    fn watched(&self, test: u64) -> impl Iterator<Item = Result<u64, String>> + '_ {
        self.cells.iter().map(move |&c| {
            report(test, c);
            if c == 3 {
                Err("cell 3 is bad".to_owned())
            } else {
                Ok(c)
            }
        })
    }

    #[rustyray(streaming)]
    async fn ticks(&mut self) -> impl rustyray::Stream<Item = u64> + '_ {
        futures_util::stream::iter(self.cells.iter().copied())
    }

    fn len(&self) -> usize {
        self.cells.len()
    }
}

#[test]
fn actor_methods_stream_too() {
    let rt = runtime();
    let _guard = rt.enter();
    let tape = Tape::remote(5);
    let read: Vec<u64> = tape.read(10).map(|r| rustyray::get(&r).unwrap()).collect();
    assert_eq!(read, [0, 10, 20, 30, 40]);
    // The call after a stream waits for it, as any call does.
    assert_eq!(rustyray::get(&tape.len()).unwrap(), 5);

    let taken = reports(50);
    let mut watched = tape.watched(50);
    assert_eq!(taken.recv_timeout(PATIENCE), Ok(0));
    assert!(
        taken.recv_timeout(Duration::from_millis(300)).is_err(),
        "backpressure = 1: one item ahead"
    );
    let first = watched.next().unwrap();
    assert_eq!(rustyray::get(&first).unwrap(), 0);
    let rest: Vec<_> = watched.collect();
    assert_eq!(rest.len(), 3, "1, 2, then the failure");
    let error = rustyray::get(&rest[2]).unwrap_err();
    assert!(error.to_string().contains("cell 3 is bad"), "{error}");
    let info = rustyray::state::streams();
    assert!(
        info.iter().all(|s| s.function.starts_with("Tape.")),
        "{info:?}"
    );

    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ticks: Vec<u64> = tokio.block_on(async {
        use futures_util::StreamExt;
        let refs: Vec<_> = tape.ticks().into_stream().collect().await;
        let mut out = Vec::new();
        for r in refs {
            out.push(r.await.unwrap());
        }
        out
    });
    assert_eq!(ticks, [0, 1, 2, 3, 4]);
}

#[test]
fn the_timeline_marks_each_item_and_the_producer() {
    let rt = runtime();
    let _guard = rt.enter();
    let stream = count_to::remote(3);
    let ids: Vec<String> = stream.map(|r| r.id().to_string()).collect();
    let path = std::env::temp_dir().join(format!("streams-timeline-{}.json", std::process::id()));
    rustyray::timeline(&path).unwrap();
    let trace: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).ok();
    let events = trace["traceEvents"].as_array().unwrap();
    let items: Vec<&str> = events
        .iter()
        .filter(|e| e["cat"] == "stream_item")
        .map(|e| {
            assert_eq!(
                (e["name"].as_str(), e["ph"].as_str()),
                (Some("count_to item"), Some("i"))
            );
            e["args"]["object"].as_str().unwrap()
        })
        .collect();
    assert_eq!(items, ids, "one mark per item, in order");
    assert!(events
        .iter()
        .any(|e| e["cat"] == "task" && e["name"] == "count_to"));
    // Items are no tasks in the state API.
    let tasks = rustyray::state::tasks(&rustyray::state::TaskFilter::default());
    assert!(tasks.iter().all(|t| !t.function.ends_with(" item")));
    assert_eq!(tasks.iter().filter(|t| t.function == "count_to").count(), 1);
}

#[rustyray::remote(streaming)]
fn blocks(n: usize, size: usize) -> impl Iterator<Item = Vec<u8>> {
    (0..n).map(move |i| vec![i as u8; size])
}

/// A small item waiting unread is counted by its stream and enters the store when taken; a
/// large one is stored (and counted against the budget) as soon as it is made, so the store
/// lists it before anyone reads it.
#[test]
fn small_items_are_stored_when_taken_and_large_ones_when_made() {
    let rt = runtime();
    let _guard = rt.enter();
    let objects = || rustyray::state::objects().len();
    let before = objects();

    let mut small = blocks::remote(3, 8);
    rustyray::get(small.completed()).unwrap();
    assert_eq!(
        objects(),
        before + 1,
        "only the producer's result is stored yet"
    );
    let first = small.next().unwrap();
    assert_eq!(rustyray::get(&first).unwrap(), vec![0u8; 8]);
    assert_eq!(objects(), before + 2, "the taken item is an object now");
    drop((first, small));

    let before = objects();
    let mut large = blocks::remote(3, 64 * 1024);
    rustyray::get(large.completed()).unwrap();
    assert_eq!(
        objects(),
        before + 4,
        "three large items and the producer's result"
    );
    assert!(rt.stats().memory_bytes >= 3 * 64 * 1024);
    let firsts: Vec<u8> = large
        .by_ref()
        .map(|r| rustyray::get(&r).unwrap()[0])
        .collect();
    assert_eq!(firsts, [0, 1, 2]);
}

/// `values()` gives the items' values in order, small and large alike, and a failed item as
/// its error before the end; in async code too. No object is made for a small item.
#[test]
fn values_come_in_order_with_a_failed_item_as_its_error() {
    let rt = runtime();
    let _guard = rt.enter();
    let values: Vec<rustyray::Result<u64>> = count_to::remote(5).values().collect();
    assert_eq!(
        values
            .into_iter()
            .collect::<rustyray::Result<Vec<_>>>()
            .unwrap(),
        [1, 2, 3, 4, 5]
    );

    let mut failing = fails_at_third::remote().values();
    assert_eq!(failing.next().unwrap().unwrap(), 1);
    assert_eq!(failing.next().unwrap().unwrap(), 2);
    let error = failing.next().unwrap().unwrap_err();
    assert!(error.to_string().contains("no 3"), "{error}");
    assert!(failing.next().is_none());
    drop(failing);

    let before = rustyray::state::objects().len();
    let mut small = blocks::remote(4, 16).values();
    rustyray::get(small.completed()).unwrap();
    let lengths: Vec<usize> = small.by_ref().map(|v| v.unwrap().len()).collect();
    assert_eq!(lengths, [16; 4]);
    assert_eq!(
        rustyray::state::objects().len(),
        before + 1,
        "only the producer's result became an object"
    );
    let memory = rt.stats().memory_bytes;
    let large: Vec<Vec<u8>> = blocks::remote(2, 64 * 1024)
        .values()
        .collect::<rustyray::Result<_>>()
        .unwrap();
    assert_eq!((large.len(), large[1][0]), (2, 1));
    assert_eq!(
        rt.stats().memory_bytes,
        memory,
        "the large items' memory is given back once their values are taken"
    );

    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let from_async: Vec<rustyray::Result<u64>> = tokio.block_on(futures_util::StreamExt::collect(
        ticks::remote(4).values().into_stream(),
    ));
    let from_async: rustyray::Result<Vec<u64>> = from_async.into_iter().collect();
    assert_eq!(from_async.unwrap(), [0, 10, 20, 30]);
}
