//! Actor concurrency groups: each group has its own limit and queue, so an `io` call is not
//! held behind a long `compute` call.

use std::time::Duration;

use rustyray::{Config, Error, Runtime};
use tokio::sync::Notify;

const PATIENCE: Duration = Duration::from_secs(30);

#[rustyray::actor]
struct Service {
    release: Notify,
    log: parking_lot::Mutex<Vec<String>>,
}

#[rustyray::actor(concurrency_groups(io = 2, compute = 1))]
impl Service {
    fn new() -> Self {
        Service {
            release: Notify::new(),
            log: Default::default(),
        }
    }

    /// Long work: runs until `finish` is called.
    #[rustyray(concurrency_group = "compute")]
    async fn compute(&self, name: String) -> String {
        self.log.lock().push(format!("start {name}"));
        self.release.notified().await;
        self.log.lock().push(format!("end {name}"));
        name
    }

    #[rustyray(concurrency_group = "io")]
    async fn health(&self) -> String {
        "ok".to_owned()
    }

    #[rustyray(concurrency_group = "io")]
    async fn log(&self) -> Vec<String> {
        self.log.lock().clone()
    }

    /// In the default group.
    async fn finish(&self) {
        self.release.notify_one();
    }
}

#[test]
fn an_io_call_returns_while_a_compute_call_runs() {
    let rt = Runtime::new(Config::default().num_cpus(2)).unwrap();
    let _guard = rt.enter();
    let service = Service::remote();
    let first = service.compute("first".to_owned());
    let second = service.compute("second".to_owned());
    // `compute` holds its only slot; `io` calls go past it.
    assert_eq!(
        rustyray::get_timeout(&service.health(), PATIENCE),
        Ok("ok".to_owned())
    );
    let log = rustyray::get_timeout(&service.log(), PATIENCE).unwrap();
    assert_eq!(
        log,
        ["start first"],
        "the second compute waits in its group"
    );
    assert!(matches!(
        rustyray::get_timeout(&first, Duration::from_millis(100)),
        Err(Error::Timeout(_))
    ));
    // The default group is its own too: `finish` runs while `compute` waits.
    rustyray::get_timeout(&service.finish(), PATIENCE).unwrap();
    assert_eq!(rustyray::get_timeout(&first, PATIENCE).unwrap(), "first");
    rustyray::get_timeout(&service.finish(), PATIENCE).unwrap();
    assert_eq!(rustyray::get_timeout(&second, PATIENCE).unwrap(), "second");
    let log = rustyray::get(&service.log()).unwrap();
    assert_eq!(
        log,
        ["start first", "end first", "start second", "end second"],
        "one compute at a time, in the order sent"
    );
}
