//! The workloads: Ray's microbenchmark set under Ray's names, then lines Ray cannot do well.
//! Each runs beside its raw floor, the least work that does the same thing with tokio,
//! channels, a locked map or `memcpy`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustyray::{ActorHandle, ObjectRef};
use tokio::sync::{mpsc, oneshot};

use crate::measure::{paired, percentile_us, rate, ray, Effort, Line};

#[rustyray::remote]
fn nop() {}

#[rustyray::remote]
async fn nop_async() {}

#[rustyray::remote]
fn sum_all(values: Vec<ObjectRef<u64>>) -> rustyray::Result<u64> {
    Ok(rustyray::get_all(&values)?.iter().sum())
}

#[rustyray::remote]
fn add_one(x: u64) -> u64 {
    x + 1
}

/// A client that submits `n` tasks and waits for them all (Ray's multi-client runs these in
/// actors; a task does the same work here).
#[rustyray::remote]
async fn task_client(n: usize) -> rustyray::Result<()> {
    let refs: Vec<ObjectRef<()>> = (0..n).map(|_| nop::remote()).collect();
    for r in refs {
        r.await?;
    }
    Ok(())
}

/// Awaits every ref, in order.
async fn await_all<T: rustyray::Value + Clone>(refs: Vec<ObjectRef<T>>) -> rustyray::Result<()> {
    for r in refs {
        r.await?;
    }
    Ok(())
}

/// A client that makes `n` calls spread over `actors`, then waits for them all: without an
/// argument, as Ray's `small_value()`, or each with the same `put` ref.
#[rustyray::remote]
async fn actor_client(
    actors: Vec<ActorHandle<Sink>>,
    n: usize,
    with_arg: bool,
) -> rustyray::Result<()> {
    let actor = |i: usize| &actors[i % actors.len()];
    if with_arg {
        let arg = rustyray::put(7u64)?;
        await_all((0..n).map(|i| actor(i).ping_arg(&arg)).collect()).await
    } else {
        await_all((0..n).map(|i| actor(i).ping()).collect()).await
    }
}

/// The same without arguments, against async actors.
#[rustyray::remote]
async fn async_actor_client(actors: Vec<ActorHandle<AsyncSink>>, n: usize) -> rustyray::Result<()> {
    await_all((0..n).map(|i| actors[i % actors.len()].ping()).collect()).await
}

/// A client that puts `n` small objects.
#[rustyray::remote]
fn put_client(n: usize) -> rustyray::Result<()> {
    for i in 0..n {
        rustyray::put(i as u64)?;
    }
    Ok(())
}

/// A client that puts `n` copies of one array of `bytes` bytes (as Ray's multi-client put
/// copies one array into the store each time).
#[rustyray::remote]
fn put_bytes_client(n: usize, bytes: usize) -> rustyray::Result<()> {
    let array = vec![7u8; bytes];
    for _ in 0..n {
        // A copy of the array, as Ray's `ray.put(array)` makes.
        rustyray::put_slice(&array)?;
    }
    Ok(())
}

/// A threaded actor (Ray's: sync `&self` methods, several at once).
#[rustyray::actor]
pub(crate) struct Napper;

#[rustyray::actor(concurrent)]
impl Napper {
    fn new() -> Self {
        Napper
    }

    /// Blocks its thread for `ms` milliseconds (a call waiting on I/O, say).
    fn nap(&self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

#[rustyray::actor]
pub(crate) struct Sink;

#[rustyray::actor]
impl Sink {
    fn new() -> Self {
        Sink
    }

    fn ping(&self) {}

    fn ping_arg(&self, x: u64) -> u64 {
        x
    }

    /// The id of the thread the call runs on.
    fn thread(&self) -> String {
        format!("{:?}", std::thread::current().id())
    }
}

#[rustyray::actor]
pub(crate) struct AsyncSink;

#[rustyray::actor(concurrent)]
impl AsyncSink {
    fn new() -> Self {
        AsyncSink
    }

    async fn ping(&self) {}

    async fn ping_arg(&self, x: u64) -> u64 {
        x
    }
}

/// The floor's tools: a tokio runtime of the same size and a channel-based actor.
pub(crate) struct Floor {
    pub(crate) tokio: tokio::runtime::Runtime,
}

type Reply = oneshot::Sender<u64>;

impl Floor {
    /// An actor without a framework: a task answering requests from an unbounded channel.
    fn actor(&self) -> mpsc::UnboundedSender<Reply> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
        self.tokio.spawn(async move {
            let mut n = 0u64;
            while let Some(reply) = rx.recv().await {
                n += 1;
                let _ = reply.send(n);
            }
        });
        tx
    }

    /// `n` calls spread over `actors`, pipelined, awaited.
    async fn calls(actors: &[mpsc::UnboundedSender<Reply>], n: usize) {
        let answers: Vec<_> = (0..n)
            .map(|i| {
                let (reply, answer) = oneshot::channel();
                let _ = actors[i % actors.len()].send(reply);
                answer
            })
            .collect();
        for a in answers {
            let _ = a.await;
        }
    }

    fn spawn_join(&self, n: usize) {
        self.tokio.block_on(async {
            let handles: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
            for h in handles {
                let _ = h.await;
            }
        })
    }
}

/// `n` calls made by `call(i)`: all submitted, then all gotten.
fn pipelined<T: rustyray::Value + Clone>(
    n: usize,
    call: impl Fn(usize) -> ObjectRef<T>,
) -> impl FnMut() {
    move || {
        let refs: Vec<ObjectRef<T>> = (0..n).map(&call).collect();
        rustyray::get_all(&refs).unwrap();
    }
}

/// `n` calls made by `call()`, each gotten before the next is made.
fn one_at_a_time<T: rustyray::Value + Clone>(
    n: usize,
    call: impl Fn() -> ObjectRef<T>,
) -> impl FnMut() {
    move || {
        for _ in 0..n {
            rustyray::get(&call()).unwrap();
        }
    }
}

/// A line measured beside its floor (see [`paired`]): `floor` is what the floor is and its
/// workload.
fn beside(
    e: Effort,
    name: &str,
    unit: &'static str,
    ops: usize,
    ours: impl FnMut(),
    (what, floor): (&str, impl FnMut()),
) -> Line {
    let (ours, raw) = paired(e, ops, ours, floor);
    line(name, unit, ours, Some((what, raw)))
}

pub(crate) fn line(name: &str, unit: &'static str, ours: f64, floor: Option<(&str, f64)>) -> Line {
    Line {
        name: name.to_owned(),
        unit,
        ours,
        floor: floor.map(|(what, f)| (what.to_owned(), f)),
        ray: ray(name),
        higher_is_better: true,
    }
}

/// The workload groups, in report order, with a word that selects each (`--filter`).
pub(crate) fn all(e: Effort, floor: &Floor, cpus: usize, filter: Option<&str>) -> Vec<Line> {
    let wants = |group: &str| filter.is_none_or(|f| group.contains(f) || f.contains(group));
    let mut lines = Vec::new();
    if wants("tasks") {
        lines.extend(tasks(e, floor));
    }
    if wants("actor") {
        lines.extend(actor_calls(e, floor, cpus));
    }
    if wants("objects put get") {
        lines.extend(objects(e));
    }
    if wants("objects large") {
        lines.extend(crate::large::lines(e, cpus));
    }
    if wants("groups placement") {
        lines.extend(crate::scheduling::lines(e));
    }
    if wants("streams returns") {
        lines.extend(crate::streams::lines(e));
    }
    if wants("chain args latency") {
        lines.extend(extra(e, floor));
    }
    lines
}

fn tasks(e: Effort, floor: &Floor) -> Vec<Line> {
    let mut out = Vec::new();
    let n = e.size(2_000, 200);
    let (ours, raw) = paired(e, n, one_at_a_time(n, nop::remote), || {
        for _ in 0..n {
            floor.tokio.block_on(floor.tokio.spawn(async {})).unwrap();
        }
    });
    out.push(line(
        "single client tasks sync",
        "tasks",
        ours,
        Some(("block_on(spawn) one at a time", raw)),
    ));

    let batch = 1_000;
    let batches = e.size(100, 5);
    let batched = |submit: fn() -> ObjectRef<()>| {
        move || {
            for _ in 0..batches {
                let refs: Vec<ObjectRef<()>> = (0..batch).map(|_| submit()).collect();
                rustyray::get_all(&refs).unwrap();
            }
        }
    };
    let (ours, raw) = paired(e, batch * batches, batched(nop_async::remote), || {
        for _ in 0..batches {
            floor.spawn_join(batch);
        }
    });
    out.push(line(
        "single client tasks async",
        "tasks",
        ours,
        Some(("tokio::spawn + join", raw)),
    ));
    out.push(line(
        "single client tasks and get batch",
        "batches",
        ours / batch as f64,
        Some(("tokio::spawn + join", raw / batch as f64)),
    ));

    let (sync_batch, raw_sync) = paired(e, batch * batches, batched(nop::remote), || {
        floor.tokio.block_on(async {
            for _ in 0..batches {
                let handles: Vec<_> = (0..batch)
                    .map(|_| tokio::task::spawn_blocking(|| {}))
                    .collect();
                for h in handles {
                    let _ = h.await;
                }
            }
        })
    });
    out.push(line(
        "tasks sync, batches of 1000 (extra)",
        "tasks",
        sync_batch,
        Some(("spawn_blocking + join", raw_sync)),
    ));

    let per_client = e.size(10_000, 500);
    let ours = || {
        let clients: Vec<_> = (0..4).map(|_| task_client::remote(per_client)).collect();
        rustyray::get_all(&clients).unwrap();
    };
    let (ours, raw) = paired(e, 4 * per_client, ours, || {
        floor.tokio.block_on(async {
            let clients: Vec<_> = (0..4)
                .map(|_| {
                    tokio::spawn(async move {
                        let hs: Vec<_> = (0..per_client).map(|_| tokio::spawn(async {})).collect();
                        for h in hs {
                            let _ = h.await;
                        }
                    })
                })
                .collect();
            for c in clients {
                let _ = c.await;
            }
        })
    });
    out.push(line(
        "multi client tasks async",
        "tasks",
        ours,
        Some(("4 tokio tasks × spawn + join", raw)),
    ));
    out
}

fn actor_calls(e: Effort, floor: &Floor, cpus: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let calls = e.size(100_000, 2_000);
    let singles = e.size(5_000, 200);
    let sink = Sink::remote();
    let raw_actor = floor.actor();
    // Each line is measured beside its own run of the floor (see `paired`).
    let mut raw_sync = || {
        for _ in 0..singles {
            let (reply, answer) = oneshot::channel();
            raw_actor.send(reply).unwrap();
            answer.blocking_recv().unwrap();
        }
    };
    let raw_actor_async = raw_actor.clone();
    let mut raw_async = || {
        floor
            .tokio
            .block_on(Floor::calls(std::slice::from_ref(&raw_actor_async), calls))
    };
    const ONE_AT_A_TIME: &str = "mpsc + oneshot, one at a time";
    const PIPELINED: &str = "mpsc + oneshot, pipelined";

    out.push(beside(
        e,
        "1:1 actor calls sync",
        "calls",
        singles,
        one_at_a_time(singles, || sink.ping()),
        (ONE_AT_A_TIME, &mut raw_sync),
    ));

    // Not in Ray's set: a bounded `get` never runs the call on the getting thread, so this is
    // the cross-thread round trip (caller → pool thread → caller) that `get` above skips.
    let bounded = || {
        for _ in 0..singles {
            rustyray::get_timeout(&sink.ping(), Duration::from_secs(60)).unwrap();
        }
    };
    out.push(beside(
        e,
        "1:1 actor calls sync, with a timeout (extra)",
        "calls",
        singles,
        bounded,
        (ONE_AT_A_TIME, &mut raw_sync),
    ));

    // Not in Ray's set: how often `get` ran the call itself on the getting thread (the
    // optimization the line above measures). Tests assert only that it may, never how often.
    let here = format!("{:?}", std::thread::current().id());
    let on_getter = (0..singles)
        .filter(|_| rustyray::get(&sink.thread()).unwrap() == here)
        .count();
    out.push(line(
        "1:1 sync actor calls run by their getter (extra)",
        "%",
        100.0 * on_getter as f64 / singles as f64,
        None,
    ));

    out.push(beside(
        e,
        "1:1 actor calls async",
        "calls",
        calls,
        pipelined(calls, |_| sink.ping()),
        (PIPELINED, &mut raw_async),
    ));

    // Not in Ray's set: a value argument and a non-unit result cost an allocation each more.
    let with_value = pipelined(calls, |i| sink.ping_arg(i as u64));
    out.push(beside(
        e,
        "1:1 actor calls with a value and a result (extra)",
        "calls",
        calls,
        with_value,
        (PIPELINED, &mut raw_async),
    ));

    let concurrent = AsyncSink::options().max_concurrency(16).remote();
    out.push(beside(
        e,
        "1:1 actor calls concurrent",
        "calls",
        calls,
        pipelined(calls, |_| concurrent.ping()),
        (PIPELINED, &mut raw_async),
    ));

    // Ray's threaded actor: 4 sync calls of one actor with max_concurrency(4), each blocking
    // its thread for a while, against 4 threads doing the same. They run on the CPU pool, so
    // at most as many at once as it has threads.
    let napper = Napper::options().max_concurrency(4).remote();
    let nap = e.size(50, 20) as u64;
    let naps = || {
        let calls: Vec<ObjectRef<()>> = (0..4).map(|_| napper.nap(nap)).collect();
        rustyray::get_all(&calls).unwrap();
    };
    out.push(beside(
        e,
        "threaded actor: 4 blocking sync calls at once (extra)",
        "calls",
        4,
        naps,
        ("4 threads blocking as long", || {
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| std::thread::sleep(Duration::from_millis(nap)));
                }
            })
        }),
    ));

    let n = cpus.max(2);
    let sinks: Vec<ActorHandle<Sink>> = (0..n).map(|_| Sink::remote()).collect();
    let raw_actors: Vec<_> = (0..n).map(|_| floor.actor()).collect();
    const TO_N: &str = "mpsc + oneshot to n actors";
    let mut raw_1n = || floor.tokio.block_on(Floor::calls(&raw_actors, calls));
    out.push(beside(
        e,
        "1:n actor calls async",
        "calls",
        calls,
        pipelined(calls, |i| sinks[i % n].ping()),
        (TO_N, &mut raw_1n),
    ));

    let per_client = calls / n;
    const N_CLIENTS: &str = "n tokio clients × mpsc actors";
    let mut raw_nn = || {
        floor.tokio.block_on(async {
            let clients: Vec<_> = (0..n)
                .map(|_| {
                    let actors = raw_actors.clone();
                    tokio::spawn(async move { Floor::calls(&actors, per_client).await })
                })
                .collect();
            for c in clients {
                let _ = c.await;
            }
        })
    };
    for with_arg in [false, true] {
        let ours = || {
            let clients: Vec<_> = (0..n)
                .map(|_| actor_client::remote(sinks.clone(), per_client, with_arg))
                .collect();
            rustyray::get_all(&clients).unwrap();
        };
        let (ours, raw) = paired(e, per_client * n, ours, &mut raw_nn);
        let name = if with_arg {
            "n:n actor calls with arg async"
        } else {
            "n:n actor calls async"
        };
        out.push(line(name, "calls", ours, Some((N_CLIENTS, raw))));
    }

    let async_sink = AsyncSink::remote();
    let one = one_at_a_time(singles, || async_sink.ping());
    out.push(beside(
        e,
        "1:1 async-actor calls sync",
        "calls",
        singles,
        one,
        (ONE_AT_A_TIME, &mut raw_sync),
    ));
    out.push(beside(
        e,
        "1:1 async-actor calls async",
        "calls",
        calls,
        pipelined(calls, |_| async_sink.ping()),
        (PIPELINED, &mut raw_async),
    ));
    let arg = rustyray::put(3u64).unwrap();
    let with_args = pipelined(calls, |_| async_sink.ping_arg(&arg));
    out.push(beside(
        e,
        "1:1 async-actor calls with args async",
        "calls",
        calls,
        with_args,
        (PIPELINED, &mut raw_async),
    ));

    let async_sinks: Vec<ActorHandle<AsyncSink>> = (0..n).map(|_| AsyncSink::remote()).collect();
    let spread = pipelined(calls, |i| async_sinks[i % n].ping());
    out.push(beside(
        e,
        "1:n async-actor calls async",
        "calls",
        calls,
        spread,
        (TO_N, &mut raw_1n),
    ));
    let ours = || {
        let clients: Vec<_> = (0..n)
            .map(|_| async_actor_client::remote(async_sinks.clone(), per_client))
            .collect();
        rustyray::get_all(&clients).unwrap();
    };
    out.push(beside(
        e,
        "n:n async-actor calls async",
        "calls",
        per_client * n,
        ours,
        (N_CLIENTS, &mut raw_nn),
    ));
    out
}

fn objects(e: Effort) -> Vec<Line> {
    let mut out = Vec::new();
    let n = e.size(200_000, 5_000);
    let map = parking_lot::Mutex::new(HashMap::new());
    let mut raw_put = || {
        for i in 0..n {
            map.lock().insert(i, Arc::new(i as u64));
            map.lock().remove(&i);
        }
    };
    let puts = || {
        for i in 0..n {
            drop(rustyray::put(i as u64).unwrap());
        }
    };
    out.push(beside(
        e,
        "single client put calls",
        "puts",
        n,
        puts,
        ("Mutex<HashMap> insert + remove", &mut raw_put),
    ));

    let clients = || {
        let clients: Vec<_> = (0..10).map(|_| put_client::remote(100)).collect();
        rustyray::get_all(&clients).unwrap();
    };
    let (ours, raw) = paired(e, 1_000, clients, || {
        std::thread::scope(|s| {
            for t in 0..10 {
                let map = &map;
                s.spawn(move || {
                    for i in 0..100 {
                        map.lock().insert(t * 100 + i, Arc::new(i as u64));
                        map.lock().remove(&(t * 100 + i));
                    }
                });
            }
        })
    });
    out.push(line(
        "multi client put calls",
        "puts",
        ours,
        Some(("10 threads × Mutex<HashMap>", raw)),
    ));

    let stored = rustyray::put(42u64).unwrap();
    let gets = || {
        for _ in 0..n {
            rustyray::get(&stored).unwrap();
        }
    };
    let lookups = || {
        for _ in 0..n {
            let v = map.lock().get(&0).cloned();
            std::hint::black_box(v);
        }
    };
    map.lock().insert(0, Arc::new(42u64));
    let (ours, raw) = paired(e, n, gets, lookups);
    map.lock().clear();
    out.push(line(
        "single client get calls",
        "gets",
        ours,
        Some(("Mutex<HashMap> lookup + Arc clone", raw)),
    ));
    let put_get = || {
        for i in 0..n {
            let r = rustyray::put(i as u64).unwrap();
            rustyray::get(&r).unwrap();
        }
    };
    let (put_get, raw) = paired(e, n, put_get, &mut raw_put);
    out.push(line(
        "put + get of a u64 (extra)",
        "pairs",
        put_get,
        Some(("Mutex<HashMap> insert + remove", raw)),
    ));

    // Large objects: put moves the value in (no copy), so it is O(1) in the size.
    let big = e.size(800 << 20, 80 << 20);
    let gb = big as f64 / 1e9;
    let mut blocks: Vec<Vec<u8>> = (0..e.rounds + 1).map(|_| vec![1u8; big]).collect();
    let mut kept = Vec::new(); // freed after timing: freeing 800 MB is not part of a put
    let ours = rate(e, 1, || {
        let block = blocks.pop().unwrap_or_default();
        kept.push(rustyray::put(block).unwrap());
    }) * gb;
    drop((blocks, kept));
    let source = vec![1u8; big];
    let raw = rate(e, 1, || {
        std::hint::black_box(source.clone());
    }) * gb;
    drop(source);
    out.push(line(
        "single client put gigabytes",
        "GB",
        ours,
        Some(("memcpy of the same bytes", raw)),
    ));
    let stored = rustyray::put(vec![2u8; big]).unwrap();
    let zero_copy = rate(e, 1, || {
        std::hint::black_box(rustyray::get_arc(&stored).unwrap());
    }) * gb;
    drop(stored);
    out.push(line(
        "zero-copy get of the same object (extra)",
        "GB",
        zero_copy,
        Some(("memcpy of the same bytes", raw)),
    ));

    let each = e.size(80 << 20, 8 << 20);
    let total = 100.0 * each as f64 / 1e9;
    let ours = rate(e, 1, || {
        let clients: Vec<_> = (0..10)
            .map(|_| put_bytes_client::remote(10, each))
            .collect();
        rustyray::get_all(&clients).unwrap();
    }) * total;
    // The floor: the same work on 2 threads, five clients each (an array made, then copied
    // 10 times), into memory written before (as Ray copies into the shared memory it keeps
    // mapped).
    let mut copies = [vec![1u8; each], vec![1u8; each]];
    let raw = rate(e, 1, || {
        std::thread::scope(|s| {
            for copy in copies.iter_mut() {
                s.spawn(move || {
                    for _ in 0..5 {
                        let array = vec![7u8; each];
                        for _ in 0..10 {
                            copy.copy_from_slice(std::hint::black_box(&array));
                            std::hint::black_box(&mut *copy);
                        }
                    }
                });
            }
        })
    }) * total;
    drop(copies);
    out.push(line(
        "multi client put gigabytes",
        "GB",
        ours,
        Some((
            "the clients' arrays and copies on 2 threads, into mapped memory",
            raw,
        )),
    ));

    let ours = rate(e, 1, || {
        let mut pending: Vec<ObjectRef<()>> = (0..1_000).map(|_| nop::remote()).collect();
        while !pending.is_empty() {
            let (_, rest) = rustyray::wait(&pending, 1, None);
            pending = rest;
        }
    });
    out.push(line("single client wait 1k refs", "iterations", ours, None));

    let refs: Vec<ObjectRef<u64>> = (0..10_000)
        .map(|i| rustyray::put(i as u64).unwrap())
        .collect();
    let holder = rustyray::put(refs).unwrap();
    let arcs: Vec<Arc<u64>> = (0..10_000).map(Arc::new).collect();
    let reps = e.size(200, 20);
    let gets = || {
        for _ in 0..reps {
            std::hint::black_box(rustyray::get(&holder).unwrap());
        }
    };
    let (ours, raw) = paired(e, reps, gets, || {
        for _ in 0..reps {
            std::hint::black_box(arcs.clone());
        }
    });
    out.push(line(
        "single client get object containing 10k refs",
        "gets",
        ours,
        Some(("clone of 10k Arcs", raw)),
    ));
    out
}

fn extra(e: Effort, floor: &Floor) -> Vec<Line> {
    let mut out = Vec::new();
    let links = e.size(100_000, 5_000);
    let chain = || {
        let mut r = add_one::remote(0);
        for _ in 1..links {
            r = add_one::remote(&r);
        }
        assert_eq!(rustyray::get(&r).unwrap(), links as u64);
    };
    let (ours, raw) = paired(e, links, chain, || {
        floor.tokio.block_on(async {
            let mut previous = tokio::spawn(async { 0u64 });
            for _ in 1..links {
                let before = previous;
                previous = tokio::spawn(async move { before.await.unwrap() + 1 });
            }
            previous.await.unwrap()
        });
    });
    out.push(line(
        "chain of 100k dependent tasks",
        "links",
        ours,
        Some(("chain of tokio tasks awaiting the previous", raw)),
    ));

    let args = e.size(10_000, 1_000);
    let inputs: Vec<ObjectRef<u64>> = (0..args)
        .map(|i| rustyray::put(i as u64).unwrap())
        .collect();
    let ours = rate(e, args, || {
        rustyray::get(&sum_all::remote(inputs.clone())).unwrap();
    });
    let wide = rate(e, args, || {
        let mut task = rustyray::task::TaskBuilder::new("wide");
        let slots: Vec<_> = inputs.iter().map(|r| task.arg(r)).collect();
        let r = task.spawn(move || {
            slots
                .iter()
                .map(|s| Ok(s.get()?))
                .sum::<anyhow::Result<u64>>()
        });
        rustyray::get(&r).unwrap();
    });
    out.push(line("one task with 10k ref arguments", "args", wide, None));
    out.push(line(
        "one task reading 10k refs in a Vec (extra)",
        "refs",
        ours,
        None,
    ));

    let samples = e.size(10_000, 500);
    let mut latencies: Vec<Duration> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            rustyray::get(&nop::remote()).unwrap();
            started.elapsed()
        })
        .collect();
    latencies.sort();
    let mut raw_latencies: Vec<Duration> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            floor.tokio.block_on(floor.tokio.spawn(async {})).unwrap();
            started.elapsed()
        })
        .collect();
    raw_latencies.sort();
    for (p, name) in [(50.0, "get latency p50"), (99.0, "get latency p99")] {
        out.push(Line {
            name: name.to_owned(),
            unit: "µs",
            ours: percentile_us(&latencies, p),
            floor: Some((
                "block_on(spawn) round trip".to_owned(),
                percentile_us(&raw_latencies, p),
            )),
            ray: None,
            higher_is_better: false,
        });
    }
    out
}

/// A memory line: its probe run in a fresh process of this binary (`--memory-probe`), so that
/// memory the allocator kept from earlier workloads cannot hide what the probe allocates.
pub(crate) fn memory_line(name: &str, probe: &str, e: Effort) -> Line {
    let mut command = std::process::Command::new(std::env::current_exe().expect("own path"));
    command.args(["--memory-probe", probe]);
    if e.quick {
        command.arg("--quick");
    }
    let bytes = command
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    Line {
        name: name.to_owned(),
        unit: "bytes",
        ours: bytes,
        floor: None,
        ray: None,
        higher_is_better: false,
    }
}

/// Runs memory probe `probe` and returns its figure: bytes of resident memory per task queued
/// behind a busy CPU (`queued`), or per small object held (`held`: a `put` of a `u64` whose
/// ref is kept; the target is 100 bytes), each on a runtime with one CPU slot.
pub(crate) fn memory_probe(probe: &str, e: Effort) -> f64 {
    let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(1)).unwrap();
    let _guard = rt.enter();
    let n = e.size(1_000_000, 50_000);
    match probe {
        "queued" => {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let rx = parking_lot::Mutex::new(rx);
            let blocker = rustyray::task::TaskBuilder::new("blocker").spawn(move || {
                let _ = rx.lock().recv();
                Ok(())
            });
            let mut queued: Vec<ObjectRef<()>> = Vec::with_capacity(n);
            let before = resident_bytes();
            queued.extend((0..n).map(|_| nop::remote()));
            let after = resident_bytes();
            tx.send(()).unwrap();
            rustyray::get(&blocker).unwrap();
            rustyray::get_all(&queued).unwrap();
            after.saturating_sub(before) as f64 / n as f64
        }
        "held" => {
            // The refs' own vector is made first, so only what each object costs counts.
            let mut held: Vec<ObjectRef<u64>> = Vec::with_capacity(n);
            let before = resident_bytes();
            held.extend((0..n).map(|i| rustyray::put(i as u64).unwrap()));
            let after = resident_bytes();
            assert_eq!(rustyray::get(&held[n - 1]).unwrap(), (n - 1) as u64);
            after.saturating_sub(before) as f64 / n as f64
        }
        other => panic!("no memory probe `{other}`: use queued or held"),
    }
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
