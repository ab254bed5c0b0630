//! Several returns: `num_returns = N` splits a task's tuple into N objects, each freed on its
//! own; a failure or a cancel fails all N.

use rustyray::{Config, Error, Runtime};

fn runtime() -> Runtime {
    Runtime::new(Config::default().num_cpus(2).resource("gate", 1.0)).unwrap()
}

#[rustyray::remote(num_returns = 2)]
fn divide(a: u64, b: u64) -> (u64, u64) {
    (a / b, a % b)
}

#[rustyray::remote(num_returns = 3)]
async fn describe(text: String) -> anyhow::Result<(String, usize, bool)> {
    if text.is_empty() {
        anyhow::bail!("nothing to describe");
    }
    Ok((text.to_uppercase(), text.len(), text.contains(' ')))
}

#[rustyray::remote(num_returns = 2)]
fn explode() -> (u64, u64) {
    panic!("no values today")
}

/// The vector, and where its elements were when the task returned them.
#[rustyray::remote(num_returns = 2)]
fn make(n: usize) -> (Vec<u64>, usize) {
    let v = vec![7u64; n];
    let at = v.as_ptr() as usize;
    (v, at)
}

#[rustyray::remote]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[rustyray::remote(num_returns = 2, resources(gate = 1.0))]
fn gated() -> (u64, u64) {
    (1, 2)
}

#[test]
fn each_field_is_an_object_of_its_own_and_feeds_other_tasks() {
    let rt = runtime();
    let _in = rt.enter();
    let (q, r) = divide::remote(17, 5);
    assert_eq!(
        (rustyray::get(&q).unwrap(), rustyray::get(&r).unwrap()),
        (3, 2)
    );
    assert_eq!(rustyray::get(&add::remote(&q, r)).unwrap(), 5);
    let (upper, len, spaced) = describe::remote("two words".to_string());
    assert_eq!(rustyray::get(&upper).unwrap(), "TWO WORDS");
    assert_eq!(rustyray::get(&len).unwrap(), 9);
    assert!(rustyray::get(&spaced).unwrap());
    // The options path gives the same.
    let (q, _) = divide::options().name("divide-named").remote(9, 2);
    assert_eq!(rustyray::get(&q).unwrap(), 4);
}

#[test]
fn a_failure_fails_every_part_with_the_tasks_error() {
    let rt = runtime();
    let _in = rt.enter();
    let (a, b, c) = describe::remote(String::new());
    for message in [
        rustyray::get(&a).unwrap_err().to_string(),
        rustyray::get(&b).unwrap_err().to_string(),
        rustyray::get(&c).unwrap_err().to_string(),
    ] {
        assert!(message.contains("nothing to describe"), "{message}");
    }
    let (x, y) = explode::remote();
    assert!(matches!(rustyray::get(&x), Err(Error::TaskFailed { .. })));
    assert!(rustyray::get(&y)
        .unwrap_err()
        .to_string()
        .contains("no values today"));
}

#[test]
fn the_fields_are_moved_into_their_objects_and_freed_on_their_own() {
    let rt = runtime();
    let _in = rt.enter();
    let objects_before = rt.stats().objects;
    let (v, where_at) = make::remote(100_000);
    let at = rustyray::get(&where_at).unwrap();
    drop(where_at);
    assert_eq!(
        rustyray::get_arc(&v).unwrap().as_ptr() as usize,
        at,
        "the vector the task returned, not a copy"
    );
    assert_eq!(
        rt.stats().objects,
        objects_before + 1,
        "the vector's object only"
    );
    drop(v);
    assert_eq!(rt.stats().objects, objects_before, "freed on its own");
}

#[test]
fn cancelling_any_part_cancels_the_task_and_fails_them_all() {
    let rt = runtime();
    let _in = rt.enter();
    let hold = gated::options().remote(); // takes the gate
    let (a, b) = gated::remote(); // waits for it
    assert!(rustyray::cancel(&b));
    assert!(matches!(rustyray::get(&a), Err(Error::Cancelled { .. })));
    assert!(matches!(rustyray::get(&b), Err(Error::Cancelled { .. })));
    assert_eq!(rustyray::get(&hold.0).unwrap(), 1);
}

#[rustyray::actor]
struct Stats {
    seen: Vec<u64>,
}

#[rustyray::actor]
impl Stats {
    fn new() -> Self {
        Stats { seen: Vec::new() }
    }

    #[rustyray(num_returns = 2)]
    fn add(&mut self, x: u64) -> (u64, usize) {
        self.seen.push(x);
        (self.seen.iter().sum(), self.seen.len())
    }

    #[rustyray(num_returns = 2)]
    async fn min_max(&self) -> anyhow::Result<(u64, u64)> {
        match (self.seen.iter().min(), self.seen.iter().max()) {
            (Some(min), Some(max)) => Ok((*min, *max)),
            _ => anyhow::bail!("nothing seen yet"),
        }
    }
}

#[test]
fn actor_methods_return_several_objects_too() {
    let rt = runtime();
    let _in = rt.enter();
    let stats = Stats::remote();
    let (min, max) = stats.min_max();
    assert!(rustyray::get(&min)
        .unwrap_err()
        .to_string()
        .contains("nothing seen yet"));
    assert!(rustyray::get(&max)
        .unwrap_err()
        .to_string()
        .contains("nothing seen yet"));
    stats.add(5);
    let (sum, count) = stats.add(3);
    assert_eq!(
        (rustyray::get(&sum).unwrap(), rustyray::get(&count).unwrap()),
        (8, 2)
    );
    let (min, max) = stats.min_max();
    assert_eq!(
        (rustyray::get(&min).unwrap(), rustyray::get(&max).unwrap()),
        (3, 5)
    );
}

// ---- num_returns(n) per call, on a function returning a Vec ------------------------------------

/// Ray's map-reduce `map`: one partition per reducer, as many as the caller asks for.
#[rustyray::remote]
fn partition(words: Vec<String>, partitions: usize) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); partitions];
    for word in words {
        let at = word.len() % partitions;
        out[at].push(word);
    }
    out
}

#[rustyray::remote]
fn count(words: Vec<String>) -> usize {
    words.len()
}

#[rustyray::remote(resources(gate = 1.0))]
fn gated_vec(n: usize) -> Vec<usize> {
    (0..n).collect()
}

#[test]
fn num_returns_per_call_splits_a_vec_into_as_many_objects() {
    let rt = runtime();
    let _in = rt.enter();
    let words: Vec<String> = (0..1000).map(|i| "x".repeat(i % 37 + 1)).collect();
    for n in [1, 10, 100] {
        let parts = partition::options().num_returns(n).remote(words.clone(), n);
        assert_eq!(parts.len(), n);
        // Each part is an object of its own, usable as an argument.
        let counts: Vec<_> = parts.iter().map(count::remote).collect();
        let total: usize = rustyray::get_all(&counts).unwrap().into_iter().sum();
        assert_eq!(total, 1000, "n = {n}");
        let first: Vec<String> = rustyray::get(&parts[0]).unwrap();
        assert!(first.iter().all(|w| w.len() % n == 0), "n = {n}");
    }
}

#[test]
fn a_vec_of_another_length_fails_every_part_saying_so() {
    let rt = runtime();
    let _in = rt.enter();
    let parts = partition::options()
        .num_returns(3)
        .remote(vec!["a".to_string()], 2);
    assert_eq!(parts.len(), 3);
    for part in &parts {
        match rustyray::get(part) {
            Err(Error::TaskFailed {
                function, message, ..
            }) => {
                assert_eq!(function, "partition");
                assert!(message.contains("returned 2 values"), "{message}");
                assert!(message.contains("num_returns(3)"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn cancelling_a_part_of_a_per_call_split_cancels_the_task() {
    let rt = runtime();
    let _in = rt.enter();
    let hold = gated_vec::options().num_returns(2).remote(2); // takes the gate
    let waiting = gated_vec::options().num_returns(3).remote(3); // waits for it
    assert!(rustyray::cancel(&waiting[1]));
    for part in &waiting {
        assert!(matches!(rustyray::get(part), Err(Error::Cancelled { .. })));
    }
    assert_eq!(rustyray::get(&hold[1]).unwrap(), 1);
}
