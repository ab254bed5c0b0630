//! The dashboard's cost to the runtime it watches: async no-op tasks per second while clients
//! poll the dashboard, against the same runtime with no client (the floor, measured in the
//! same run, alternating), and how soon a half-sent request is closed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rustyray::{Config, ObjectRef, Runtime};

use crate::measure::{paired, Effort, Line};
use crate::workloads::line;

#[rustyray::remote]
async fn tick() {}

/// One poll: a whole request on a new connection, read to its end.
fn poll(addr: SocketAddr, path: &str) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

/// Two clients polling `/api/snapshot` and `/metrics` in turn, `pause` apart, while the gate
/// is open; they wait on it (not spinning) while it is shut, so the floor's rounds run without
/// them and no round pays for starting or stopping threads.
struct Clients {
    gate: Arc<(Mutex<Gate>, Condvar)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Gate {
    Shut,
    Open,
    Stop,
}

impl Clients {
    fn start(addr: SocketAddr, pause: Option<Duration>) -> Clients {
        let gate = Arc::new((Mutex::new(Gate::Shut), Condvar::new()));
        let threads = (0..2)
            .map(|_| {
                let gate = Arc::clone(&gate);
                std::thread::spawn(move || loop {
                    {
                        let (state, changed) = &*gate;
                        let mut state = state.lock();
                        while *state == Gate::Shut {
                            changed.wait(&mut state);
                        }
                        if *state == Gate::Stop {
                            return;
                        }
                    }
                    for path in ["/api/snapshot", "/metrics"] {
                        poll(addr, path);
                        if let Some(pause) = pause {
                            std::thread::sleep(pause); // a monitor's polling period
                        }
                    }
                })
            })
            .collect();
        Clients { gate, threads }
    }

    fn set(&self, to: Gate) {
        let (state, changed) = &*self.gate;
        *state.lock() = to;
        changed.notify_all();
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.set(Gate::Stop);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

pub(crate) fn lines(e: Effort, cpus: usize) -> Vec<Line> {
    let local: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let rt = Runtime::new(Config::default().num_cpus(cpus).dashboard(local)).expect("a runtime");
    let addr = rt.dashboard_address().expect("the dashboard listens");
    let _in = rt.enter();
    let (batch, batches) = (1_000, e.size(200, 20));
    let work = || {
        for _ in 0..batches {
            let refs: Vec<ObjectRef<()>> = (0..batch).map(|_| tick::remote()).collect();
            rustyray::get_all(&refs).expect("no-op tasks succeed");
        }
    };
    let mut out = Vec::new();
    for (name, pause) in [
        (
            "async tasks while 2 clients poll the dashboard every 100 ms",
            Some(Duration::from_millis(100)),
        ),
        (
            "async tasks while 2 clients poll the dashboard nonstop",
            None,
        ),
    ] {
        let clients = Clients::start(addr, pause);
        let (ours, alone) = paired(
            e,
            batch * batches,
            || {
                clients.set(Gate::Open);
                work();
                clients.set(Gate::Shut);
            },
            work,
        );
        drop(clients);
        out.push(line(name, "tasks", ours, Some(("no client", alone))));
    }

    // A request that never finishes its headers: how long the server keeps it open.
    let started = Instant::now();
    let closed = TcpStream::connect(addr).and_then(|mut half| {
        half.write_all(b"GET /api/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n")?;
        half.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut rest = Vec::new();
        half.read_to_end(&mut rest)
    });
    let mut half = line(
        "half-sent dashboard request closed after",
        "seconds",
        if closed.is_ok() {
            started.elapsed().as_secs_f64()
        } else {
            f64::INFINITY
        },
        None,
    );
    half.higher_is_better = false;
    out.push(half);
    out
}
