//! The HTTP side of the dashboard, made to be safe to leave running where others can reach it:
//!
//! - **A connection cap** ([`MAX_CONNECTIONS`]): past it, new connections are closed at once,
//!   so idle clients cannot take the process's file descriptors (which spilling and
//!   `timeline()` need).
//! - **Timeouts**: hyper's header-read timeout ([`HEADER_TIMEOUT`]) closes a connection that
//!   sends half a request, or sits idle between requests, for that long; no connection lives
//!   past [`MAX_LIFETIME`] (a client that never reads its answer).
//! - **A rate limit** ([`REQUESTS_PER_SECOND`] over all clients, tower's `RateLimit` behind a
//!   `Buffer`): requests past it wait their turn, so a client polling as fast as it is answered
//!   costs the runtime a bounded share of a core.
//! - **A `Host` check** on loopback binds: only `localhost`, `127.0.0.1`, `[::1]` and the bound
//!   address are answered, so a page of another site cannot read the API through DNS
//!   rebinding (421 otherwise). On other binds every host is answered, with a warning at start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;

/// The most connections open at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send a request's headers, or sit idle between requests.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any connection stays open.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(300);
/// Requests answered per second, over all clients.
pub(crate) const REQUESTS_PER_SECOND: u64 = 100;

/// Adds the rate limit and, on loopback binds, the `Host` check to `app`.
pub(super) fn guarded(app: Router, bound: SocketAddr) -> Router {
    let limited = app.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|error: tower::BoxError| async move {
                (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }))
            .buffer(1024)
            .rate_limit(REQUESTS_PER_SECOND, Duration::from_secs(1)),
    );
    if !bound.ip().is_loopback() {
        tracing::warn!(
            target: "rustyray::dashboard",
            address = %bound,
            "the dashboard listens on a non-loopback address: anyone who can reach it can read \
             what your tasks are and how they failed; bind 127.0.0.1 or put it behind an \
             authenticating proxy (docs/security.md)"
        );
        return limited;
    }
    let hosts = Arc::new(loopback_hosts(bound));
    limited.layer(middleware::from_fn_with_state(hosts, check_host))
}

/// The host names a loopback-bound dashboard answers to.
fn loopback_hosts(bound: SocketAddr) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "[::1]".to_owned(),
    ];
    hosts.push(match bound {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    });
    hosts
}

/// The host of a `Host` header's value, without its port.
fn host_of(value: &str) -> &str {
    let value = value.trim();
    if value.starts_with('[') {
        // [v6]:port
        return value.split_inclusive(']').next().unwrap_or(value);
    }
    value.split(':').next().unwrap_or(value)
}

async fn check_host(
    State(hosts): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_of);
    match host {
        Some(host) if hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) => next.run(request).await,
        _ => (
            StatusCode::MISDIRECTED_REQUEST,
            "this dashboard answers only to localhost (it is bound to a loopback address)",
        )
            .into_response(),
    }
}

/// Accepts connections on `listener` and serves `app` on each, under the cap and timeouts.
pub(super) async fn serve(listener: tokio::net::TcpListener, app: Router) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: back off rather than spin on the error
                // (as hyper's and axum's own accept loops do).
                tracing::warn!(target: "rustyray::dashboard", %error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream); // over the cap: closed at once
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(MAX_LIFETIME, connection).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_without_their_port() {
        assert_eq!(host_of("localhost:8265"), "localhost");
        assert_eq!(host_of("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_of("[::1]:80"), "[::1]");
        assert_eq!(host_of("evil.example:80"), "evil.example");
        let hosts = loopback_hosts("127.0.0.2:1".parse().unwrap());
        assert!(hosts.contains(&"127.0.0.2".to_owned()));
    }
}
