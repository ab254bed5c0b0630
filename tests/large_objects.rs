//! Large objects without copies: `&T` and `Arc<T>` parameters see the stored value itself,
//! `put_arc` stores a shared value as it is, `put_slice` copies into memory kept from freed
//! copies, and by-value parameters still get a copy of an object the caller keeps. Addresses tell a copy from the stored value.

use std::sync::Arc;

use rustyray::{Config, ObjectRef, Runtime};

fn runtime() -> Runtime {
    Runtime::new(Config::default().num_cpus(2)).unwrap()
}

/// Where a vector's elements are: the same for the stored value and a borrow of it.
fn at(v: &[u64]) -> usize {
    v.as_ptr() as usize
}

#[rustyray::remote]
fn borrowed(v: &Vec<u64>, offset: u64) -> (usize, u64) {
    (at(v), v.iter().sum::<u64>() + offset)
}

#[rustyray::remote]
fn shared(v: Arc<Vec<u64>>) -> (usize, u64) {
    (at(&v), v.iter().sum())
}

#[rustyray::remote]
async fn borrowed_async(v: &Vec<u64>, label: &String) -> (usize, String) {
    tokio::task::yield_now().await; // the borrow lives across an await
    (at(v), format!("{label}: {}", v.len()))
}

#[rustyray::remote]
async fn shared_async(v: Arc<Vec<u64>>) -> usize {
    at(&v)
}

#[rustyray::remote]
fn owned(v: Vec<u64>) -> usize {
    at(&v)
}

#[rustyray::remote]
fn sliced(v: &[u64], offset: u64) -> (usize, u64) {
    (at(v), v.iter().sum::<u64>() + offset)
}

#[rustyray::remote]
async fn sliced_async(v: &[f32]) -> f32 {
    tokio::task::yield_now().await; // the borrow lives across an await
    v.iter().sum()
}

#[rustyray::actor]
struct Keeper {
    kept: Vec<Arc<Vec<u64>>>,
}

#[rustyray::actor]
impl Keeper {
    fn new() -> Self {
        Keeper { kept: Vec::new() }
    }

    fn look(&self, v: &Vec<u64>) -> usize {
        at(v)
    }

    fn keep(&mut self, v: Arc<Vec<u64>>) -> usize {
        self.kept.push(v);
        at(self.kept.last().unwrap())
    }

    async fn look_async(&self, v: &Vec<u64>) -> usize {
        at(v)
    }

    fn look_at_slice(&self, v: &[u64]) -> usize {
        at(v)
    }

    fn kept_at(&self) -> Vec<usize> {
        self.kept.iter().map(|v| at(v)).collect()
    }
}

#[test]
fn borrowed_and_shared_parameters_see_the_stored_value_itself() {
    let rt = runtime();
    let _in = rt.enter();
    let data: Vec<u64> = (0..100_000).collect();
    let sum: u64 = data.iter().sum();
    let r = rustyray::put(data).unwrap();
    let stored = at(&rustyray::get_arc(&r).unwrap());

    assert_eq!(
        rustyray::get(&borrowed::remote(&r, 1)).unwrap(),
        (stored, sum + 1)
    );
    assert_eq!(rustyray::get(&shared::remote(&r)).unwrap(), (stored, sum));
    let label = rustyray::put("len".to_string()).unwrap();
    let (seen, text) = rustyray::get(&borrowed_async::remote(&r, &label)).unwrap();
    assert_eq!((seen, text.as_str()), (stored, "len: 100000"));
    assert_eq!(
        rustyray::get(&shared_async::remote(r.clone())).unwrap(),
        stored
    );
    // A by-value parameter of an object the caller keeps gets a copy.
    assert_ne!(rustyray::get(&owned::remote(&r)).unwrap(), stored);
    // A result ref passed on is the stored result too.
    let made = rustyray::put((1..=10).collect::<Vec<u64>>()).unwrap();
    let chained = shared::remote(&made);
    assert_eq!(rustyray::get(&chained).unwrap().1, 55);
}

#[test]
fn slice_parameters_borrow_the_stored_vec() {
    let rt = runtime();
    let _in = rt.enter();
    let data: Vec<u64> = (0..10_000).collect();
    let r = rustyray::put(data.clone()).unwrap();
    let stored = at(&rustyray::get_arc(&r).unwrap());
    let sum: u64 = data.iter().sum();
    // A `&[T]` parameter takes what a `&Vec<T>` one does: refs, values, `Arc`s.
    assert_eq!(
        rustyray::get(&sliced::remote(&r, 1)).unwrap(),
        (stored, sum + 1)
    );
    assert_eq!(
        rustyray::get(&sliced::remote(vec![1u64, 2], 0)).unwrap().1,
        3
    );
    let floats = rustyray::put(vec![0.5f32, 1.5]).unwrap();
    assert_eq!(rustyray::get(&sliced_async::remote(&floats)).unwrap(), 2.0);
    assert_eq!(
        rustyray::get(&sliced_async::remote(Arc::new(vec![1.0f32]))).unwrap(),
        1.0
    );
    let keeper = Keeper::remote();
    assert_eq!(rustyray::get(&keeper.look_at_slice(&r)).unwrap(), stored);
}

#[test]
fn slice_parameters_read_arguments_given_as_bytes() {
    // As a Ray worker or a foreign caller runs a function: from its arguments' postcard bytes.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = format!("{}::sliced", module_path!());
    let args = postcard::to_stdvec(&(vec![1u64, 2, 3], 10u64)).unwrap();
    let out = tokio
        .block_on(rustyray::registry::invoke(&id, &args))
        .unwrap();
    let (_, sum): (usize, u64) = postcard::from_bytes(&out).unwrap();
    assert_eq!(sum, 16);
    // Arguments of another type are refused, as for any parameter.
    let wrong = postcard::to_stdvec(&(vec![String::from("x")], 10u64)).unwrap();
    assert!(tokio
        .block_on(rustyray::registry::invoke(&id, &wrong))
        .is_err());
}

#[test]
fn actor_methods_borrow_and_keep_the_stored_value() {
    let rt = runtime();
    let _in = rt.enter();
    let r = rustyray::put(vec![7u64; 50_000]).unwrap();
    let stored = at(&rustyray::get_arc(&r).unwrap());
    let keeper = Keeper::remote();
    assert_eq!(rustyray::get(&keeper.look(&r)).unwrap(), stored);
    assert_eq!(rustyray::get(&keeper.look_async(&r)).unwrap(), stored);
    assert_eq!(rustyray::get(&keeper.keep(&r)).unwrap(), stored);
    drop(r);
    // The actor keeps the very value after the last ref is gone.
    assert_eq!(rustyray::get(&keeper.kept_at()).unwrap(), vec![stored]);
}

#[test]
fn values_and_arcs_passed_directly_are_not_copied_either() {
    let rt = runtime();
    let _in = rt.enter();
    let mine = Arc::new(vec![3u64; 1000]);
    let (seen, sum) = rustyray::get(&shared::remote(Arc::clone(&mine))).unwrap();
    assert_eq!((seen, sum), (at(&mine), 3000));
    let (_, sum) = rustyray::get(&borrowed::remote(vec![1u64, 2, 3], 0)).unwrap();
    assert_eq!(sum, 6);
    let keeper = Keeper::remote();
    assert_eq!(
        rustyray::get(&keeper.keep(Arc::clone(&mine))).unwrap(),
        at(&mine)
    );
    // An `Arc` may also feed a by-value parameter (it is cloned out of it).
    assert_ne!(
        rustyray::get(&owned::remote(Arc::clone(&mine))).unwrap(),
        at(&mine)
    );
}

#[test]
fn put_arc_stores_the_shared_value_as_it_is() {
    let rt = runtime();
    let _in = rt.enter();
    let weights = Arc::new(vec![5u64; 10_000]);
    let r: ObjectRef<Vec<u64>> = rustyray::put_arc(Arc::clone(&weights)).unwrap();
    assert!(Arc::ptr_eq(&rustyray::get_arc(&r).unwrap(), &weights));
    assert_eq!(
        rustyray::get(&borrowed::remote(&r, 0)).unwrap(),
        (at(&weights), 50_000)
    );
    assert_eq!(rustyray::get(&r).unwrap().len(), 10_000);
}

#[test]
fn put_slice_copies_and_builds_the_next_copy_in_a_freed_ones_memory() {
    let rt = runtime();
    let _in = rt.enter();
    let samples: Vec<u64> = (0..1 << 18).collect(); // 2 MiB: large enough to keep
    let first = rustyray::put_slice(&samples).unwrap();
    let stored = at(&rustyray::get_arc(&first).unwrap());
    assert_ne!(stored, at(&samples), "a copy");
    let expected = samples.iter().sum::<u64>();
    assert_eq!(
        rustyray::get(&borrowed::remote(&first, 0)).unwrap(),
        (stored, expected)
    );
    drop(first);
    let doubled: Vec<u64> = samples.iter().map(|v| v * 2).collect();
    let second = rustyray::put_slice(&doubled).unwrap();
    let value = rustyray::get_arc(&second).unwrap();
    assert_eq!(at(&value), stored, "built in the freed copy's memory");
    assert_eq!(*value, doubled);
    // One still lent out is never reused.
    let third = rustyray::put_slice(&samples).unwrap();
    drop(second);
    assert_ne!(at(&rustyray::get_arc(&third).unwrap()), stored);
    assert_eq!(*value, doubled, "the lent value is untouched");
    assert_eq!(samples.len(), 1 << 18, "the caller keeps its slice");
}

#[test]
fn shared_parameters_run_by_id_from_encoded_arguments() {
    // The path a Ray worker takes: arguments decoded once, then borrowed or shared.
    let rt = runtime();
    let _in = rt.enter();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = concat!(module_path!(), "::borrowed");
    let args = postcard::to_stdvec(&(vec![1u64, 2, 3], 4u64)).unwrap();
    let out = tokio
        .block_on(rustyray::registry::invoke(id, args))
        .unwrap();
    let (_, sum): (usize, u64) = postcard::from_bytes(&out).unwrap();
    assert_eq!(sum, 10);
    let id = concat!(module_path!(), "::shared");
    let args = postcard::to_stdvec(&(vec![1u64, 2],)).unwrap();
    let out = tokio
        .block_on(rustyray::registry::invoke(id, args))
        .unwrap();
    let (_, sum): (usize, u64) = postcard::from_bytes(&out).unwrap();
    assert_eq!(sum, 3);
}

#[rustyray::remote]
fn merge(a: Vec<u64>, b: Vec<u64>) -> (Vec<u64>, usize, usize) {
    let (at_a, at_b) = (at(&a), at(&b));
    let mut out = a;
    out.extend(b);
    (out, at_a, at_b)
}

#[rustyray::remote(max_retries = 2)]
fn owned_retried(v: Vec<u64>) -> usize {
    at(&v)
}

#[test]
fn the_last_ref_moved_into_a_call_is_moved_and_a_kept_one_is_copied() {
    let rt = runtime();
    let _in = rt.enter();
    let a = rustyray::put(vec![1u64; 4096]).unwrap();
    let b = rustyray::put(vec![2u64; 4096]).unwrap();
    let (at_a, at_b) = (
        at(&rustyray::get_arc(&a).unwrap()),
        at(&rustyray::get_arc(&b).unwrap()),
    );
    // `a` moved into the call (its last ref), `b` kept by the caller.
    let merged = merge::remote(a, &b);
    let (out, seen_a, seen_b) = rustyray::get(&merged).unwrap();
    assert_eq!(seen_a, at_a, "the last ref's value is moved in");
    assert_ne!(seen_b, at_b, "a kept ref's value is copied");
    assert_eq!(out.len(), 8192);
    assert_eq!(
        rustyray::get(&b).unwrap(),
        vec![2u64; 4096],
        "the kept object is intact"
    );

    // A value lent out by `get_arc` is copied, even from the last ref.
    let c = rustyray::put(vec![3u64; 4096]).unwrap();
    let lent = rustyray::get_arc(&c).unwrap();
    let (_, seen_c, _) = rustyray::get(&merge::remote(c, vec![0u64])).unwrap();
    assert_ne!(seen_c, at(&lent));

    // With retries left, the argument stays intact for them: copied.
    let d = rustyray::put(vec![4u64; 4096]).unwrap();
    let at_d = at(&rustyray::get_arc(&d).unwrap());
    assert_ne!(rustyray::get(&owned_retried::remote(d)).unwrap(), at_d);
}

#[rustyray::actor]
struct Sink;

#[rustyray::actor]
impl Sink {
    fn new() -> Self {
        Sink
    }

    fn consume(&mut self, v: Vec<u64>) -> usize {
        at(&v)
    }
}

#[test]
fn actor_methods_get_the_last_ref_moved_in_and_a_kept_one_copied() {
    let rt = runtime();
    let _in = rt.enter();
    let sink = Sink::remote();
    let a = rustyray::put(vec![5u64; 4096]).unwrap();
    let at_a = at(&rustyray::get_arc(&a).unwrap());
    assert_ne!(
        rustyray::get(&sink.consume(&a)).unwrap(),
        at_a,
        "kept: copied"
    );
    assert_eq!(
        rustyray::get(&sink.consume(a)).unwrap(),
        at_a,
        "last ref: moved"
    );
}
