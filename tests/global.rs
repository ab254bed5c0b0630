//! The global runtime: implicit start, init, shutdown and restart. One test only, in its own
//! binary, because it owns the process-wide runtime.
mod common;

use rustyray::{Config, Error};

#[test]
fn global_runtime_starts_on_first_use_and_restarts_after_shutdown() {
    let r = common::add(1, 2); // no init: the first call starts the global runtime
    assert_eq!(rustyray::get(&r).unwrap(), 3);
    // Another thread that used the old runtime must move to the new one after a restart.
    let (ask, asked) = std::sync::mpsc::channel::<()>();
    let (tell, told) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        while asked.recv().is_ok() {
            tell.send(rustyray::put(1u8).unwrap().id().owner()).unwrap();
        }
    });
    ask.send(()).unwrap();
    let before = told.recv().unwrap();
    let err = rustyray::init(Config::default()).unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");
    rustyray::shutdown();
    rustyray::init(Config::default().num_cpus(1).resource("disk", 1.0)).unwrap();
    // Refs of the old runtime are not valid in the new one.
    assert!(matches!(rustyray::get(&r), Err(Error::NotFound { .. })));
    let r = rustyray::task::TaskBuilder::new("uses_disk")
        .resource("disk", 1.0)
        .spawn(|| Ok(7u8));
    assert_eq!(rustyray::get(&r).unwrap(), 7);
    ask.send(()).unwrap();
    let after = told.recv().unwrap();
    assert_ne!(before, after, "the other thread still used the old runtime");
    assert_eq!(after, rustyray::put(2u8).unwrap().id().owner());
    drop(ask);
    other.join().unwrap();
    let err = rustyray::init(Config::default().resource("", 1.0)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
    rustyray::shutdown();
}
