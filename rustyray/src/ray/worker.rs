//! The worker side: what a Ray worker runs when it executes a RustyRay task or actor call.
//!
//! Ray's `default_worker` loads the user's `cdylib` (found on the code search path), whose
//! link-time registry holds every remote function, constructor and method by id. The shim's
//! entry points hand each call here with its arguments as bytes; it runs on the worker's
//! thread inside the process's global runtime, which in a worker is a Ray runtime joined to the
//! worker's connection, so `get`, `put` and nested `remote` calls inside a task go to Ray too.

use std::any::Any;

use parking_lot::Mutex;

use crate::config::Config;
use crate::registry;
use crate::runtime::{self, Runtime};

/// The global runtime of a worker process, started on the first call.
fn worker_runtime() -> Runtime {
    runtime::global_or_start(|| Runtime::build(Config::ray_worker()))
}

/// Runs `future` to completion on this thread, inside the worker's runtime.
fn run<R>(future: impl std::future::Future<Output = crate::Result<R>>) -> Result<R, String> {
    let rt = worker_runtime();
    let _entered = rt.enter();
    let handle = rt.tokio_handle().ok_or_else(|| {
        "the RustyRay runtime of this Ray worker could not start its threads".to_owned()
    })?;
    handle.block_on(future).map_err(|e| super::encode_error(&e))
}

/// The postcard encoding of a tuple is its fields' encodings one after the other.
fn tuple(args: &[&[u8]]) -> Vec<u8> {
    args.concat()
}

pub(super) fn run_task(id: &str, args: &[&[u8]]) -> Result<Vec<u8>, String> {
    run(registry::invoke(id, tuple(args)))
}

/// An actor's state on a Ray worker. Ray may run calls on several threads (an actor with
/// `max_concurrency` above 1); the lock keeps `&mut` access exclusive.
pub(crate) struct WorkerActor {
    state: Mutex<Box<dyn Any + Send>>,
}

pub(super) fn construct(id: &str, args: &[&[u8]]) -> Result<Box<WorkerActor>, String> {
    let state = run(registry::construct(id, tuple(args)))?;
    Ok(Box::new(WorkerActor {
        state: Mutex::new(state),
    }))
}

pub(super) fn call(actor: &WorkerActor, id: &str, args: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut state = actor.state.lock();
    run(registry::call_method(id, &mut **state, tuple(args)))
}

pub(super) fn run_json(id: &str, json: &[u8]) -> Result<Vec<u8>, String> {
    let json = std::str::from_utf8(json).map_err(|e| format!("the JSON is not UTF-8: {e}"))?;
    run(registry::invoke_json(id, json)).map(String::into_bytes)
}

/// What a worker reports for a call of `id` that panicked.
pub(crate) fn panic_message(id: &str, payload: &Box<dyn Any + Send>) -> String {
    super::encode_error(&crate::Error::panicked(id, &**payload))
}
