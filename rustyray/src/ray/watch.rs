//! Notices, in a driver, that its cluster went away.
//!
//! Ray's C++ driver does not fail a blocked `Get` when the head goes: it waits, then ends the
//! process about a minute later ("Failed to connect to GCS within 60 seconds"). So a driver
//! keeps one idle TCP connection to the head's GCS port on a thread of its own, blocked in a
//! read. The head's death closes it at once (the kernel resets the connection); the thread
//! then connects again, and a head that refuses twice in a row is lost. An idle connection
//! that the GCS closes itself is simply opened again. Nothing polls: the thread sleeps in
//! `read`.
//!
//! A `get` or `wait` without a deadline waits on Ray in slices of [`SLICE`] and checks
//! [`lost`] between them, so it returns `Error::Backend` within a slice of the loss; a ready
//! object returns at once, whatever the slice.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The longest a blocking `get` or `wait` waits on Ray before it looks at [`lost`].
pub(crate) const SLICE: Duration = Duration::from_secs(1);

/// Why the cluster is lost, once it is.
static LOST: OnceLock<String> = OnceLock::new();

/// Why the cluster this driver is connected to is gone, if it is.
pub(crate) fn lost() -> Option<&'static str> {
    LOST.get().map(String::as_str)
}

/// Starts watching the head at `address` (`host:port` of its GCS), once per process.
pub(crate) fn start(address: &str) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let address = address.to_owned();
        let spawned = std::thread::Builder::new()
            .name("rustyray-ray-watch".to_owned())
            .spawn(move || watch(&address));
        if let Err(error) = spawned {
            tracing::warn!(target: "rustyray::ray", %error, "cannot watch the Ray cluster");
        }
    });
}

fn connect(address: &str) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other(format!("`{address}` names no address"));
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(last)
}

fn watch(address: &str) {
    let (mut refusals, mut short_lived) = (0, 0);
    loop {
        match connect(address) {
            Ok(mut stream) => {
                refusals = 0;
                let opened = Instant::now();
                // Blocks until the GCS closes the connection or its host resets it; whatever
                // it sends meanwhile is read and dropped.
                let mut sink = [0u8; 512];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                // A head that closes idle connections at once cannot be watched this way;
                // connecting again and again would only spin.
                short_lived = if opened.elapsed() < SLICE {
                    short_lived + 1
                } else {
                    0
                };
                if short_lived >= 3 {
                    tracing::debug!(target: "rustyray::ray", %address, "head not watched");
                    return;
                }
            }
            Err(error) => {
                refusals += 1;
                if refusals >= 2 {
                    declare_lost(address, &error);
                    return;
                }
            }
        }
    }
}

fn declare_lost(address: &str, error: &std::io::Error) {
    let why = format!("the head at {address} no longer accepts connections ({error})");
    eprintln!(
        "rustyray: lost the Ray cluster: {why}. Calls waiting on it fail with Error::Backend; \
         Ray's driver ends this process about a minute after the loss."
    );
    tracing::error!(target: "rustyray::ray", %address, %error, "lost the Ray cluster");
    let _ = LOST.set(why);
}
