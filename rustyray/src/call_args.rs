//! The arguments of a call, shared by tasks, actor constructors and actor calls: each
//! argument as a slot (a value, or a ref resolved before the call runs), the objects the call
//! waits for, and, while a runtime of the process sends calls to other processes (the `ray`
//! backend), the arguments as they travel ([`WireArgs`]) with the registered id to run them by.
//! What a ref becomes on the other side is the backend's business: this module names no
//! backend.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::context;
#[cfg(feature = "ray")]
use crate::error::Error;
use crate::error::Result;
use crate::object_ref::{missing, ObjectId, ObjectRef};
#[cfg(feature = "ray")]
use crate::object_store::codec::frame;
use crate::object_store::{Cell, Value};

/// A value, or a ref to one, passed where a task or actor method expects a `T` (declared `T`,
/// `&T` or `Arc<T>`; a `&[E]` parameter of numbers expects a `Vec<E>`).
///
/// Implemented for `T` itself, `Arc<T>`, `ObjectRef<T>` and `&ObjectRef<T>` (and, for actor
/// handles, `&ActorHandle<A>`); a ref is resolved through the object store before the task
/// runs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed where a `{T}` is expected",
    label = "expected `{T}`, `Arc<{T}>`, `ObjectRef<{T}>` or `&ObjectRef<{T}>`",
    note = "a remote function's parameter of type `T`, `&T` or `Arc<T>` accepts a `T` value, \
            an `Arc<T>` or a ref to one; a `Vec<T>` one also takes a `Vec` or slice of refs, an \
            array one an array of refs, and a tuple one a tuple of refs"
)]
pub trait IntoArg<T> {
    /// Wraps the argument for a task.
    fn into_arg(self) -> ArgSlot<T>;
}

impl<T: Value + Clone> IntoArg<T> for T {
    fn into_arg(self) -> ArgSlot<T> {
        ArgSlot(Slot::Value(Mutex::new(Some(self))))
    }
}

impl<T> IntoArg<T> for Arc<T> {
    fn into_arg(self) -> ArgSlot<T> {
        ArgSlot(Slot::Shared(self))
    }
}

impl<T> IntoArg<T> for ObjectRef<T> {
    fn into_arg(self) -> ArgSlot<T> {
        ArgSlot(Slot::Ref(self))
    }
}

impl<T> IntoArg<T> for &ObjectRef<T> {
    fn into_arg(self) -> ArgSlot<T> {
        ArgSlot(Slot::Ref(self.clone()))
    }
}

/// A borrowed actor handle where a handle is expected: the task gets a clone of it, so the
/// caller keeps its own (no `.clone()` at every call).
impl<A: crate::actor::Actor> IntoArg<crate::ActorHandle<A>> for &crate::ActorHandle<A>
where
    crate::ActorHandle<A>: Value,
{
    fn into_arg(self) -> ArgSlot<crate::ActorHandle<A>> {
        self.clone().into_arg()
    }
}

/// One argument of a submitted task: the value itself, or a ref to the object that holds it.
///
/// Inside the task body, [`ArgSlot::get`] (a copy), [`ArgSlot::value`] (moved out when it
/// can be) or [`ArgSlot::shared`] (the stored value itself) reads it; a ref argument's object is
/// ready by then, so reading never waits. The slot's ref keeps the object alive until the task
/// is done.
pub struct ArgSlot<T>(Slot<T>);

enum Slot<T> {
    /// Passed by value; taken out on the call's last try.
    Value(Mutex<Option<T>>),
    /// Passed as a shared value (an `Arc<T>`, or a value given to a `&T` or `Arc<T>`
    /// parameter, moved into an `Arc` once).
    Shared(Arc<T>),
    /// Passed by ref; resolved before the body runs.
    Ref(ObjectRef<T>),
    /// Gathered from several refs (a `Vec<ObjectRef<U>>` for a `Vec<U>` parameter), each
    /// resolved before the body runs.
    Gather(Gather<T>),
}

/// The refs of a gathered argument, and how to build the value from their objects.
struct Gather<T> {
    refs: Vec<ObjectRef<()>>,
    read: fn(&[ObjectRef<()>]) -> Result<T>,
    /// How the value's encoding is laid out, for a backend that rebuilds it in another process.
    layout: Layout,
}

impl<T> Clone for Gather<T> {
    fn clone(&self) -> Self {
        Gather {
            refs: self.refs.clone(),
            read: self.read,
            layout: self.layout,
        }
    }
}

/// How a gathered value's encoding is made of its parts' encodings: in order, after their
/// count for a `Vec` (postcard's layout of sequences, arrays and tuples); the `i`th part's type
/// name, to check each part before it is read as one.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "ray"), allow(dead_code))] // read by the `ray` backend
pub(crate) struct Layout {
    pub(crate) counted: bool,
    pub(crate) part: fn(usize) -> &'static str,
}

fn same_part<U>(_: usize) -> &'static str {
    std::any::type_name::<U>()
}

/// The value of one gathered object, as a `U`.
fn gathered<U: Value + Clone>(r: &ObjectRef<()>) -> Result<U> {
    let cell = r.cell().ok_or_else(|| missing(r.id()))?;
    crate::runtime::blocking::read_when_resolved(cell, None, Cell::read_value::<U>)
}

/// The `Vec<U>` of the objects `refs` (each a `U`), in order; the first failure fails it.
fn gather_vec<U: Value + Clone>(refs: &[ObjectRef<()>]) -> Result<Vec<U>> {
    refs.iter().map(gathered::<U>).collect()
}

/// The `[U; N]` of the objects `refs`, in order.
fn gather_array<U: Value + Clone, const N: usize>(refs: &[ObjectRef<()>]) -> Result<[U; N]> {
    let values = gather_vec::<U>(refs)?;
    values.try_into().map_err(|v: Vec<U>| {
        crate::error::Error::InvalidArgument(format!("{} refs gathered for [_; {N}]", v.len()))
    })
}

/// Refs passed where an array is expected: each a dependency, the task gets the values.
impl<T: Value + Clone, const N: usize> IntoArg<[T; N]> for [ObjectRef<T>; N] {
    fn into_arg(self) -> ArgSlot<[T; N]> {
        ArgSlot(Slot::Gather(Gather {
            refs: self.into_iter().map(ObjectRef::erased).collect(),
            read: gather_array::<T, N>,
            layout: Layout {
                counted: false,
                part: same_part::<T>,
            },
        }))
    }
}

/// Tuples of refs passed where a tuple of values is expected: each a dependency, the task gets
/// the values.
macro_rules! gather_tuples {
    ($($name:ident: ($($t:ident $i:tt),+);)+) => {$(
        fn $name<$($t: Value + Clone),+>(refs: &[ObjectRef<()>]) -> Result<($($t,)+)> {
            Ok(($(gathered::<$t>(&refs[$i])?,)+))
        }

        impl<$($t),+> TupleParts for ($($t,)+) {
            fn part(i: usize) -> &'static str {
                [$(std::any::type_name::<$t>()),+][i]
            }
        }

        impl<$($t: Value + Clone),+> IntoArg<($($t,)+)> for ($(ObjectRef<$t>,)+) {
            fn into_arg(self) -> ArgSlot<($($t,)+)> {
                ArgSlot(Slot::Gather(Gather {
                    refs: vec![$(self.$i.erased()),+],
                    read: $name::<$($t),+>,
                    layout: Layout {
                        counted: false,
                        part: <($($t,)+) as TupleParts>::part,
                    },
                }))
            }
        }
    )+};
}

/// The type names of a tuple's fields.
trait TupleParts {
    fn part(i: usize) -> &'static str;
}

gather_tuples! {
    gather_tuple2: (A 0, B 1);
    gather_tuple3: (A 0, B 1, C 2);
    gather_tuple4: (A 0, B 1, C 2, D 3);
}

/// Refs passed where a `Vec<T>` is expected: every ref is a dependency, and the task gets the
/// values in order (on Ray, each object travels as an argument of its own). A failed element fails
/// the task with its error.
impl<T: Value + Clone> IntoArg<Vec<T>> for Vec<ObjectRef<T>> {
    fn into_arg(self) -> ArgSlot<Vec<T>> {
        ArgSlot(Slot::Gather(Gather {
            refs: self.into_iter().map(ObjectRef::erased).collect(),
            read: gather_vec::<T>,
            layout: Layout {
                counted: true,
                part: same_part::<T>,
            },
        }))
    }
}

impl<T: Value + Clone> IntoArg<Vec<T>> for &[ObjectRef<T>] {
    fn into_arg(self) -> ArgSlot<Vec<T>> {
        ArgSlot(Slot::Gather(Gather {
            refs: self.iter().map(|r| r.clone().erased()).collect(),
            read: gather_vec::<T>,
            layout: Layout {
                counted: true,
                part: same_part::<T>,
            },
        }))
    }
}

impl<T: Value + Clone> IntoArg<Vec<T>> for &Vec<ObjectRef<T>> {
    fn into_arg(self) -> ArgSlot<Vec<T>> {
        self.as_slice().into_arg()
    }
}

/// Says whether the body about to start on this thread runs its call's last try. Every place
/// that starts a body sets it first (a plain store: this is on every call's path), and a body
/// reads its arguments as it starts, before it can block or await; the one place that runs
/// other bodies inside a body (an actor call run by a blocked caller) puts the caller's back
/// with [`keeping_last_try`].
#[inline]
pub(crate) fn set_last_try(last: bool) {
    context::with(|cx| cx.last_try.set(last));
}

/// Runs `f` (which starts other bodies) and puts this thread's last-try flag back after it.
pub(crate) fn keeping_last_try<R>(f: impl FnOnce() -> R) -> R {
    let was = context::with(|cx| cx.last_try.get());
    let out = f();
    context::with(|cx| cx.last_try.set(was));
    out
}

fn moved_out() -> crate::error::Error {
    crate::error::Error::InvalidArgument(
        "an argument was read again after its value was moved into the body".to_owned(),
    )
}

impl<T: Value + Clone> ArgSlot<T> {
    /// The argument's value: a copy of the one passed or stored.
    pub fn get(&self) -> Result<T> {
        match &self.0 {
            Slot::Value(v) => v.lock().clone().ok_or_else(moved_out),
            Slot::Shared(v) => Ok((**v).clone()),
            Slot::Ref(r) => read_resolved(r, Cell::read_value),
            Slot::Gather(g) => (g.read)(&g.refs),
        }
    }

    /// The argument's value, for a by-value parameter: moved, not copied, when this is the
    /// call's last try (no retry needs it again) and nothing else holds it (a value passed
    /// directly, or an object whose last ref was moved into the call and whose value is not
    /// lent out); a copy otherwise, as [`get`](Self::get). Read it as the body starts, before
    /// the body blocks or awaits: the generated code does.
    pub fn value(&self) -> Result<T> {
        if !context::with(|cx| cx.last_try.get()) {
            return self.get();
        }
        match &self.0 {
            Slot::Value(v) => v.lock().take().ok_or_else(moved_out),
            Slot::Ref(r) => {
                let moved = r.cell().and_then(|cell| cell.take_last_value::<T>());
                match moved {
                    Some(value) => Ok(value),
                    None => self.get(),
                }
            }
            Slot::Shared(_) | Slot::Gather(_) => self.get(),
        }
    }
}

impl<T: Value> ArgSlot<T> {
    /// The argument's value shared, not copied: the stored value itself for a ref. (A slot
    /// holding a plain value clones it into an `Arc`; [`TaskBuilder::arg_shared`] makes
    /// slots that never do.)
    ///
    /// [`TaskBuilder::arg_shared`]: crate::task::TaskBuilder::arg_shared
    pub fn shared(&self) -> Result<Arc<T>>
    where
        T: Clone,
    {
        match &self.0 {
            Slot::Value(v) => v.lock().clone().map(Arc::new).ok_or_else(moved_out),
            Slot::Shared(v) => Ok(Arc::clone(v)),
            Slot::Ref(r) => read_resolved(r, Cell::read),
            Slot::Gather(g) => (g.read)(&g.refs).map(Arc::new),
        }
    }

    /// The slot a `&T` or `Arc<T>` parameter reads from: a value is moved into an `Arc` now,
    /// so reading it never copies.
    pub(crate) fn into_shared(self) -> ArgSlot<T> {
        match self.0 {
            Slot::Value(v) => match v.into_inner() {
                Some(v) => ArgSlot(Slot::Shared(Arc::new(v))),
                None => ArgSlot(Slot::Value(Mutex::new(None))),
            },
            other => ArgSlot(other),
        }
    }

    /// The ref this argument was passed as, if it was one.
    pub(crate) fn as_ref(&self) -> Option<&ObjectRef<T>> {
        match &self.0 {
            Slot::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// How a gathered argument's value is laid out, if it was gathered.
    #[cfg(feature = "ray")]
    fn layout(&self) -> Option<Layout> {
        match &self.0 {
            Slot::Gather(g) => Some(g.layout),
            _ => None,
        }
    }

    /// The refs this argument was gathered from, if it was (empty otherwise).
    pub(crate) fn gathered(&self) -> &[ObjectRef<()>] {
        match &self.0 {
            Slot::Gather(g) => &g.refs,
            _ => &[],
        }
    }

    /// The value passed (or shared), if it was not passed as a ref; `None` after it was moved.
    #[cfg(feature = "ray")]
    pub(crate) fn with_value<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        match &self.0 {
            Slot::Value(v) => v.lock().as_ref().map(f),
            Slot::Shared(v) => Some(f(v)),
            Slot::Ref(_) | Slot::Gather(_) => None,
        }
    }
}

impl<T: Clone> Clone for ArgSlot<T> {
    fn clone(&self) -> Self {
        ArgSlot(match &self.0 {
            Slot::Value(v) => Slot::Value(Mutex::new(v.lock().clone())),
            Slot::Shared(v) => Slot::Shared(Arc::clone(v)),
            Slot::Ref(r) => Slot::Ref(r.clone()),
            Slot::Gather(g) => Slot::Gather(g.clone()),
        })
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ArgSlot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Slot::Value(v) => f.debug_tuple("Value").field(&*v.lock()).finish(),
            Slot::Shared(v) => f.debug_tuple("Shared").field(v).finish(),
            Slot::Ref(r) => f.debug_tuple("Ref").field(r).finish(),
            Slot::Gather(g) => f.debug_tuple("Gather").field(&g.refs).finish(),
        }
    }
}

/// Reads a ref argument's object, resolved before the body runs (unless the slot was made by
/// hand, when this waits for it).
fn read_resolved<T: Value, R>(
    r: &ObjectRef<T>,
    read: crate::runtime::blocking::Reader<R>,
) -> Result<R> {
    // Its runtime was checked when the task was submitted.
    let cell = r.cell().ok_or_else(|| missing(r.id()))?;
    match read(cell) {
        Some(read) => read,
        None => {
            crate::runtime::blocking::block_until([Some(cell)], 1, None);
            read(cell).expect("a resolved object never becomes pending again")
        }
    }
}

impl<T: Value> ArgSlot<T> {
    /// Wraps an argument, recording in `deps` the object it waits for, if it is a ref, and
    /// in `wire` how it travels to Ray, if the `ray` backend may run the call.
    pub(crate) fn collect(
        arg: impl IntoArg<T>,
        deps: &mut Deps,
        wire: &mut Option<WireArgs>,
    ) -> ArgSlot<T> {
        let slot = arg.into_arg();
        let mut depend_on = |place: std::result::Result<&Arc<Cell>, ObjectId>| match place {
            Ok(cell) => deps.cells.push(Arc::clone(cell)),
            Err(id) => {
                deps.missing.get_or_insert(id);
            }
        };
        if let Some(r) = slot.as_ref() {
            depend_on(r.cell_or_id());
        }
        for r in slot.gathered() {
            depend_on(r.cell_or_id());
        }
        if let Some(wire) = wire {
            wire.push(&slot);
        }
        slot
    }
}

/// The objects a task or actor call waits for before it runs.
#[derive(Default, Clone)]
pub(crate) struct Deps {
    /// The cells of its ref arguments.
    pub(crate) cells: Vec<Arc<Cell>>,
    /// The first ref argument whose object does not exist: the call fails with "not found".
    pub(crate) missing: Option<ObjectId>,
}

impl Deps {
    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.missing.is_none()
    }

    /// Counts the refs another runtime made as missing: a ref is valid only in its own.
    #[inline]
    pub(crate) fn keep_owned_by(&mut self, runtime: u32) {
        if let Some(foreign) = self.cells.iter().find(|c| c.id().owner() != runtime) {
            self.missing.get_or_insert(foreign.id());
            self.cells.retain(|c| c.id().owner() == runtime);
        }
    }
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<ObjectId> = self.cells.iter().map(|c| c.id()).collect();
        f.debug_struct("Deps")
            .field("cells", &ids)
            .field("missing", &self.missing)
            .finish()
    }
}

/// Everything a builder gathers about a call's arguments.
pub(crate) struct CallArgs {
    /// The callee's id in the registry, which the `ray` backend runs it by.
    pub(crate) registered: Option<&'static str>,
    /// The objects the call waits for.
    pub(crate) deps: Deps,
    /// The arguments as they travel, while a runtime of the process sends calls out.
    wire: Option<WireArgs>,
}

impl CallArgs {
    /// No arguments yet; recording them for the wire if a runtime of the process sends calls
    /// out.
    #[inline]
    pub(crate) fn new() -> CallArgs {
        CallArgs {
            registered: None,
            deps: Deps::default(),
            wire: WireArgs::start(),
        }
    }

    /// Adds an argument; returns the slot the body reads it from.
    #[inline]
    pub(crate) fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        ArgSlot::collect(arg, &mut self.deps, &mut self.wire)
    }

    /// Adds an argument the body borrows or shares (a `&T` or `Arc<T>` parameter).
    #[inline]
    pub(crate) fn arg_shared<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.arg(arg).into_shared()
    }

    /// The registered id and the recorded arguments, which a backend that runs the call in
    /// another process needs; `what` (`task`, `actor`, `method`) and `name` say what was not
    /// registered.
    #[cfg(feature = "ray")]
    pub(crate) fn into_wire(self, what: &str, name: &str) -> Result<(&'static str, WireArgs)> {
        match (self.registered, self.wire) {
            (Some(id), Some(wire)) => Ok((id, wire)),
            _ => Err(not_registered(what, name)),
        }
    }
}

/// The error for a call another process cannot run: it was built by hand, not by the macros.
#[cfg(feature = "ray")]
fn not_registered(what: &str, name: &str) -> Error {
    Error::InvalidArgument(format!(
        "{what} `{name}` has no registered id, so a Ray worker could not find it; on the Ray \
         backend, run #[rustyray::remote] functions and #[rustyray::actor] methods only"
    ))
}

/// Set once a runtime of this process sends calls to other processes.
static SENDING_OUT: AtomicBool = AtomicBool::new(false);

/// From now on, every call built records its arguments for the wire: a runtime of this process
/// sends calls out.
#[cfg_attr(not(feature = "ray"), allow(dead_code))]
pub(crate) fn record_for_the_wire() {
    SENDING_OUT.store(true, Ordering::Relaxed);
}

/// A value's framed encoding, and the objects its refs name.
#[cfg(feature = "ray")]
fn encode_with_refs<T: Value>(value: &T) -> (Result<Vec<u8>>, Vec<Arc<Cell>>) {
    let (encoded, kept) = crate::object_store::keeping_handles(|| frame::encode(value));
    (encoded, crate::object_store::cells_of(kept))
}

/// A call's arguments as they travel to another process, in order.
#[cfg(feature = "ray")]
pub(crate) struct WireArgs {
    pub(crate) args: Vec<WireArg>,
    /// The first argument that cannot travel (its value was moved, or does not encode).
    pub(crate) broken: Option<Error>,
}

/// Without a backend that sends calls out, nothing is ever recorded: the type is uninhabited,
/// so a builder's `Option<WireArgs>` takes no room, needs no drop, and its code compiles away.
#[cfg(not(feature = "ray"))]
pub(crate) enum WireArgs {}

/// One argument on the wire.
#[cfg_attr(not(feature = "ray"), allow(dead_code))] // read by the `ray` backend
pub(crate) enum WireArg {
    /// A value, as its framed encoding, and the objects its refs name (each once), which must
    /// travel with it.
    Bytes(Vec<u8>, Vec<Arc<Cell>>),
    /// A ref: the backend sends what stands for its object.
    Ref(ObjectRef<()>),
    /// Refs gathered into one parameter (a `Vec`, array or tuple of them) of type `type_name`,
    /// whose encoding is theirs as `layout` says.
    Gathered {
        refs: Vec<ObjectRef<()>>,
        type_name: &'static str,
        layout: Layout,
    },
}

impl WireArgs {
    /// Starts recording, if a runtime of this process sends calls out (or may: the global
    /// runtime starts on a cluster from `RUSTYRAY_ADDRESS` only when a call reaches it).
    #[inline]
    fn start() -> Option<WireArgs> {
        #[cfg(feature = "ray")]
        {
            static IN_ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            let sending = SENDING_OUT.load(Ordering::Relaxed)
                || *IN_ENV.get_or_init(crate::config::cluster_address_in_env);
            sending.then(|| WireArgs {
                args: Vec::new(),
                broken: None,
            })
        }
        #[cfg(not(feature = "ray"))]
        None
    }

    /// Records one argument: a value as its encoding, a ref as itself.
    #[cfg(not(feature = "ray"))]
    fn push<T: Value>(&mut self, _slot: &ArgSlot<T>) {
        match *self {}
    }

    /// Records one argument: a value as its encoding, a ref as itself.
    #[cfg(feature = "ray")]
    fn push<T: Value>(&mut self, slot: &ArgSlot<T>) {
        let arg = match slot.layout() {
            Some(layout) => Ok(WireArg::Gathered {
                refs: slot.gathered().to_vec(),
                type_name: std::any::type_name::<T>(),
                layout,
            }),
            None => match (slot.as_ref(), slot.with_value(encode_with_refs)) {
                (Some(r), _) => Ok(WireArg::Ref(r.clone().erased())),
                (None, Some((encoded, refs))) => encoded.map(|bytes| WireArg::Bytes(bytes, refs)),
                (None, None) => Err(Error::InvalidArgument(
                    "an argument's value was moved before the call was sent".to_owned(),
                )),
            },
        };
        match arg {
            Ok(arg) => self.args.push(arg),
            Err(error) => {
                self.broken.get_or_insert(error);
            }
        }
    }
}
