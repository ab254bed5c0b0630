//! Waiting on Ray in slices, so that a lost cluster, or work no live node can run, ends a wait
//! that Ray alone would keep up for good.

use std::borrow::Cow;
use std::time::Instant;

use super::errors::from_ray as error;
use super::objects::{Place, RayObject};
use super::{ffi, nodes, watch};
use crate::error::{Error, Result};
use crate::object_store::codec::frame;

/// The bytes of `object` (its frame, and the objects its refs name), waiting until `deadline`
/// at most.
pub(super) fn fetch(object: &RayObject, deadline: Option<Instant>) -> Result<Cow<'_, [u8]>> {
    if object.cancelled() {
        return Err(Error::Cancelled {
            function: object.origin.to_string(),
        });
    }
    let id = match object.place() {
        Place::Here(here) => return Ok(Cow::Borrowed(here)),
        Place::Ray(id) => id,
        Place::Part {
            whole,
            index,
            fetched,
        } => {
            // The parts share the whole's bytes, fetched once.
            let bytes = match fetched.get() {
                Some(bytes) => bytes,
                None => {
                    let bytes = fetch(whole, deadline)?.into_owned();
                    fetched.get_or_init(|| bytes)
                }
            };
            // The part's frame, and the objects its refs name (after the last part).
            let (part, after) = frame::part(bytes, index)?;
            return Ok(Cow::Owned([part, after].concat()));
        }
    };
    let started = Instant::now();
    let fetched = crate::runtime::blocking::outside_async_worker(|| {
        in_slices(
            deadline,
            |ms, _| match ffi::get(id, ms) {
                Err((ffi::Failure::Timeout, _)) => None,
                done => Some(done),
            },
            || nodes::stuck(object),
        )
    });
    match fetched {
        Ok(Some(fetched)) => fetched.map(Cow::Owned).map_err(|e| {
            match error(&object.origin, e, started) {
                // An actor call's object is named `Class::method`; the actor is the class.
                Error::ActorDied { actor, reason } => Error::ActorDied {
                    actor: actor
                        .rsplit_once("::")
                        .map_or(actor.clone(), |(class, _)| class.to_owned()),
                    reason,
                },
                other => other,
            }
        }),
        Ok(None) => Err(Error::Timeout(started.elapsed())),
        Err(Stop::Stuck(error)) => Err(error),
        Err(Stop::Lost(lost)) => Err(Error::Backend {
            message: format!("`{}` could not finish: {lost}", object.origin),
        }),
    }
}

/// Why a wait on Ray ended before what it waited for.
pub(super) enum Stop {
    /// The cluster is gone.
    Lost(&'static str),
    /// What it waited for can never come (see `nodes.rs`).
    Stuck(Error),
}

/// Waits on Ray until `deadline` (none: without end), a [`watch::SLICE`] at a time, so that a
/// lost cluster, or work that can no longer run, ends the wait: `attempt(timeout_ms, again)`
/// waits at most that long and returns `Some` once done (`again`: an earlier slice passed);
/// after each slice, `stuck` says whether waiting on is useless. `Ok(None)` when the deadline
/// passed.
pub(super) fn in_slices<R>(
    deadline: Option<Instant>,
    mut attempt: impl FnMut(i32, bool) -> Option<R>,
    mut stuck: impl FnMut() -> Option<Error>,
) -> std::result::Result<Option<R>, Stop> {
    let mut again = false;
    loop {
        let slice_end = Instant::now() + watch::SLICE;
        let until = deadline.map_or(slice_end, |d| d.min(slice_end));
        if let Some(done) = attempt(timeout_ms(Some(until)), again) {
            return Ok(Some(done));
        }
        if let Some(why) = watch::lost() {
            return Err(Stop::Lost(why));
        }
        if let Some(error) = stuck() {
            return Err(Stop::Stuck(error));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        again = true;
    }
}

fn timeout_ms(deadline: Option<Instant>) -> i32 {
    match deadline {
        None => -1,
        Some(deadline) => {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis();
            i32::try_from(left).unwrap_or(i32::MAX)
        }
    }
}
