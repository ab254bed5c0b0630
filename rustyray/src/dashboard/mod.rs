//! The live dashboard and Prometheus metrics (feature `dashboard`): an HTTP server on the
//! runtime's own threads, started when [`Config::dashboard`](crate::Config::dashboard) or
//! `RUSTYRAY_DASHBOARD` names an address.
//!
//! # Design
//!
//! Nothing here runs unless something asks: each request reads the runtime at that moment
//! ([`snapshot::take`]: the state API, the store's usage, and the timeline's exact per-thread
//! tallies) and answers from it. The page (`page.html`, static, no build step and nothing
//! fetched from elsewhere) asks for `/api/snapshot` once a second and draws it; `/metrics` is
//! the same snapshot in the Prometheus text format ([`metrics`]).
//!
//! The only cost on the hot paths is the tally of each finished task in the timeline's
//! per-thread ring (`timeline/tally.rs`): a few loads and stores on memory only that thread
//! writes. Built without the feature, none of this exists.
//!
//! The server is a task on the runtime's tokio threads, so a request sees this runtime as the
//! current one; it stops with the runtime (whose shutdown drops every task).

use std::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::error::{Error, Result};
use crate::runtime::{self, RuntimeCore};

mod metrics;
pub(crate) mod rare;
mod snapshot;

/// The page, served at `/`.
const PAGE: &str = include_str!("page.html");

/// Binds `addr` and serves the dashboard on the runtime's tokio threads; returns the address
/// bound (its port chosen by the system if `addr`'s is 0).
pub(crate) fn start(shared: &RuntimeCore, addr: SocketAddr) -> Result<SocketAddr> {
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
    let listener = {
        let _entered = tokio.enter();
        tokio::net::TcpListener::from_std(listener).map_err(refuse)?
    };
    tokio.spawn(async move {
        if let Err(error) = axum::serve(listener, router()).await {
            tracing::warn!(target: "rustyray::dashboard", %error, "the dashboard stopped");
        }
    });
    tracing::info!(target: "rustyray::dashboard", address = %bound, "dashboard at http://{bound}/");
    Ok(bound)
}

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/snapshot", get(|| async { Json(now()) }))
        .route("/api/tasks", get(|| async { Json(now().tasks) }))
        .route("/api/actors", get(|| async { Json(now().actors) }))
        .route("/api/objects", get(|| async { Json(now().objects) }))
        .route(
            "/api/placement_groups",
            get(|| async { Json(now().placement_groups) }),
        )
        .route("/api/timeline", get(|| async { Json(now().timeline) }))
        .route("/metrics", get(|| async { prometheus() }))
}

/// The current runtime's snapshot (requests run on its threads).
fn now() -> snapshot::Snapshot {
    snapshot::take(&runtime::current())
}

fn prometheus() -> Response {
    match metrics::render(now()) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode the metrics",
        )
            .into_response(),
    }
}
