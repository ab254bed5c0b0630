//! The worker side: what a Ray worker runs when it executes a RustyRay task or actor call.
//!
//! Ray's `default_worker` loads the user's `cdylib` (found on the code search path), whose
//! link-time registry holds every remote function, constructor and method by id. The shim's
//! entry points hand each call here with its arguments as bytes; it runs on the worker's
//! thread inside the process's global runtime, which in a worker is a Ray runtime joined to the
//! worker's connection, so `get`, `put` and nested `remote` calls inside a task go to Ray too.
//!
//! Failures behave as they do embedded, because Ray's C++ API has no settings for them:
//! - a task runs again after a panic (and after an `Err` with `retry_exceptions`) while its
//!   [`TaskPolicy`] allows;
//! - an actor method that panics ends the actor (later calls fail with `ActorDied`), or, while
//!   its [`ActorPolicy`] allows restarts, rebuilds it from its constructor's arguments in the
//!   same process, re-running the call while it has retries left. The rule is the embedded
//!   host's own ([`Recovery`], `actor/recovery.rs`).

use std::any::Any;
use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::args::{Gathered, TakePart};
use super::{errors, objects, ActorPolicy, CallPolicy, TaskPolicy};
use crate::actor::recovery::Recovery;
use crate::config::Config;
use crate::error::Error;
use crate::object_store::codec::entry::{with_encoding, Encoding};
use crate::object_store::codec::frame;
use crate::object_store::{Cell, ObjectStore};
use crate::registry::{self, Access, Built};
use crate::runtime::{self, Runtime};

/// The global runtime of a worker process, started on the first call.
fn worker_runtime() -> Runtime {
    runtime::global_or_start(|| {
        super::kept_memory::start();
        Runtime::build(Config::ray_worker())
    })
}

/// Runs `future` to completion on this thread, inside the worker's runtime, with framed
/// arguments and result. A panic of the body unwinds out of here.
fn run<R>(future: impl std::future::Future<Output = crate::Result<R>>) -> crate::Result<R> {
    let rt = worker_runtime();
    let _entered = rt.enter();
    let handle = rt.tokio_handle().ok_or_else(|| Error::Backend {
        message: "the RustyRay runtime of this Ray worker could not start its threads".to_owned(),
    })?;
    handle.block_on(with_encoding(Encoding::Framed, future))
}

/// Runs a call whose result is a value's frame, as [`run`] does; the objects that the
/// value's refs name go with it, inline (the caller may read them after this worker is gone).
fn returning(
    future: impl std::future::Future<Output = crate::Result<Vec<u8>>>,
) -> crate::Result<Vec<u8>> {
    let (bytes, kept) = crate::object_store::keeping_handles(|| run(future));
    let mut bytes = bytes?;
    objects::inline(&mut bytes, &crate::object_store::cells_of(kept))?;
    Ok(bytes)
}

/// The name errors give a registered id, as on the embedded runtime: a function's own name
/// (`resize`, not `my_crate::jobs::resize`), a method's `Type::method`.
fn display_name(id: &str) -> &str {
    let kind = registry::find(id).map(registry::Registration::kind);
    let keep = match kind {
        Some(registry::Kind::Function) | None => 1,
        Some(_) => 2,
    };
    let mut cut = id.len();
    for _ in 0..keep {
        match id[..cut].rfind("::") {
            Some(at) => cut = at,
            None => return id,
        }
    }
    &id[cut + 2..]
}

/// Splits off the policy frame an entry point's arguments start with, and checks that every
/// argument is a RustyRay value: one that is not is Ray's record of a failure upstream (an
/// actor that died, a lost object), which fails this call with that failure.
fn prepare<'a, P: serde::de::DeserializeOwned + 'static>(
    id: &str,
    args: &[&'a [u8]],
) -> crate::Result<(P, Arguments<'a>)> {
    let (policy, args) = args.split_first().ok_or_else(|| {
        Error::Serialization(format!(
            "`{id}` was sent without its policy (is the driver built with this RustyRay?)"
        ))
    })?;
    let policy = frame::decode(policy, "the call's policy", |_| {
        Error::Serialization(format!("the policy of `{id}` is not a RustyRay value"))
    })?;
    Ok((policy, arguments(id, args, worker_runtime().store())?))
}

/// A call's arguments as the registry's framed decoding reads them, and the objects their refs
/// name, entered in the worker's store for as long as the call may decode them.
///
/// The frames are one after the other. A call with one argument (a task over a large array,
/// say) reads its frame where Ray's buffer holds it; only several arguments, or a gathered
/// one, are joined into bytes of their own.
#[derive(Debug)]
struct Arguments<'a> {
    frames: Cow<'a, [u8]>,
    _objects: Vec<Arc<Cell>>,
}

impl Arguments<'_> {
    /// The same arguments, holding their bytes (an actor keeps its constructor's).
    fn into_owned(self) -> Arguments<'static> {
        Arguments {
            frames: Cow::Owned(self.frames.into_owned()),
            _objects: self._objects,
        }
    }
}

/// The arguments, one frame after the other. A gathered argument (a [`Gathered`] frame, then
/// its objects) becomes the one frame of its parameter. The objects that travel with a value
/// (after its frame, some as the next arguments: see `objects.rs`) are entered in the
/// worker's store.
fn arguments<'a>(
    id: &str,
    args: &[&'a [u8]],
    store: &Arc<ObjectStore>,
) -> crate::Result<Arguments<'a>> {
    super::kept_memory::before_call(args);
    let what = display_name(id);
    if let Some(foreign) = args.iter().find(|arg| !frame::is_framed(arg)) {
        return Err(errors::foreign(what, foreign));
    }
    let marker = std::any::type_name::<Gathered>();
    let take_part = std::any::type_name::<TakePart>();
    // Frames read so far: views of Ray's buffers, or bytes made here (a gathered parameter's).
    let mut pieces: Vec<Cow<'a, [u8]>> = Vec::new();
    let mut objects: Vec<Arc<Cell>> = Vec::new();
    let mut rest = args.iter().copied();
    while let Some(arg) = rest.next() {
        let (head, after) = frame::split(arg)
            .map_err(|e| e.error(what, arg, |bytes| errors::foreign(what, bytes)))?;
        if head.type_name == marker {
            let gathered: Gathered = head.decode()?;
            pieces.push(Cow::Owned(gather(
                id,
                &gathered,
                &mut rest,
                store,
                &mut objects,
            )?));
            continue;
        }
        if head.type_name == take_part {
            // A part of a `num_returns` object: its frame, and the objects its refs name.
            let TakePart { index } = head.decode()?;
            let whole = rest.next().ok_or_else(|| {
                Error::Serialization(format!("`{what}` was sent a part without its object"))
            })?;
            if !frame::is_framed(whole) {
                return Err(errors::foreign(what, whole));
            }
            let (part, after) = frame::part(whole, index as usize)?;
            pieces.push(Cow::Borrowed(part));
            objects.extend(objects::enter(store, after, &mut std::iter::empty(), what)?);
            continue;
        }
        pieces.push(Cow::Borrowed(&arg[..arg.len() - after.len()]));
        objects.extend(objects::enter(store, after, &mut rest, what)?);
    }
    // One frame is used as it is; several are joined.
    let frames = match pieces.len() {
        1 => pieces.remove(0),
        _ => Cow::Owned(pieces.concat()),
    };
    Ok(Arguments {
        frames,
        _objects: objects,
    })
}

/// The frame of a gathered parameter, from the frames of its parts (the next arguments).
fn gather<'a>(
    id: &str,
    gathered: &Gathered,
    parts: &mut impl Iterator<Item = &'a [u8]>,
    store: &Arc<ObjectStore>,
    objects: &mut Vec<Arc<Cell>>,
) -> crate::Result<Vec<u8>> {
    let mut payload = Vec::new();
    if gathered.counted {
        payload = postcard::to_stdvec(&(gathered.parts.len() as u64))
            .map_err(|e| Error::Serialization(e.to_string()))?;
    }
    for (i, expected) in gathered.parts.iter().enumerate() {
        let part = parts.next().ok_or_else(|| {
            Error::Serialization(format!(
                "`{}` was sent {i} of the {} objects of a gathered argument",
                display_name(id),
                gathered.parts.len()
            ))
        })?;
        let what = display_name(id);
        let (frame, after) = frame::split(part)
            .map_err(|e| e.error(what, part, |bytes| errors::foreign(what, bytes)))?;
        // A part that holds refs brings their objects inline (it is a stored object).
        objects.extend(objects::enter(store, after, &mut std::iter::empty(), what)?);
        if frame.type_name != expected {
            return Err(Error::TypeMismatch {
                expected: frame::intern(expected),
                found: frame::intern(frame.type_name),
            });
        }
        // The parameter's encoding is its parts' postcard encodings, one after the other.
        payload.extend_from_slice(&frame.postcard()?);
    }
    Ok(frame::wrap(&gathered.type_name, &payload))
}

/// Runs a body of this worker, catching its panic; printed by the panic hook only when
/// `RUSTYRAY_PRINT_TASK_PANICS` asks for it (Ray keeps workers' stderr in its logs).
fn catch_body<R>(body: AssertUnwindSafe<impl FnOnce() -> R>) -> std::thread::Result<R> {
    static PRINT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let print = *PRINT.get_or_init(|| {
        crate::panics::install_hook();
        std::env::var("RUSTYRAY_PRINT_TASK_PANICS")
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true"))
    });
    crate::panics::catch(print, body)
}

/// What a panic of `id` reports.
fn panicked(id: &str, payload: &(dyn Any + Send)) -> Error {
    Error::panicked(display_name(id), payload)
}

pub(super) fn run_task(id: &str, args: &[&[u8]]) -> Result<Vec<u8>, String> {
    if id == super::GROUP_READY {
        // Running at all means the group is reserved: its value is `()`.
        return frame::encode(&()).map_err(|e| errors::encode(&e));
    }
    let (policy, args): (TaskPolicy, _) = prepare(id, args).map_err(|e| errors::encode(&e))?;
    let scope = &policy.cancel;
    // A cancelled task does not start, and one cancelled while it ran stores no result, so
    // the tasks waiting for its object fail too (see `cancel.rs`).
    let cancelled = || {
        let rt = worker_runtime();
        let _entered = rt.enter();
        scope.is_cancelled()
    };
    let cancel_error = || Error::Cancelled {
        function: display_name(id).to_owned(),
    };
    let mut retries = policy.max_retries;
    loop {
        let outcome = catch_body(AssertUnwindSafe(|| {
            scope.running(|| {
                if cancelled() {
                    return Err(cancel_error());
                }
                let dynamic = policy.num_returns.map(|n| n as usize);
                let bytes = crate::task::returns::with_dynamic_returns(dynamic, || {
                    returning(registry::invoke(id, &*args.frames))
                })?;
                match cancelled() {
                    true => Err(cancel_error()),
                    false => Ok(bytes),
                }
            })
        }));
        let (error, retryable) = match outcome {
            Ok(Ok(bytes)) => return Ok(bytes),
            Ok(Err(error @ Error::TaskFailed { .. })) => (error, policy.retry_exceptions),
            Ok(Err(error)) => (error, false),
            Err(payload) => (panicked(id, &*payload), true),
        };
        if !retryable || retries == 0 {
            return Err(errors::encode(&error));
        }
        retries -= 1;
        tracing::warn!(target: "rustyray::task", %error, retries_left = retries, "retrying");
    }
}

/// An actor on a Ray worker. Ray may run calls on several threads (an actor with
/// `max_concurrency` above 1): a concurrent actor's shared calls (`&self` async methods) run
/// side by side under a read lock; every other call runs alone, with `&mut` access.
pub(crate) struct WorkerActor {
    constructor: String,
    /// The constructor's arguments, kept to rebuild the actor after a panic.
    args: Arguments<'static>,
    lives: Lives,
    /// With concurrency groups: each group's limit of shared calls at once, the default
    /// group's first. Ray runs up to all of them at once; these hold each group to its own.
    groups: Vec<tokio::sync::Semaphore>,
}

enum Lives {
    Exclusive(Mutex<Life<Box<dyn Any + Send>>>),
    Shared(RwLock<Life<Box<dyn Any + Send + Sync>>>),
}

struct Life<S> {
    /// The state, or why the actor died.
    state: Result<S, String>,
    recovery: Recovery,
}

/// A built state as one kind of [`Life`] keeps it.
trait State: Sized {
    fn from_built(built: Built) -> Result<Self, String>;
    fn exclusive(&mut self) -> &mut (dyn Any + Send);
}

impl State for Box<dyn Any + Send> {
    fn from_built(built: Built) -> Result<Self, String> {
        Ok(match built {
            Built::Exclusive(state) => state,
            Built::Shared(state) => state,
        })
    }

    fn exclusive(&mut self) -> &mut (dyn Any + Send) {
        &mut **self
    }
}

impl State for Box<dyn Any + Send + Sync> {
    fn from_built(built: Built) -> Result<Self, String> {
        match built {
            Built::Shared(state) => Ok(state),
            Built::Exclusive(_) => Err("its constructor no longer builds a concurrent actor \
                                        (the driver and the workers' library differ)"
                .to_owned()),
        }
    }

    fn exclusive(&mut self) -> &mut (dyn Any + Send) {
        &mut **self
    }
}

fn build(id: &str, args: &Arguments<'_>) -> Result<Built, Error> {
    match catch_body(AssertUnwindSafe(|| run(registry::build(id, &args.frames)))) {
        Ok(built) => built,
        Err(payload) => Err(panicked(id, &*payload)),
    }
}

pub(super) fn construct(id: &str, args: &[&[u8]]) -> Result<Box<WorkerActor>, String> {
    let (policy, args): (ActorPolicy, _) = prepare(id, args).map_err(|e| errors::encode(&e))?;
    let built = build(id, &args).map_err(|e| errors::encode(&e))?;
    let recovery = Recovery::new(policy.max_restarts, policy.max_task_retries);
    let lives = match built {
        Built::Exclusive(state) => Lives::Exclusive(Mutex::new(Life {
            state: Ok(state),
            recovery,
        })),
        Built::Shared(state) => Lives::Shared(RwLock::new(Life {
            state: Ok(state),
            recovery,
        })),
    };
    let groups = policy
        .group_limits
        .iter()
        .map(|&limit| tokio::sync::Semaphore::new(limit as usize))
        .collect();
    Ok(Box::new(WorkerActor {
        constructor: id.to_owned(),
        args: args.into_owned(),
        lives,
        groups,
    }))
}

impl WorkerActor {
    /// The actor's type, as errors name it (`Counter`).
    fn class(&self) -> &str {
        let name = display_name(&self.constructor);
        name.rsplit_once("::").map_or(name, |(class, _)| class)
    }

    /// After a panic: rebuilt while restarts remain, else dead with `error` as the reason.
    fn crashed<S: State>(&self, life: &mut Life<S>, error: &Error) {
        if !life.recovery.restart() {
            life.state = Err(error.to_string());
            return;
        }
        tracing::warn!(target: "rustyray::actor", actor = self.class(), %error, "restarting");
        life.state = build(&self.constructor, &self.args)
            .map_err(|rebuild| rebuild.to_string())
            .and_then(S::from_built)
            .map_err(|rebuild| format!("{error}; then its restart failed: {rebuild}"));
    }

    /// After a call's panic: the crash ([`Self::crashed`]), then `Ok` if the call runs again
    /// (its `attempts`-th re-run), or its error.
    fn crash<S: State>(&self, life: &mut Life<S>, error: &Error, attempts: u32) -> Outcome<()> {
        self.crashed(life, error);
        let restarted = life.state.is_ok();
        if life.recovery.runs_again(restarted, attempts) {
            Ok(())
        } else {
            Err(errors::encode(error))
        }
    }

    fn died(&self, reason: &str) -> String {
        errors::encode(&Error::ActorDied {
            actor: self.class().to_owned(),
            reason: reason.to_owned(),
        })
    }

    /// Runs a call alone, with `&mut` access, re-running it after a crash while the actor's
    /// [`Recovery`] allows.
    fn call_alone<S: State>(&self, life: &mut Life<S>, id: &str, args: &Arguments<'_>) -> Outcome {
        let mut attempts = 0;
        loop {
            let state = match &mut life.state {
                Ok(state) => state.exclusive(),
                Err(reason) => return Err(self.died(reason)),
            };
            let outcome = catch_body(AssertUnwindSafe(|| {
                returning(registry::call_method(id, state, &*args.frames))
            }));
            let error = match outcome {
                Ok(result) => return result.map_err(|e| errors::encode(&e)),
                Err(payload) => panicked(id, &*payload),
            };
            self.crash(life, &error, attempts)?;
            attempts += 1;
        }
    }

    /// Runs a concurrent actor's shared call beside the others; a crash takes the actor alone
    /// to rebuild it.
    fn call_shared(
        &self,
        life: &RwLock<Life<Box<dyn Any + Send + Sync>>>,
        id: &str,
        args: &Arguments<'_>,
        group: usize,
    ) -> Outcome {
        // A call of a concurrency group runs once its group has room.
        let group = self
            .groups
            .get(group.min(self.groups.len().saturating_sub(1)));
        let mut attempts = 0;
        loop {
            let outcome = {
                let life = life.read();
                let state = match &life.state {
                    Ok(state) => &**state,
                    Err(reason) => return Err(self.died(reason)),
                };
                catch_body(AssertUnwindSafe(|| {
                    returning(async {
                        let _room = match group {
                            Some(group) => Some(group.acquire().await.map_err(|_| {
                                Error::RuntimeShutdown // the semaphores are never closed
                            })?),
                            None => None,
                        };
                        registry::call_shared(id, state, &args.frames).await
                    })
                }))
            };
            let error = match outcome {
                Ok(result) => return result.map_err(|e| errors::encode(&e)),
                Err(payload) => panicked(id, &*payload),
            };
            self.crash(&mut life.write(), &error, attempts)?;
            attempts += 1;
        }
    }
}

/// A call's result as the shim takes it: the value's bytes, or an error's text.
type Outcome<T = Vec<u8>> = Result<T, String>;

pub(super) fn call(actor: &WorkerActor, id: &str, args: &[&[u8]]) -> Outcome {
    let (policy, args) = call_policy(args).map_err(|e| errors::encode(&e))?;
    let args = arguments(id, args, worker_runtime().store()).map_err(|e| errors::encode(&e))?;
    let run = || match &actor.lives {
        Lives::Exclusive(life) => actor.call_alone(&mut life.lock(), id, &args),
        Lives::Shared(life) => match registry::access(id) {
            Ok(Access::Shared) => actor.call_shared(life, id, &args, policy.group.into()),
            _ => actor.call_alone(&mut life.write(), id, &args),
        },
    };
    let Some(scope) = &policy.cancel else {
        return run();
    };
    // As a task's (`run_task`): a cancelled call does not start, sees `is_cancelled()` while
    // it runs, and one cancelled meanwhile stores no result.
    let cancelled = || {
        let rt = worker_runtime();
        let _entered = rt.enter();
        scope.is_cancelled()
    };
    let cancel_error = || {
        errors::encode(&Error::Cancelled {
            function: display_name(id).to_owned(),
        })
    };
    scope.running(|| {
        if cancelled() {
            return Err(cancel_error());
        }
        let outcome = run();
        match cancelled() {
            true => Err(cancel_error()),
            false => outcome,
        }
    })
}

/// What a call says ahead of its arguments (the default group and no cancel scope if
/// nothing), and the arguments.
fn call_policy<'a, 'b>(args: &'a [&'b [u8]]) -> crate::Result<(CallPolicy, &'a [&'b [u8]])> {
    if let Some((first, rest)) = args.split_first() {
        if let Ok((head, [])) = frame::split(first) {
            if head.type_name == std::any::type_name::<CallPolicy>() {
                return Ok((head.decode()?, rest));
            }
        }
    }
    let none = CallPolicy {
        group: 0,
        cancel: None,
    };
    Ok((none, args))
}

pub(super) fn run_json(id: &str, json: &[u8]) -> Result<Vec<u8>, String> {
    let json = std::str::from_utf8(json).map_err(|e| format!("the JSON is not UTF-8: {e}"))?;
    let rt = worker_runtime();
    let _entered = rt.enter();
    let handle = rt.tokio_handle().ok_or_else(|| {
        "the RustyRay runtime of this Ray worker could not start its threads".to_owned()
    })?;
    match catch_body(AssertUnwindSafe(|| {
        handle.block_on(registry::invoke_json(id, json))
    })) {
        Ok(result) => result
            .map(String::into_bytes)
            .map_err(|e| errors::encode(&e)),
        Err(payload) => Err(errors::encode(&panicked(id, &*payload))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_functions_as_the_embedded_runtime_does() {
        assert_eq!(display_name("my_crate::jobs::resize"), "resize");
        assert_eq!(display_name("plain"), "plain");
    }

    fn store() -> Arc<ObjectStore> {
        ObjectStore::for_tests(1)
    }

    fn marker(type_name: &str, counted: bool, parts: &[&str]) -> Vec<u8> {
        frame::encode(&Gathered {
            type_name: type_name.to_owned(),
            counted,
            parts: parts.iter().map(|p| (*p).to_owned()).collect(),
        })
        .unwrap()
    }

    /// Refs gathered into one parameter arrive as a marker and their objects; the worker
    /// rebuilds the parameter's one frame, between the arguments around it.
    #[test]
    fn gathered_objects_become_their_parameters_frame() {
        let vec = std::any::type_name::<Vec<u64>>();
        let u64_name = std::any::type_name::<u64>();
        let parts: Vec<Vec<u8>> = [1u64, 4, 9]
            .iter()
            .map(|v| frame::encode(v).unwrap())
            .collect();
        let head = frame::encode(&7u32).unwrap();
        let mark = marker(vec, true, &[u64_name; 3]);
        let args: Vec<&[u8]> = [&head, &mark, &parts[0], &parts[1], &parts[2]]
            .iter()
            .map(|a| a.as_slice())
            .collect();
        let joined = arguments("t", &args, &store()).unwrap().frames;
        let (first, rest) = frame::split(&joined).unwrap();
        assert_eq!(first.decode::<u32>().unwrap(), 7);
        let (second, rest) = frame::split(rest).unwrap();
        assert_eq!(second.decode::<Vec<u64>>().unwrap(), [1, 4, 9]);
        assert!(rest.is_empty());

        let tuple = std::any::type_name::<(u64, String)>();
        let name = frame::encode(&"four".to_owned()).unwrap();
        let mark = marker(tuple, false, &[u64_name, std::any::type_name::<String>()]);
        let args: Vec<&[u8]> = vec![&mark, &parts[2], &name];
        let joined = arguments("t", &args, &store()).unwrap().frames;
        let (only, _) = frame::split(&joined).unwrap();
        assert_eq!(
            only.decode::<(u64, String)>().unwrap(),
            (9, "four".to_owned())
        );
    }

    /// A part of another type than the parameter's is refused, never read as that type; too
    /// few parts are refused too.
    #[test]
    fn gathered_parts_are_checked() {
        let vec = std::any::type_name::<Vec<u64>>();
        let u64_name = std::any::type_name::<u64>();
        let wrong = frame::encode(&-1i64).unwrap();
        let mark = marker(vec, true, &[u64_name]);
        let err = arguments("t", &[&mark, &wrong], &store()).unwrap_err();
        assert!(matches!(err, Error::TypeMismatch { .. }), "{err:?}");
        let mark = marker(vec, true, &[u64_name, u64_name]);
        let one = frame::encode(&1u64).unwrap();
        let err = arguments("t", &[&mark, &one], &store()).unwrap_err();
        assert!(err.to_string().contains("1 of the 2"), "{err}");
    }
}
