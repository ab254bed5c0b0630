//! The remote functions and actors of the `ray-cluster` example, shared by its driver (the
//! binary and the tests) and by Ray's workers, which load this crate's `cdylib`.

use serde::{Deserialize, Serialize};

// The root crate's streaming pipeline and its ports of Ray's tutorials, compiled into this
// crate too, so that Ray's workers find their functions in its cdylib: the `ported` binary
// runs each on the embedded runtime and on the cluster, and checks that the results agree.
// (Each file's `main` is for `cargo run --example`.)
#[allow(dead_code)]
#[path = "../../streaming_pipeline.rs"]
pub mod streaming_pipeline;

#[allow(dead_code)]
#[path = "../../ray_docs/monte_carlo_pi.rs"]
pub mod monte_carlo_pi;

#[allow(dead_code)]
#[path = "../../ray_docs/map_reduce.rs"]
pub mod map_reduce;

#[allow(dead_code)]
#[path = "../../ray_docs/model_selection.rs"]
pub mod model_selection;

/// The square of `x`.
#[rustyray::remote]
pub fn square(x: u64) -> u64 {
    x * x
}

/// The sum of `values`.
#[rustyray::remote]
pub fn sum(values: Vec<u64>) -> u64 {
    values.iter().sum()
}

/// The sum of `values`, borrowed from the object store (the benchmark's large-array task).
#[rustyray::remote]
pub fn total(values: &Vec<u64>) -> u64 {
    values.iter().sum()
}

/// The sum of `values` as a slice: the same task as [`total`], with no copy of its own (on a
/// Ray worker the slice is read where Ray's buffer holds it; embedded, where the stored `Vec`
/// holds it).
#[rustyray::remote]
pub fn total_in_place(values: &[u64]) -> u64 {
    values.iter().sum()
}

/// The first of `pair` plus its name's length, plus the sum of `three`: a tuple and an array
/// parameter, which take refs gathered from several objects.
#[rustyray::remote]
pub fn pair_and_three(pair: (u64, String), three: [u64; 3]) -> u64 {
    pair.0 + pair.1.len() as u64 + three.iter().sum::<u64>()
}

/// `a + b`, callable from Python with JSON arguments (see docs/ray.md).
#[rustyray::remote]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// A word count, to show structured values crossing from and to Python as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Count {
    /// The word.
    pub word: String,
    /// How often it occurs.
    pub n: u32,
}

/// Counts the words of `text`, most frequent first (ties by word).
#[rustyray::remote]
pub fn count_words(text: String) -> Vec<Count> {
    let mut counts = std::collections::BTreeMap::<String, u32>::new();
    for word in text.split_whitespace() {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut out: Vec<Count> = counts
        .into_iter()
        .map(|(word, n)| Count { word, n })
        .collect();
    out.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.word.cmp(&b.word)));
    out
}

/// Fails when `x` is odd, with a cause.
#[rustyray::remote]
pub fn check_even(x: u64) -> anyhow::Result<u64> {
    if x % 2 == 1 {
        let cause = anyhow::anyhow!("{x} is odd");
        return Err(cause.context("check_even refused its input"));
    }
    Ok(x)
}

/// Adds one; used downstream of a failure to show the error travel.
/// The sum of `values` (borrowed), scaled by `scale` (shared), plus the length of `tail`
/// (taken by value, moved in when it can be).
#[rustyray::remote]
pub fn weighted_sum(values: &Vec<u64>, scale: std::sync::Arc<u64>, tail: Vec<u64>) -> u64 {
    values.iter().sum::<u64>() * *scale + tail.len() as u64
}

/// The numbers below `n` dealt into `parts` piles (a map step of Ray's map-reduce, whose
/// caller sets `num_returns(parts)` to get one object per pile).
#[rustyray::remote]
pub fn deal(n: u64, parts: usize) -> Vec<Vec<u64>> {
    let mut piles = vec![Vec::new(); parts];
    for i in 0..n {
        piles[i as usize % parts].push(i);
    }
    piles
}

/// Quotient and remainder, each its own object.
#[rustyray::remote(num_returns = 2)]
pub fn div_mod(a: u64, b: u64) -> (u64, u64) {
    (a / b, a % b)
}

/// The numbers below `n`, one object each as they are made.
#[rustyray::remote(streaming)]
pub fn numbers(n: u64) -> impl Iterator<Item = u64> {
    0..n
}

/// Makes `first`, then waits for `signal` before it ends: its consumer uses the first item
/// while it still runs.
#[rustyray::remote(streaming)]
pub fn first_then_wait(
    first: u64,
    signal: rustyray::ActorHandle<Signal>,
) -> impl Iterator<Item = u64> {
    std::iter::once(first).chain(std::iter::from_fn(move || {
        let _ = rustyray::get(&signal.wait());
        None
    }))
}

/// `0..n`, counting each item in `made` before it is handed over (so a test sees how far the
/// producer ran ahead of its consumer).
#[rustyray::remote(streaming)]
pub fn counted(
    made: rustyray::ActorHandle<Counter>,
    n: u64,
) -> impl Iterator<Item = rustyray::Result<u64>> {
    (0..n).map(move |i| {
        rustyray::get(&made.add(1))?;
        Ok(i)
    })
}

/// `0..n`, then an item that fails.
#[rustyray::remote(streaming)]
pub fn fails_after(n: u64) -> impl Iterator<Item = Result<u64, String>> {
    (0..=n).map(move |i| match i < n {
        true => Ok(i),
        false => Err(format!("item {i} could not be made")),
    })
}

/// The doubles of `0..n`, from async code.
#[rustyray::remote(streaming)]
pub async fn doubles(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| 2 * i)
}

#[rustyray::remote]
pub fn plus_one(x: u64) -> u64 {
    x + 1
}

/// Submits `n` squares from inside a task and sums them: nested tasks, run by Ray too.
#[rustyray::remote]
pub fn sum_of_squares(n: u64) -> rustyray::Result<u64> {
    let refs: Vec<_> = (1..=n).map(square::remote).collect();
    Ok(rustyray::get_all(&refs)?.iter().sum())
}

/// Sleeps for `ms` milliseconds, then returns it.
#[rustyray::remote]
pub fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// Which node ran the task: the `RUSTYRAY_NODE_LABEL` its Ray node was started with.
#[rustyray::remote]
pub fn node_label() -> String {
    std::env::var("RUSTYRAY_NODE_LABEL").unwrap_or_else(|_| "unlabelled".to_owned())
}

/// A counter that lives on one worker.
#[rustyray::actor]
pub struct Counter {
    count: u64,
}

#[rustyray::actor]
impl Counter {
    /// Starts at `start`.
    pub fn new(start: u64) -> Self {
        Counter { count: start }
    }

    /// Adds `n`; returns the new count.
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.count
    }

    /// Adds the sum of `values` (borrowed) and `bonus` (shared); returns the new count.
    pub fn add_all(&mut self, values: &Vec<u64>, bonus: std::sync::Arc<u64>) -> u64 {
        self.count += values.iter().sum::<u64>() + *bonus;
        self.count
    }

    /// Fails on purpose.
    pub fn fail(&self) -> anyhow::Result<u64> {
        anyhow::bail!("the counter was asked to fail at {}", self.count)
    }

    /// The next `n` counts, one object each, as it counts them.
    #[rustyray(streaming)]
    pub fn count_on(&mut self, n: u64) -> impl Iterator<Item = u64> + '_ {
        (0..n).map(|_| {
            self.count += 1;
            self.count
        })
    }

    /// The count and its parity, each its own object.
    #[rustyray(num_returns = 2)]
    pub fn count_and_parity(&self) -> (u64, String) {
        let parity = if self.count.is_multiple_of(2) {
            "even"
        } else {
            "odd"
        };
        (self.count, parity.to_owned())
    }
}

/// Adds `n` to the counter it is handed (an actor handle as an argument) and returns the
/// counter's new count: the pipelining pattern, a worker reporting to a shared actor.
#[rustyray::remote]
pub fn add_through(counter: rustyray::ActorHandle<Counter>, n: u64) -> rustyray::Result<u64> {
    rustyray::get(&counter.add(n))
}

/// Actor handles inside a value.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
pub struct Counters {
    /// The counters.
    pub all: Vec<rustyray::ActorHandle<Counter>>,
}

/// Adds `n` to every counter of `counters`; returns their new counts.
#[rustyray::remote]
pub fn add_to_all(counters: Counters, n: u64) -> rustyray::Result<Vec<u64>> {
    let calls: Vec<_> = counters.all.iter().map(|c| c.add(n)).collect();
    rustyray::get_all(&calls)
}

/// An actor that holds another's handle, given to its constructor, and takes more as method
/// arguments.
#[rustyray::actor]
pub struct Relay {
    to: rustyray::ActorHandle<Counter>,
}

#[rustyray::actor]
impl Relay {
    /// Relays to `to`.
    pub fn new(to: rustyray::ActorHandle<Counter>) -> Self {
        Relay { to }
    }

    /// Adds `n` to the counter it holds; returns its new count.
    pub fn relay(&self, n: u64) -> rustyray::Result<u64> {
        rustyray::get(&self.to.add(n))
    }

    /// Adds `n` to `other`; returns its new count.
    pub fn relay_to(&self, other: rustyray::ActorHandle<Counter>, n: u64) -> rustyray::Result<u64> {
        rustyray::get(&other.add(n))
    }

    /// The handle it holds, as a result.
    pub fn target(&self) -> rustyray::ActorHandle<Counter> {
        self.to.clone()
    }
}

/// Refs inside a value.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
pub struct RefsInside {
    /// The refs.
    pub all: Vec<rustyray::ObjectRef<u64>>,
}

/// An actor that stores objects of its own (numbered by its own runtime) and reads refs it is
/// handed inside a value.
#[rustyray::actor]
pub struct Keeper {
    kept: Vec<rustyray::ObjectRef<u64>>,
}

#[rustyray::actor]
impl Keeper {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Keeper { kept: Vec::new() }
    }

    /// Puts `n` values of its own (1000, 1001, ...) and keeps their refs; how many it keeps.
    pub fn keep(&mut self, n: u64) -> rustyray::Result<usize> {
        for i in 0..n {
            self.kept.push(rustyray::put(1000 + i)?);
        }
        Ok(self.kept.len())
    }

    /// The sum of the values `refs` name.
    pub fn sum_of(&self, refs: RefsInside) -> rustyray::Result<u64> {
        Ok(rustyray::get_all(&refs.all)?.iter().sum())
    }

    /// Keeps the refs of `refs` beside its own; how many it keeps.
    pub fn hold(&mut self, refs: RefsInside) -> usize {
        self.kept.extend(refs.all);
        self.kept.len()
    }

    /// The sum of every value it keeps.
    pub fn sum_kept(&self) -> rustyray::Result<u64> {
        Ok(rustyray::get_all(&self.kept)?.iter().sum())
    }
}

/// The sum of the values the refs inside `refs` name, read in a task.
#[rustyray::remote]
pub fn sum_inside(refs: RefsInside) -> rustyray::Result<u64> {
    Ok(rustyray::get_all(&refs.all)?.iter().sum())
}

/// Hands `refs` on to another task, which reads them.
#[rustyray::remote]
pub fn pass_on(refs: RefsInside) -> rustyray::Result<u64> {
    rustyray::get(&sum_inside::remote(refs))
}

/// Refs to objects this task makes: `n` values put (`base`, `base + 1`, ...) and the square of
/// `base` computed by a task of its own.
#[rustyray::remote]
pub fn make_refs(base: u64, n: u64) -> rustyray::Result<RefsInside> {
    let mut all = (0..n)
        .map(|i| rustyray::put(base + i))
        .collect::<rustyray::Result<Vec<_>>>()?;
    all.push(square::remote(base));
    Ok(RefsInside { all })
}

/// Ray's signal actor: waiters wait until another call sends the signal. A concurrent actor:
/// its `&self` async calls run side by side, so `send` runs while the waiters wait.
#[rustyray::actor]
pub struct Signal {
    sent: tokio::sync::watch::Sender<bool>,
}

#[rustyray::actor(concurrent)]
impl Signal {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Signal {
            sent: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Sends the signal: every waiter, now or later, goes on.
    pub async fn send(&self) {
        self.sent.send_replace(true);
    }

    /// Waits until the signal is sent.
    pub async fn wait(&self) {
        let mut sent = self.sent.subscribe();
        let _ = sent.wait_for(|sent| *sent).await;
    }

    /// How many calls wait now: a sync `&self` method, which runs beside them.
    pub fn waiting(&self) -> usize {
        self.sent.receiver_count()
    }
}

/// Ray's threaded actor: sync `&self` methods run side by side, up to `max_concurrency`.
#[rustyray::actor]
pub struct Meeting {
    parties: std::sync::Barrier,
}

#[rustyray::actor(concurrent, max_restarts = 1)]
impl Meeting {
    /// A meeting of `parties` calls.
    pub fn new(parties: usize) -> Self {
        Meeting {
            parties: std::sync::Barrier::new(parties),
        }
    }

    /// Returns once `parties` calls are inside together.
    pub fn meet(&self, who: u32) -> u32 {
        self.parties.wait();
        who
    }

    /// Panics (the class default restarts the actor once).
    pub fn crash(&mut self) -> u32 {
        panic!("the meeting was asked to crash")
    }

    /// Sends `started`, loops until its call is cancelled, then sends `noticed` (`&mut self`:
    /// the calls after it wait for it).
    pub fn until_cancelled(
        &mut self,
        started: rustyray::ActorHandle<Signal>,
        noticed: rustyray::ActorHandle<Signal>,
    ) -> rustyray::Result<u32> {
        rustyray::get(&started.send())?;
        while !rustyray::is_cancelled() {
            std::thread::sleep(std::time::Duration::from_millis(5)); // a step of work
        }
        rustyray::get(&noticed.send())?;
        Ok(1)
    }
}

/// Waits for `signal`, then returns `n`: a task that waits on a signal actor it was handed.
#[rustyray::remote]
pub fn after_signal(signal: rustyray::ActorHandle<Signal>, n: u64) -> rustyray::Result<u64> {
    rustyray::get(&signal.wait())?;
    Ok(n)
}

/// Sends `started`, then works in small steps until it sees its cancel (at most `max_ms`),
/// and sends `noticed` when it does: whether it saw it.
#[rustyray::remote]
pub fn works_until_cancelled(
    started: rustyray::ActorHandle<Signal>,
    noticed: rustyray::ActorHandle<Signal>,
    max_ms: u64,
) -> rustyray::Result<bool> {
    rustyray::get(&started.send())?;
    let begun = std::time::Instant::now();
    while begun.elapsed() < std::time::Duration::from_millis(max_ms) {
        if rustyray::is_cancelled() {
            rustyray::get(&noticed.send())?;
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(5)); // a step of work
    }
    Ok(false)
}

/// Adds 1 to `ran` (once `input` exists): a record that its body ran. Returns the input.
#[rustyray::remote]
pub fn record_run(input: u64, ran: rustyray::ActorHandle<Counter>) -> rustyray::Result<u64> {
    rustyray::get(&ran.add(1))?;
    Ok(input)
}

/// Submits a child that waits (through an object) for `gate`, then records in `ran` that it
/// ran; sends `submitted`, and returns the child's result.
#[rustyray::remote]
pub fn parent_of_gated(
    gate: rustyray::ActorHandle<Signal>,
    ran: rustyray::ActorHandle<Counter>,
    submitted: rustyray::ActorHandle<Signal>,
) -> rustyray::Result<u64> {
    let opened = after_signal::remote(gate, 1);
    let child = record_run::remote(&opened, ran);
    rustyray::get(&submitted.send())?;
    rustyray::get(&child)
}

/// Puts `0..n` into `queue`, waiting while it is full; how many it put.
#[rustyray::remote]
pub fn produce(queue: rustyray::util::Queue<u64>, n: u64) -> rustyray::Result<u64> {
    for i in 0..n {
        queue.put(i)?;
    }
    Ok(n)
}

/// A work queue: hands out its items one at a time (Ray's pipelining pattern).
#[rustyray::actor]
pub struct WorkQueue {
    items: Vec<u64>,
}

#[rustyray::actor]
impl WorkQueue {
    /// A queue of `items`, handed out in order.
    pub fn new(items: Vec<u64>) -> Self {
        let mut items = items;
        items.reverse();
        WorkQueue { items }
    }

    /// The next item, or `None` once the queue is empty.
    pub fn take(&mut self) -> Option<u64> {
        self.items.pop()
    }
}

/// A worker that takes items from a queue it was handed until the queue is empty.
#[rustyray::actor]
pub struct QueueWorker {
    queue: rustyray::ActorHandle<WorkQueue>,
}

#[rustyray::actor]
impl QueueWorker {
    /// A worker on `queue`.
    pub fn new(queue: rustyray::ActorHandle<WorkQueue>) -> Self {
        QueueWorker { queue }
    }

    /// Squares and adds up items from the queue until it is empty; the items it took.
    pub fn drain(&self) -> rustyray::Result<Vec<u64>> {
        let mut took = Vec::new();
        // The next request is in flight while this item is worked on.
        let mut next = self.queue.take();
        while let Some(item) = rustyray::get(&next)? {
            next = self.queue.take();
            took.push(item * item);
        }
        Ok(took)
    }
}

/// An actor with concurrency groups: `ping` and `release` (group `io`) answer while `hold`
/// keeps the default group busy until released.
#[rustyray::actor]
pub struct Grouped {
    released: tokio::sync::watch::Sender<bool>,
}

#[rustyray::actor(concurrency_groups(io = 2))]
impl Grouped {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Grouped {
            released: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Waits until released; returns 7.
    pub async fn hold(&self) -> u64 {
        let mut released = self.released.subscribe();
        let _ = released.wait_for(|released| *released).await;
        7
    }

    #[rustyray(concurrency_group = "io")]
    pub async fn ping(&self) -> u64 {
        1
    }

    /// Lets every `hold` go on.
    #[rustyray(concurrency_group = "io")]
    pub async fn release(&self) {
        self.released.send_replace(true);
    }
}

/// Failures on purpose, for the backend suite: panics, errors, processes that exit, and tries
/// counted in a file (a task's tries may run in different worker processes).
pub mod probe {
    use std::io::Write;

    /// Panics.
    #[rustyray::remote]
    pub fn panics() -> u64 {
        panic!("the probe panicked on purpose")
    }

    /// Ends the worker process that runs it.
    #[rustyray::remote]
    pub fn exits_its_process() -> u64 {
        std::process::exit(3)
    }

    /// Records a try in the file at `path`, then fails (`Err`, or a panic if `panic`) while
    /// fewer than `failures` tries came before it; returns which try succeeded.
    #[rustyray::remote]
    pub fn flaky(path: String, failures: u64, panic: bool) -> anyhow::Result<u64> {
        let tries = record_try(&path);
        if tries <= failures {
            if panic {
                panic!("try {tries} panicked on purpose");
            }
            anyhow::bail!("try {tries} failed on purpose");
        }
        Ok(tries)
    }

    /// Records a try in the file at `path`, then ends its worker process.
    #[rustyray::remote]
    pub fn record_then_exit(path: String) -> u64 {
        record_try(&path);
        std::process::exit(3)
    }

    /// Appends a line to the file at `path`; returns how many lines it has now.
    pub fn record_try(path: &str) -> u64 {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the tries file");
        writeln!(file, "try").expect("record a try");
        tries(path)
    }

    /// How many tries the file at `path` records.
    pub fn tries(path: &str) -> u64 {
        std::fs::read_to_string(path).map_or(0, |s| s.lines().count() as u64)
    }

    /// An actor whose methods fail in every way an actor can.
    #[rustyray::actor]
    pub struct Fragile {
        n: u64,
    }

    #[rustyray::actor]
    impl Fragile {
        /// Starts at `n`.
        pub fn new(n: u64) -> Self {
            Fragile { n }
        }

        /// Adds `by`; returns the new value.
        pub fn add(&mut self, by: u64) -> u64 {
            self.n += by;
            self.n
        }

        /// Adds `by` (a half-done update), then panics.
        pub fn add_then_panic(&mut self, by: u64) -> u64 {
            self.n += by;
            panic!("the actor panicked on purpose at {}", self.n)
        }

        /// Ends the actor's process.
        pub fn exit_process(&mut self) -> Vec<u8> {
            std::process::exit(3)
        }
    }
}
