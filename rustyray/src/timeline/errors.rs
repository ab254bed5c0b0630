//! The last few errors of each function and actor method, for the dashboard (feature
//! `dashboard`): what failed, with which message, on which thread, and when.
//!
//! Kept under one lock: an error costs a whole task run and the formatting of its message
//! already, so the lock is not what a failing task pays most for. Each key keeps its
//! [`KEPT`] newest errors; there are at most [`MAX_KEYS`] keys per process (a program with more
//! failing functions than that sees the first ones).

use std::borrow::Cow;
use std::collections::VecDeque;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::Serialize;

/// How many errors each function keeps.
pub(crate) const KEPT: usize = 5;
const MAX_KEYS: usize = 4096;

/// One error as the dashboard shows it.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct ErrorNote {
    /// The error's text (for a panic, with where it was raised).
    pub(crate) message: String,
    /// The thread it happened on.
    pub(crate) thread: String,
    /// Seconds from the trace's zero.
    pub(crate) at: f64,
}

type Key = (u32, Cow<'static, str>, Option<Cow<'static, str>>);

static ERRORS: Mutex<Option<FxHashMap<Key, VecDeque<ErrorNote>>>> = Mutex::new(None);

/// Notes `error` of `name` (of class `actor` for a method) in `runtime`.
// A `&Cow`: cloning a borrowed name into the key allocates nothing.
#[allow(clippy::ptr_arg)]
pub(crate) fn note(
    runtime: u32,
    name: &Cow<'static, str>,
    actor: Option<&Cow<'static, str>>,
    error: &crate::Error,
) {
    let note = ErrorNote {
        message: error.to_string(),
        thread: std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned(),
        at: super::since_start(super::now()).as_secs_f64(),
    };
    let mut errors = ERRORS.lock();
    let errors = errors.get_or_insert_with(Default::default);
    let key = (runtime, name.clone(), actor.cloned());
    if errors.len() >= MAX_KEYS && !errors.contains_key(&key) {
        return;
    }
    let kept = errors.entry(key).or_default();
    if kept.len() == KEPT {
        kept.pop_front();
    }
    kept.push_back(note);
}

/// A function's name and its actor class (for a method).
pub(crate) type Named = (String, Option<String>);

/// The errors kept for `runtime`, newest last, by (name, actor).
pub(crate) fn recent(runtime: u32) -> Vec<(Named, Vec<ErrorNote>)> {
    let errors = ERRORS.lock();
    errors
        .iter()
        .flatten()
        .filter(|((r, _, _), _)| *r == runtime)
        .map(|((_, name, actor), notes)| {
            let key = (name.to_string(), actor.as_deref().map(str::to_owned));
            (key, notes.iter().cloned().collect())
        })
        .collect()
}
