//! The live dashboard and Prometheus metrics (feature `dashboard`): an HTTP server on the
//! runtime's own threads, started when [`Config::dashboard`](crate::Config::dashboard) or
//! `RUSTYRAY_DASHBOARD` names an address.
//!
//! # Design
//!
//! A dashboard must never starve the runtime it watches, whoever polls it and however hard:
//!
//! - [`publisher`]: every request is answered from one shared snapshot ([`snapshot::take`]:
//!   the state API, the store's usage, the timeline's exact per-thread tallies), built on
//!   tokio's blocking threads, never on the async workers that also run task bodies, and at
//!   most once per interval. Each endpoint's JSON and the Prometheus text ([`metrics`]) are
//!   encoded in the same build.
//! - [`server`]: a connection cap, hyper's header-read timeout, a rate limit over all
//!   clients, and a `Host` check on loopback binds.
//!
//! The page (`page.html`, static, no build step and nothing fetched from elsewhere) asks for
//! `/api/snapshot` once a second and draws it. The only cost on the hot paths is the tally of
//! each submitted and finished task in the timeline's per-thread tallies (`timeline/tally.rs`):
//! a few loads and stores on memory only that thread writes. Built without the feature, none
//! of this exists.
//!
//! The server is a task on the runtime's tokio threads; it stops with the runtime (whose
//! shutdown drops every task).

use std::net::SocketAddr;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::{Error, Result};
use crate::runtime::RuntimeCore;
use publisher::{Built, Publisher};

mod metrics;
mod publisher;
pub(crate) mod rare;
mod server;
mod snapshot;

/// The page, served at `/`.
const PAGE: &str = include_str!("page.html");

/// Binds `addr` and serves the dashboard on the runtime's tokio threads, with snapshots at most
/// `interval` old; returns the address bound (its port chosen by the system if `addr`'s is 0).
pub(crate) fn start(
    shared: &RuntimeCore,
    addr: SocketAddr,
    interval: std::time::Duration,
) -> Result<SocketAddr> {
    let refuse = |e: std::io::Error| {
        Error::InvalidArgument(format!(
            "the dashboard could not listen on {addr}: {e}; pick another address with \
             `Config::dashboard` or `RUSTYRAY_DASHBOARD` (port 0 picks a free one)"
        ))
    };
    let tokio = shared
        .handle()
        .ok_or_else(|| Error::InvalidArgument("the runtime's threads did not start".into()))?;
    let listener = std::net::TcpListener::bind(addr).map_err(refuse)?;
    listener.set_nonblocking(true).map_err(refuse)?;
    let bound = listener.local_addr().map_err(refuse)?;
    let publisher = Publisher::new(shared.id(), interval);
    // The listener and the rate limit's buffer (which spawns its worker) need the runtime.
    let _entered = tokio.enter();
    let listener = tokio::net::TcpListener::from_std(listener).map_err(refuse)?;
    let app = server::guarded(router(Arc::clone(&publisher)), bound);
    tokio.spawn(publisher.sample());
    tokio.spawn(server::serve(listener, app));
    tracing::info!(target: "rustyray::dashboard", address = %bound, "dashboard at http://{bound}/");
    Ok(bound)
}

/// Which part of a build an endpoint answers with.
type Part = fn(&Built) -> Option<&Bytes>;

fn router(publisher: Arc<Publisher>) -> Router {
    let json = |part: Part| get(move |State(p): State<Arc<Publisher>>| answer(p, part, JSON));
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/snapshot", json(|b| Some(&b.snapshot)))
        .route("/api/tasks", json(|b| Some(&b.tasks)))
        .route("/api/actors", json(|b| Some(&b.actors)))
        .route("/api/objects", json(|b| Some(&b.objects)))
        .route("/api/placement_groups", json(|b| Some(&b.placement_groups)))
        .route("/api/timeline", json(|b| Some(&b.timeline)))
        .route(
            "/metrics",
            get(|State(p): State<Arc<Publisher>>| answer(p, |b| b.metrics.as_ref(), OPENMETRICS)),
        )
        .with_state(publisher)
}

const JSON: &str = "application/json";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The latest build's `part`, as `content_type`.
async fn answer(publisher: Arc<Publisher>, part: Part, content_type: &'static str) -> Response {
    let built = publisher.latest().await;
    match part(&built) {
        Some(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes.clone()).into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode the answer",
        )
            .into_response(),
    }
}
