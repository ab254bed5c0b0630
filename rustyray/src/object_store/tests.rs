//! The object store's unit tests.

use std::fmt;
use std::sync::atomic::AtomicUsize;

use super::object::{Held, Scalar};
use super::*;

#[test]
fn unit_objects_hold_no_value_and_read_and_encode_like_others() {
    let (a, b) = (Object::new(()), Object::new(()));
    assert!(
        matches!(
            (&a.value, &b.value),
            (
                Held::Inline(Scalar::Unit(())),
                Held::Inline(Scalar::Unit(()))
            )
        ),
        "no allocation per unit object"
    );
    assert_eq!(a.size(), 0);
    assert!(a.to_bytes().unwrap().is_empty());
    let store = ObjectStore::for_tests(8);
    let cell = store.insert_ready(a).unwrap();
    cell.read::<()>().unwrap().unwrap();
    cell.read_value::<()>().unwrap().unwrap();
    for mismatch in [
        cell.read::<u8>().map(|r| r.map(drop)),
        cell.read_value::<u8>().map(|r| r.map(drop)),
    ] {
        assert!(
            matches!(
                &mismatch,
                Some(Err(Error::TypeMismatch { found: "()", .. }))
            ),
            "{mismatch:?}"
        );
    }
    // Sizes of bulk types are still counted in O(1), and exactly.
    for (object, encoded) in [
        (
            Object::new(vec![7u8; 300]),
            postcard::to_stdvec(&vec![7u8; 300]).unwrap(),
        ),
        (
            Object::new("hé".to_string()),
            postcard::to_stdvec("hé").unwrap(),
        ),
        (
            Object::new(vec![1.5f64; 3]),
            postcard::to_stdvec(&vec![1.5f64; 3]).unwrap(),
        ),
        (Object::new(300u64), postcard::to_stdvec(&300u64).unwrap()),
    ] {
        assert_eq!(object.size(), encoded.len(), "{object:?}");
    }
}

#[test]
fn small_plain_values_are_copied_out_and_others_shared() {
    let store = ObjectStore::for_tests(9);
    // A small plain value that is not a primitive: shared, but copied out.
    let small = store.insert_ready(Object::new((7u32, 41u32))).unwrap();
    let stored = |cell: &Arc<Cell>| match &cell.slot.lock().entry {
        Entry::Ready(object) => object.holders(),
        _ => unreachable!("ready"),
    };
    assert_eq!(small.read_value::<(u32, u32)>().unwrap().unwrap(), (7, 41));
    assert_eq!(
        stored(&small),
        1,
        "copied under the lock: the count never moved"
    );
    assert!(matches!(
        small.read_value::<u32>(),
        Some(Err(Error::TypeMismatch { .. }))
    ));
    let text = store.insert_ready(Object::new("hi".to_string())).unwrap();
    assert_eq!(text.read_value::<String>().unwrap().unwrap(), "hi");
    assert!(matches!(
        text.read_value::<Vec<u8>>(),
        Some(Err(Error::TypeMismatch { .. }))
    ));
    let pending = store.insert_pending(None);
    assert!(pending.read_value::<u64>().is_none());
    pending.complete(Err(Error::Cancelled {
        function: "f".into(),
    }));
    assert!(matches!(
        pending.read_value::<u64>(),
        Some(Err(Error::Cancelled { .. }))
    ));
}

#[test]
fn primitives_are_held_inline_and_read_encode_and_mismatch_like_others() {
    fn check<T: Value + Clone + PartialEq + fmt::Debug>(value: T) {
        let object = Object::new(value.clone());
        assert!(matches!(object.value, Held::Inline(_)), "{value:?} inline");
        let encoded = postcard::to_stdvec(&value).unwrap();
        assert_eq!(object.to_bytes().unwrap(), encoded, "{value:?}");
        assert_eq!(object.size(), encoded.len(), "{value:?}");
        let cell = ObjectStore::for_tests(11).insert_ready(object).unwrap();
        assert_eq!(cell.read_value::<T>().unwrap().unwrap(), value);
        assert_eq!(*cell.read::<T>().unwrap().unwrap(), value);
        let found = std::any::type_name::<T>();
        assert!(
            matches!(cell.read_value::<String>(), Some(Err(Error::TypeMismatch { found: f, .. })) if f == found),
            "{value:?}"
        );
        assert!(matches!(
            cell.read::<()>(),
            Some(Err(Error::TypeMismatch { .. }))
        ));
    }
    check(7u8);
    check(300u16);
    check(70_000u32);
    check(u64::MAX);
    check(12usize);
    check(-7i8);
    check(-300i16);
    check(i32::MIN);
    check(-1i64);
    check(isize::MAX);
    check(1.5f32);
    check(-2.25f64);
    check(true);
    check('é');
    // Not a primitive: shared.
    assert!(matches!(Object::new(7u128).value, Held::Shared { .. }));
}

#[test]
fn ready_objects_round_trip_typed_and_serialized() {
    let store = ObjectStore::for_tests(7);
    let object = Object::new(vec![1u32, 2, 3]);
    let cell = store.insert_ready(object.clone()).unwrap();
    assert!(matches!(cell.state(), State::Ready));
    assert_eq!(*cell.read::<Vec<u32>>().unwrap().unwrap(), vec![1, 2, 3]);
    assert!(matches!(
        cell.read::<String>(),
        Some(Err(Error::TypeMismatch { .. }))
    ));
    assert_eq!(*object.downcast::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
    assert!(matches!(
        object.downcast::<String>(),
        Err(Error::TypeMismatch { .. })
    ));
    let bytes = object.to_bytes().unwrap();
    assert_eq!(bytes.len(), object.size());
    for len in [0usize, 1, 127, 128, 16_383, 16_384, 100_000] {
        let bytes = Object::new(vec![7u8; len]);
        let fast = bytes.to_bytes().unwrap();
        assert_eq!(
            fast,
            postcard::to_stdvec(&vec![7u8; len]).unwrap(),
            "as postcard"
        );
        assert_eq!(*decode::<Vec<u8>>(&fast).unwrap(), vec![7u8; len]);
        let text = "é".repeat(len);
        let encoded = postcard::to_stdvec(&text).unwrap();
        assert_eq!(Object::new(text.clone()).to_bytes().unwrap(), encoded);
        assert_eq!(*decode::<String>(&encoded).unwrap(), text);
        assert_eq!(
            bytes.to_bytes().unwrap().len(),
            bytes.size(),
            "Vec<u8> of {len}"
        );
        let floats = Object::new(vec![0.5f64; len]);
        assert_eq!(
            floats.to_bytes().unwrap().len(),
            floats.size(),
            "Vec<f64> of {len}"
        );
        let text = Object::new("é".repeat(len));
        assert_eq!(
            text.to_bytes().unwrap().len(),
            text.size(),
            "String of {len}"
        );
    }
    assert_eq!(
        postcard::from_bytes::<Vec<u32>>(&bytes).unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(store.len(), 1);
}

#[test]
fn waiters_run_once_on_completion_and_not_for_resolved_objects() {
    let store = ObjectStore::for_tests(1);
    let cell = store.insert_pending(None);
    let hits = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let hits = hits.clone();
        assert!(cell
            .subscribe(Waiter::call(move |state| {
                assert!(matches!(state, State::Ready));
                hits.fetch_add(1, Ordering::SeqCst);
            }))
            .is_none());
    }
    assert!(cell.complete(Ok(Object::new(5u8))));
    assert!(!cell.complete(Ok(Object::new(6u8))), "first outcome wins");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    assert!(matches!(
        cell.subscribe(Waiter::call(|_| unreachable!())),
        Some(State::Ready)
    ));
}

#[test]
fn a_long_chain_of_waiters_resolving_objects_uses_constant_stack() {
    // Each object's waiter fails the next one; 200k levels would overflow any stack if run
    // recursively.
    let store = ObjectStore::for_tests(1);
    let cells: Vec<Arc<Cell>> = (0..200_000).map(|_| store.insert_pending(None)).collect();
    for pair in cells.windows(2) {
        let next = Arc::clone(&pair[1]);
        pair[0].subscribe(Waiter::call(move |_| {
            next.complete(Err(Error::RuntimeShutdown));
        }));
    }
    cells[0].complete(Err(Error::RuntimeShutdown));
    assert!(matches!(
        cells.last().unwrap().state(),
        State::Failed(error) if matches!(*error, Error::RuntimeShutdown)
    ));
}

#[test]
fn objects_are_freed_with_their_last_holder_and_then_cannot_be_found() {
    let store = ObjectStore::for_tests(1);
    let small = store.insert_ready(Object::new(vec![0u8; 64])).unwrap();
    assert_eq!(store.usage().0, 0, "small objects are outside the budget");
    let big = store.insert_ready(Object::new(vec![0u8; 4096])).unwrap();
    let (small_id, big_id) = (small.id(), big.id());
    assert_eq!(store.usage().0, 4098, "4096 bytes and their length prefix");
    assert!(
        store.lookup(small_id).is_none(),
        "small objects are not indexed"
    );
    assert!(store.lookup(big_id).is_some(), "spill candidates are");
    small.enter_index();
    let again = store.lookup(small_id).expect("indexed once serialized");
    assert!(Arc::ptr_eq(&again, &small));
    drop((small, again, big));
    assert_eq!(store.len(), 0);
    assert_eq!(store.usage().0, 0, "memory given back");
    assert!(store.lookup(small_id).is_none() && store.lookup(big_id).is_none());
    assert!(store.index.iter().all(|shard| shard.lock().is_empty()));
}

#[test]
fn the_registry_forgets_dead_cells_as_it_grows() {
    let store = ObjectStore::for_tests(1);
    let keep: Vec<_> = (0..100).map(|_| store.insert_pending(None)).collect();
    for _ in 0..10_000 {
        drop(store.insert_failed(Error::RuntimeShutdown));
    }
    let listed = store.registry.entries();
    assert!(
        listed <= 2 * keep.len() + 2,
        "dead cells swept away, {listed} left"
    );
    assert_eq!(store.len(), 100);
    assert_eq!(store.snapshot().objects.len(), 100);
    drop(keep);
    assert_eq!(store.len(), 0);
}

#[test]
fn objects_of_another_owner_are_not_found_by_id() {
    let store = ObjectStore::for_tests(1);
    let cell = store.insert_ready(Object::new(vec![1u8; 4096])).unwrap();
    assert!(store.lookup(cell.id()).is_some());
    assert!(store.lookup(ObjectId::new(2, cell.id().seq())).is_none());
}

#[test]
fn every_scalar_kind_goes_through_its_bits_and_back() {
    fn check<T: Value + Clone + PartialEq + fmt::Debug>(value: T) {
        let scalar = Scalar::of(&value).expect("a scalar");
        assert_eq!(Scalar::kind_of::<T>(), Some(scalar.kind()));
        let back = Scalar::from_bits(scalar.kind(), scalar.to_bits());
        assert_eq!(back.get::<T>(), Some(value));
        assert_eq!(back.get::<String>(), None);
    }
    check(());
    check(u8::MAX);
    check(u16::MAX - 1);
    check(u32::MAX - 2);
    check(u64::MAX - 3);
    check(usize::MAX - 4);
    check(i8::MIN);
    check(i16::MIN + 1);
    check(i32::MIN + 2);
    check(i64::MIN + 3);
    check(isize::MIN + 4);
    check(-1.5f32);
    check(f64::MIN_POSITIVE);
    check(true);
    check(false);
    check('é');
    assert_eq!(Scalar::kind_of::<String>(), None);
    assert_eq!(Scalar::kind_of::<(u8, u8)>(), None);
}

#[test]
fn a_scalar_is_read_as_stored_and_not_after_its_value_moved_out() {
    let store = ObjectStore::for_tests(1);
    let put = store.insert_ready(Object::new(-7i32)).unwrap();
    assert_eq!(put.read_value::<i32>().unwrap(), Ok(-7));
    assert!(matches!(
        put.read_value::<u32>(),
        Some(Err(Error::TypeMismatch { .. }))
    ));
    let result = store.insert_pending(None);
    assert!(result.read_value::<f64>().is_none(), "pending");
    assert!(result.complete(Ok(Object::new(2.5f64))));
    assert_eq!(result.read_value::<f64>().unwrap(), Ok(2.5));
    // A scalar is copied, never moved out, so it stays readable.
    assert_eq!(result.take_last_value::<f64>(), None);
    assert_eq!(result.read_value::<f64>().unwrap(), Ok(2.5));
    // A shared value moved out is no longer read.
    let shared = store.insert_ready(Object::new(vec![1u8, 2])).unwrap();
    assert_eq!(shared.take_last_value::<Vec<u8>>(), Some(vec![1, 2]));
    assert!(matches!(
        shared.read_value::<Vec<u8>>(),
        Some(Err(Error::ObjectLost { .. }))
    ));
}

#[test]
fn small_objects_are_never_counted_even_against_a_budget_smaller_than_them() {
    let limits = StoreLimits {
        memory: 100,
        spill_dir: std::env::temp_dir(),
        spill_limit: None,
    };
    let store = ObjectStore::new(1, limits);
    let put = store.insert_ready(Object::new(vec![7u8; 500])).unwrap();
    let result = store.insert_pending(None);
    assert!(result.complete(Ok(Object::new(vec![8u8; 600]))));
    for cell in [&put, &result] {
        assert!(
            matches!(cell.state(), State::Ready),
            "in memory, not spilled"
        );
    }
    assert_eq!(store.usage(), (0, 0, 0), "nothing counted, nothing on disk");
    assert_eq!(*result.read::<Vec<u8>>().unwrap().unwrap(), vec![8u8; 600]);
}
