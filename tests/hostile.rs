//! Odd input from a careless caller: timeouts past the clock, configuration extremes, encoded
//! arguments with bytes left over, and refs written by another process (docs/security.md).

mod common;

use std::time::Duration;

use rustyray::util::Queue;
use rustyray::{Bundle, Config, Error, ObjectRef, PlacementGroup, Runtime};

#[rustyray::remote]
fn slow_seven() -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    7
}

#[rustyray::remote]
fn one_arg(x: u64) -> u64 {
    x
}

#[test]
fn a_timeout_of_duration_max_waits_without_a_deadline() {
    let rt = common::runtime(2);
    let _in = rt.enter();
    let r = slow_seven::remote();
    assert_eq!(rustyray::get_timeout(&r, Duration::MAX).unwrap(), 7);
    let refs = vec![slow_seven::remote(), slow_seven::remote()];
    let (ready, rest) = rustyray::wait(&refs, 2, Some(Duration::MAX));
    assert_eq!((ready.len(), rest.len()), (2, 0));

    let pg = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(1.0))
        .create()
        .unwrap();
    assert!(pg.wait(Duration::MAX).unwrap());

    let queue: Queue<u64> = Queue::new(2).unwrap();
    queue.put_timeout(5, Duration::MAX).unwrap();
    assert_eq!(queue.get_timeout(Duration::MAX).unwrap(), 5);
    // The queue's actor is still there for every user.
    queue.put(6).unwrap();
    assert_eq!(queue.get().unwrap(), 6);
}

fn refused(config: Config, names: &str) {
    match Runtime::new(config) {
        Err(Error::InvalidArgument(why)) => assert!(why.contains(names), "{why}"),
        Err(other) => panic!("{names}: {other:?}"),
        Ok(_) => panic!("{names}: accepted"),
    }
}

#[test]
fn configuration_extremes_are_errors_naming_the_field() {
    refused(Config::default().num_cpus(usize::MAX), "num_cpus");
    refused(Config::default().num_cpus(0), "num_cpus");
    refused(Config::default().num_gpus(usize::MAX), "num_gpus");
    refused(Config::default().max_threads(usize::MAX), "max_threads");
    refused(Config::default().resource("disk", 1e300), "`disk`");
    refused(Config::default().resource("disk", f64::INFINITY), "`disk`");
    refused(Config::default().resource("disk", -1.0), "`disk`");
    refused(Config::default().spill_dir(""), "spill_dir");
    // The edges themselves are accepted.
    Runtime::new(Config::default().num_cpus(4096).resource("disk", 1e12)).unwrap();
}

#[test]
fn huge_resource_requests_are_errors_not_overflows() {
    let rt = Runtime::new(Config::default().num_cpus(2).resource("disk", 4.0)).unwrap();
    let _in = rt.enter();
    let r = one_arg::options()
        .resource("disk", 9e15)
        .resource("disk", 9e15)
        .remote(1);
    assert!(matches!(rustyray::get(&r), Err(Error::Infeasible { .. })));
    let r = one_arg::options().resource("disk", f64::MAX).remote(1);
    assert!(rustyray::get(&r).is_err());
    let r = one_arg::options().num_cpus(f64::MAX).remote(1);
    assert!(rustyray::get(&r).is_err());
    // The runtime is unharmed.
    assert_eq!(rustyray::get(&one_arg::remote(3)).unwrap(), 3);
}

#[test]
fn encoded_arguments_with_bytes_left_over_are_refused() {
    let rt = common::runtime(1);
    let _in = rt.enter();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = concat!(module_path!(), "::one_arg");
    let right = postcard::to_stdvec(&(7u64,)).unwrap();
    let out = tokio
        .block_on(rustyray::registry::invoke(id, right))
        .unwrap();
    assert_eq!(postcard::from_bytes::<u64>(&out).unwrap(), 7);
    let two = postcard::to_stdvec(&(7u64, 99u64)).unwrap();
    match tokio.block_on(rustyray::registry::invoke(id, two)) {
        Err(Error::Serialization(why)) => assert!(why.contains("left over"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ref_bytes_with_the_largest_ids_keep_them_and_are_not_found() {
    let rt = common::runtime(1);
    let _in = rt.enter();
    // A ref's bytes: the writing process's nonce, the runtime and the sequence number.
    for (nonce, owner, seq) in [(0u64, 1u32, u64::MAX), (7, u32::MAX, (1 << 56) + 3)] {
        let bytes = postcard::to_stdvec(&(nonce, owner, seq)).unwrap();
        let r: ObjectRef<u64> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!((r.id().owner(), r.id().seq()), (owner, seq));
        assert_eq!(r.clone(), r);
        assert!(matches!(rustyray::get(&r), Err(Error::NotFound { .. })));
    }
}

/// The role a child process of [`ref_bytes_of_another_process_are_not_found`] plays.
const ROLE: &str = "RUSTYRAY_TEST_REF_ROLE";
const FILE: &str = "RUSTYRAY_TEST_REF_FILE";

#[test]
fn ref_bytes_of_another_process_are_not_found() {
    let file = std::env::temp_dir().join(format!("rustyray-ref-bytes-{}", std::process::id()));
    let child = |role: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "cross_process_child", "--nocapture"])
            .env(ROLE, role)
            .env(FILE, &file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{role}: {text}");
        assert!(text.contains("1 passed"), "{role} ran: {text}");
        text
    };
    child("write");
    let read = child("read");
    assert!(read.contains("foreign ref: not found"), "{read}");
    let _ = std::fs::remove_file(&file);
}

/// One side of [`ref_bytes_of_another_process_are_not_found`]; does nothing when run alone.
#[test]
fn cross_process_child() {
    let (Ok(role), Some(file)) = (std::env::var(ROLE), std::env::var_os(FILE)) else {
        return;
    };
    let rt = common::runtime(1);
    let _in = rt.enter();
    // Both processes make the same objects: runtime 1, sequence numbers from 1.
    let mine: Vec<ObjectRef<u64>> = (0..5).map(|i| rustyray::put(1000 + i).unwrap()).collect();
    let own_bytes = postcard::to_stdvec(&mine).unwrap();
    match role.as_str() {
        "write" => std::fs::write(&file, own_bytes).unwrap(),
        _ => {
            // This process's own refs read back fine...
            let back: Vec<ObjectRef<u64>> = postcard::from_bytes(&own_bytes).unwrap();
            assert_eq!(
                rustyray::get_all(&back).unwrap(),
                vec![1000, 1001, 1002, 1003, 1004]
            );
            // ... and the other process's, with the same ids, are never this one's objects.
            let theirs: Vec<ObjectRef<u64>> =
                postcard::from_bytes(&std::fs::read(&file).unwrap()).unwrap();
            assert_eq!(theirs.len(), 5);
            for r in &theirs {
                match rustyray::get(r) {
                    Err(Error::NotFound { .. }) => {}
                    other => panic!("a foreign ref resolved: {other:?}"),
                }
            }
            println!("foreign ref: not found");
        }
    }
}
