//! What porting Ray programs trips on: refs gathered into `Vec<T>` parameters, borrowed actor
//! handles as arguments, and `get_all_arc`.

use std::sync::Arc;

use rustyray::{ActorHandle, Config, Error, ObjectRef, Runtime};

fn runtime() -> Runtime {
    Runtime::new(Config::default().num_cpus(2)).unwrap()
}

#[rustyray::remote]
fn square(x: u64) -> u64 {
    x * x
}

#[rustyray::remote]
fn fails(x: u64) -> anyhow::Result<u64> {
    anyhow::bail!("no square for {x}")
}

/// Takes the values, in order.
#[rustyray::remote]
fn listed(values: Vec<u64>) -> Vec<u64> {
    values
}

#[rustyray::remote]
fn total(values: &Vec<u64>) -> u64 {
    values.iter().sum()
}

#[test]
fn a_vec_parameter_takes_refs_and_gets_the_values_in_order() {
    let rt = runtime();
    let _guard = rt.enter();
    let refs: Vec<ObjectRef<u64>> = (1..=4).map(square::remote).collect();
    assert_eq!(
        rustyray::get(&listed::remote(&refs)).unwrap(),
        [1, 4, 9, 16]
    );
    assert_eq!(rustyray::get(&listed::remote(&refs[1..3])).unwrap(), [4, 9]);
    assert_eq!(rustyray::get(&total::remote(refs.clone())).unwrap(), 30);
    let none: Vec<u64> = rustyray::get(&listed::remote(Vec::<ObjectRef<u64>>::new())).unwrap();
    assert!(none.is_empty());
    // Values still work, and so does one ref to a whole `Vec`.
    assert_eq!(rustyray::get(&listed::remote(vec![7])).unwrap(), [7]);
    let whole = rustyray::put(vec![5u64, 6]).unwrap();
    assert_eq!(rustyray::get(&total::remote(&whole)).unwrap(), 11);
}

#[rustyray::remote]
fn triple(values: [u64; 3]) -> u64 {
    values.iter().sum()
}

#[rustyray::remote]
fn pair(pair: (u64, String)) -> String {
    format!("{} {}", pair.0, pair.1)
}

#[test]
fn arrays_and_tuples_take_refs_too() {
    let rt = runtime();
    let _guard = rt.enter();
    let refs = [square::remote(1), square::remote(2), square::remote(3)];
    assert_eq!(rustyray::get(triple::remote(refs)).unwrap(), 14);
    let named = (
        square::remote(5),
        rustyray::put("apples".to_owned()).unwrap(),
    );
    assert_eq!(rustyray::get(pair::remote(named)).unwrap(), "25 apples");
    assert_eq!(
        rustyray::get(pair::remote((1, "pear".to_owned()))).unwrap(),
        "1 pear"
    );
    let failed = (fails::remote(2), rustyray::put(String::new()).unwrap());
    assert!(rustyray::get(pair::remote(failed)).is_err());
}

#[test]
fn a_failed_element_fails_the_task() {
    let rt = runtime();
    let _guard = rt.enter();
    let refs = vec![square::remote(2), fails::remote(3), square::remote(4)];
    let error = rustyray::get(&listed::remote(&refs)).unwrap_err();
    assert!(matches!(error, Error::TaskFailed { .. }), "{error:?}");
    assert!(error.to_string().contains("no square for 3"), "{error}");
}

#[rustyray::actor]
struct Tally {
    seen: u64,
}

#[rustyray::actor]
impl Tally {
    fn new() -> Self {
        Tally { seen: 0 }
    }
    fn add(&mut self, n: u64) -> u64 {
        self.seen += n;
        self.seen
    }
}

/// Reports to the actor it is given.
#[rustyray::remote]
fn report(tally: ActorHandle<Tally>, n: u64) -> rustyray::Result<u64> {
    rustyray::get(&tally.add(n))
}

#[test]
fn a_borrowed_actor_handle_is_passed_like_a_ref() {
    let rt = runtime();
    let _guard = rt.enter();
    let tally = Tally::remote();
    let reports: Vec<_> = (1..=3).map(|n| report::remote(&tally, n)).collect();
    rustyray::get_all(&reports).unwrap();
    assert_eq!(
        rustyray::get(&tally.add(0)).unwrap(),
        6,
        "the caller's handle still works"
    );
}

#[test]
fn get_all_arc_shares_the_stored_values() {
    let rt = runtime();
    let _guard = rt.enter();
    let shared = Arc::new(vec![1u8; 1 << 16]);
    let refs = vec![
        rustyray::put_arc(Arc::clone(&shared)).unwrap(),
        rustyray::put(vec![2u8; 8]).unwrap(),
    ];
    let values = rustyray::get_all_arc(&refs).unwrap();
    assert!(Arc::ptr_eq(&values[0], &shared), "no copy");
    assert_eq!(*values[1], vec![2u8; 8]);
    let with_failure: Vec<ObjectRef<u64>> = vec![square::remote(1), fails::remote(2)];
    assert!(rustyray::get_all_arc(&with_failure).is_err());
}
