//! `rustyray::util`: `ActorPool` and `Queue`.

use std::time::Duration;

use rustyray::util::{ActorPool, Queue};
use rustyray::{Config, Error, Runtime};

fn runtime() -> Runtime {
    Runtime::new(Config::default().num_cpus(2)).unwrap()
}

#[rustyray::actor]
struct Worker {
    calls: u64,
}

#[rustyray::actor]
impl Worker {
    fn new() -> Self {
        Worker { calls: 0 }
    }

    /// Squares `x` after a pause that makes small numbers finish last.
    async fn slow_square(&mut self, x: u64) -> u64 {
        self.calls += 1;
        tokio::time::sleep(Duration::from_millis(40 - 10 * x)).await;
        x * x
    }

    fn calls(&self) -> u64 {
        self.calls
    }
}

#[test]
fn map_keeps_order_and_map_unordered_returns_all() {
    let rt = runtime();
    let _guard = rt.enter();
    let mut pool = ActorPool::new([Worker::remote(), Worker::remote()]);
    let ordered: Vec<u64> = pool
        .map(|w, x| w.slow_square(x), 0..4)
        .collect::<rustyray::Result<_>>()
        .unwrap();
    assert_eq!(ordered, [0, 1, 4, 9]);
    let mut unordered: Vec<u64> = pool
        .map_unordered(|w, x| w.slow_square(x), 0..4)
        .collect::<rustyray::Result<_>>()
        .unwrap();
    unordered.sort_unstable();
    assert_eq!(unordered, [0, 1, 4, 9]);
    assert!(!pool.has_next());
    assert!(matches!(pool.get_next(), Err(Error::NotFound { .. })));
}

#[test]
fn submit_waits_for_an_idle_actor_and_results_give_it_back() {
    let rt = runtime();
    let _guard = rt.enter();
    let only = Worker::remote();
    let mut pool = ActorPool::new([only.clone()]);
    assert!(pool.has_free());
    for x in 0..3 {
        pool.submit(|w, x| w.slow_square(x), x);
    }
    assert!(!pool.has_free(), "one actor, three calls");
    assert!(pool.pop_idle().is_none());
    assert_eq!(
        rustyray::get(&only.calls()).unwrap(),
        1,
        "one call at a time"
    );
    assert_eq!(pool.get_next().unwrap(), 0);
    assert_eq!(pool.get_next_unordered().unwrap(), 1);
    assert_eq!(pool.get_next().unwrap(), 4);
    assert!(!pool.has_next());
    let idle = pool.pop_idle().expect("the actor is idle again");
    assert!(pool.pop_idle().is_none());
    pool.submit(|w, x| w.slow_square(x), 3);
    assert!(
        matches!(pool.get_next(), Err(Error::InvalidArgument(_))),
        "no actor left"
    );
    pool.push(idle);
    assert_eq!(
        pool.get_next().unwrap(),
        9,
        "the waiting call ran on the pushed actor"
    );
}

#[rustyray::remote]
fn produce(queue: Queue<u64>, n: u64) -> rustyray::Result<()> {
    for i in 0..n {
        queue.put(i)?;
    }
    Ok(())
}

#[test]
fn a_bounded_queue_delivers_every_item_in_order() {
    let rt = runtime();
    let _guard = rt.enter();
    let queue: Queue<u64> = Queue::new(3).unwrap();
    let done = produce::remote(queue.clone(), 200);
    let got: Vec<u64> = (0..200).map(|_| queue.get().unwrap()).collect();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    rustyray::get(&done).unwrap();
    assert!(queue.is_empty().unwrap());
}

#[test]
fn nowait_and_timeouts_fail_when_full_or_empty() {
    let rt = runtime();
    let _guard = rt.enter();
    let queue: Queue<String> = Queue::new(2).unwrap();
    assert_eq!(queue.get_nowait(), Err(Error::QueueEmpty));
    assert_eq!(
        queue.get_timeout(Duration::from_millis(50)),
        Err(Error::QueueEmpty)
    );
    queue.put_nowait("a".into()).unwrap();
    queue.put("b".into()).unwrap();
    assert_eq!(queue.len().unwrap(), 2);
    assert_eq!(
        queue.put_nowait("c".into()),
        Err(Error::QueueFull { capacity: 2 })
    );
    let full = queue.put_timeout("c".into(), Duration::from_millis(50));
    assert!(matches!(full, Err(Error::QueueFull { .. })), "{full:?}");
    assert!(full.unwrap_err().to_string().contains("at most 2 items"));
    assert_eq!(queue.get().unwrap(), "a");
    queue
        .put_timeout("c".into(), Duration::from_secs(30))
        .unwrap();
    assert_eq!(queue.get_nowait().unwrap(), "b");
    assert_eq!(queue.get_nowait().unwrap(), "c");
    let unbounded: Queue<u8> = Queue::new(0).unwrap();
    for i in 0..100 {
        unbounded.put_nowait(i).unwrap();
    }
    assert_eq!(unbounded.len().unwrap(), 100);
}

#[test]
fn async_puts_and_gets_wait_without_a_thread() {
    let rt = runtime();
    let _guard = rt.enter();
    let queue: Queue<u32> = Queue::new(1).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tokio.block_on(async {
        // The get waits for the put, in the same thread.
        let get = queue.get_async();
        let put = queue.put_async(7);
        let (got, put) = futures_util::future::join(get, put).await;
        assert_eq!((got, put), (Ok(7), Ok(())));
    });
}
