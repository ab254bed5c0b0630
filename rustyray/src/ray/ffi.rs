//! The raw interface to the C++ shim (`rustyray/ray/shim.cc`), and safe wrappers around it.
//!
//! The only `unsafe` code of RustyRay lives here and in `os.rs` (two C library calls). No C++
//! exception crosses the boundary: every function of the shim that can fail catches them and
//! reports an error kind plus a message, the others catch and print them or are `noexcept`;
//! every callback RustyRay gives the shim catches panics for the same reason.

#![allow(unsafe_code)]
// The callbacks are `pub` so that their symbols stay visible to the shim in any link.
#![allow(unreachable_pub)]

use std::ffi::c_void;

/// Borrowed bytes, as the shim sees them.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Slice {
    data: *const u8,
    len: usize,
}

impl Slice {
    pub(crate) fn of(bytes: &[u8]) -> Slice {
        Slice {
            data: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// # Safety
    /// The slice must point to `len` readable bytes that outlive `'a`.
    unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees `data` points to `len` live bytes.
            unsafe { std::slice::from_raw_parts(self.data, self.len) }
        }
    }
}

/// One task argument: bytes passed by value, or the id of a Ray object passed by ref.
#[repr(C)]
pub(crate) struct Arg {
    is_ref: i32,
    bytes: Slice,
}

impl Arg {
    pub(crate) fn value(bytes: &[u8]) -> Arg {
        Arg {
            is_ref: 0,
            bytes: Slice::of(bytes),
        }
    }

    pub(crate) fn object(id: &[u8]) -> Arg {
        Arg {
            is_ref: 1,
            bytes: Slice::of(id),
        }
    }
}

/// One resource demand.
#[repr(C)]
pub(crate) struct Resource {
    name: Slice,
    amount: f64,
}

impl Resource {
    pub(crate) fn new(name: &str, amount: f64) -> Resource {
        Resource {
            name: Slice::of(name.as_bytes()),
            amount,
        }
    }
}

/// An opaque `std::string` owned by the C++ side.
#[repr(C)]
pub(crate) struct CxxString {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn rr_string_new() -> *mut CxxString;
    fn rr_string_free(s: *mut CxxString);
    fn rr_string_data(s: *const CxxString) -> *const u8;
    fn rr_string_len(s: *const CxxString) -> usize;
    fn rr_string_assign(s: *mut CxxString, data: *const u8, len: usize);

    fn rr_init(
        address: Slice,
        paths: *const Slice,
        npaths: usize,
        namespace: Slice,
        node_ip: Slice,
        auth_token: Slice,
        error: *mut CxxString,
    ) -> i32;
    fn rr_shutdown();
    fn rr_add_reference(id: Slice);
    fn rr_remove_reference(id: Slice);
    fn rr_put(bytes: Slice, out_id: *mut CxxString, error: *mut CxxString) -> i32;
    fn rr_get(id: Slice, timeout_ms: i32, out: *mut CxxString, error: *mut CxxString) -> i32;
    fn rr_wait(
        ids: *const Slice,
        nids: usize,
        num_objects: i32,
        timeout_ms: i32,
        ready: *mut u8,
        error: *mut CxxString,
    ) -> i32;
    fn rr_submit(
        id: Slice,
        args: *const Arg,
        nargs: usize,
        resources: *const Resource,
        nresources: usize,
        name: Slice,
        group: Slice,
        bundle: i32,
        out_id: *mut CxxString,
        error: *mut CxxString,
    ) -> i32;
    fn rr_create_actor(
        id: Slice,
        args: *const Arg,
        nargs: usize,
        resources: *const Resource,
        nresources: usize,
        name: Slice,
        max_restarts: i32,
        max_concurrency: i32,
        group: Slice,
        bundle: i32,
        out_actor: *mut CxxString,
        error: *mut CxxString,
    ) -> i32;
    fn rr_call_actor(
        actor: Slice,
        id: Slice,
        args: *const Arg,
        nargs: usize,
        out_id: *mut CxxString,
        error: *mut CxxString,
    ) -> i32;
    fn rr_get_actor(name: Slice, out_actor: *mut CxxString, error: *mut CxxString) -> i32;
    fn rr_kill_actor(actor: Slice, error: *mut CxxString) -> i32;
    fn rr_serialize_actor(actor: Slice, out: *mut CxxString, error: *mut CxxString) -> i32;
    fn rr_register_actor(handle: Slice, out_actor: *mut CxxString, error: *mut CxxString) -> i32;
    fn rr_nodes(out: *mut CxxString, error: *mut CxxString) -> i32;
    fn rr_create_placement_group(
        name: Slice,
        strategy: i32,
        resources: *const Resource,
        bundle_sizes: *const usize,
        nbundles: usize,
        out_id: *mut CxxString,
        error: *mut CxxString,
    ) -> i32;
    fn rr_remove_placement_group(id: Slice, error: *mut CxxString) -> i32;
    fn rr_get_placement_group(
        name: Slice,
        out_id: *mut CxxString,
        strategy: *mut i32,
        nbundles: *mut usize,
        error: *mut CxxString,
    ) -> i32;
}

/// An owned `std::string` to receive output.
struct Out(*mut CxxString);

impl Out {
    fn new() -> Out {
        // SAFETY: allocates a fresh std::string, freed in Drop.
        Out(unsafe { rr_string_new() })
    }

    fn bytes(&self) -> Vec<u8> {
        // SAFETY: the string is alive; data/len describe its contents.
        unsafe {
            let data = rr_string_data(self.0);
            let len = rr_string_len(self.0);
            Slice { data, len }.as_bytes().to_vec()
        }
    }

    /// The text of a message from Ray: as it is when it is text, else the readable part of the
    /// binary record it is (see [`frame::readable`]).
    fn text(&self) -> String {
        let bytes = self.bytes();
        match std::str::from_utf8(&bytes) {
            Ok(text) if !text.contains('\0') => text.to_owned(),
            _ => crate::object_store::codec::frame::readable(&bytes),
        }
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        // SAFETY: allocated by rr_string_new and freed once.
        unsafe { rr_string_free(self.0) }
    }
}

/// How a shim call failed: the kind reported by the shim and Ray's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    TaskFailed,
    ActorDied,
    WorkerDied,
    Timeout,
    ObjectLost,
    Other,
}

pub(crate) type Outcome<T> = std::result::Result<T, (Failure, String)>;

fn outcome<T>(code: i32, error: &Out, value: impl FnOnce() -> T) -> Outcome<T> {
    let failure = match code {
        0 => return Ok(value()),
        1 => Failure::TaskFailed,
        2 => Failure::ActorDied,
        3 => Failure::WorkerDied,
        4 => Failure::Timeout,
        5 => Failure::ObjectLost,
        _ => Failure::Other,
    };
    Err((failure, error.text()))
}

pub(crate) fn init(
    address: &str,
    code_search_path: &[String],
    namespace: &str,
    node_ip: &str,
    auth_token: &str,
) -> Outcome<()> {
    let paths: Vec<Slice> = code_search_path
        .iter()
        .map(|p| Slice::of(p.as_bytes()))
        .collect();
    let error = Out::new();
    // SAFETY: every slice borrows data alive for the call.
    let code = unsafe {
        rr_init(
            Slice::of(address.as_bytes()),
            paths.as_ptr(),
            paths.len(),
            Slice::of(namespace.as_bytes()),
            Slice::of(node_ip.as_bytes()),
            Slice::of(auth_token.as_bytes()),
            error.0,
        )
    };
    outcome(code, &error, || ())
}

pub(crate) fn shutdown() {
    // SAFETY: no arguments; a no-op when Ray is not initialized.
    unsafe { rr_shutdown() }
}

pub(crate) fn add_reference(id: &[u8]) {
    // SAFETY: the slice is alive for the call.
    unsafe { rr_add_reference(Slice::of(id)) }
}

pub(crate) fn remove_reference(id: &[u8]) {
    // SAFETY: the slice is alive for the call.
    unsafe { rr_remove_reference(Slice::of(id)) }
}

pub(crate) fn put(bytes: &[u8]) -> Outcome<Vec<u8>> {
    let (id, error) = (Out::new(), Out::new());
    // SAFETY: the slice and both strings are alive for the call.
    let code = unsafe { rr_put(Slice::of(bytes), id.0, error.0) };
    outcome(code, &error, || id.bytes())
}

pub(crate) fn get(id: &[u8], timeout_ms: i32) -> Outcome<Vec<u8>> {
    let (out, error) = (Out::new(), Out::new());
    // SAFETY: the slice and both strings are alive for the call.
    let code = unsafe { rr_get(Slice::of(id), timeout_ms, out.0, error.0) };
    outcome(code, &error, || out.bytes())
}

pub(crate) fn wait(ids: &[&[u8]], num_objects: usize, timeout_ms: i32) -> Outcome<Vec<bool>> {
    let slices: Vec<Slice> = ids.iter().map(|id| Slice::of(id)).collect();
    let mut ready = vec![0u8; ids.len()];
    let error = Out::new();
    let num = i32::try_from(num_objects).unwrap_or(i32::MAX);
    // SAFETY: `ready` has one byte per id; the slices are alive for the call.
    let code = unsafe {
        rr_wait(
            slices.as_ptr(),
            slices.len(),
            num,
            timeout_ms,
            ready.as_mut_ptr(),
            error.0,
        )
    };
    outcome(code, &error, || ready.iter().map(|&r| r != 0).collect())
}

/// Where a task or actor runs: bundle `bundle` of the placement group with Ray id `group`
/// (`-1`: any of its bundles). An empty `group` places it nowhere in particular.
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    pub(crate) group: &'a [u8],
    pub(crate) bundle: i32,
}

impl Place<'_> {
    pub(crate) const ANYWHERE: Place<'static> = Place {
        group: &[],
        bundle: -1,
    };
}

pub(crate) fn submit(
    id: &str,
    args: &[Arg],
    resources: &[Resource],
    name: &str,
    place: Place<'_>,
) -> Outcome<Vec<u8>> {
    let (out, error) = (Out::new(), Out::new());
    // SAFETY: the args and resources borrow data alive for the call (see their builders).
    let code = unsafe {
        rr_submit(
            Slice::of(id.as_bytes()),
            args.as_ptr(),
            args.len(),
            resources.as_ptr(),
            resources.len(),
            Slice::of(name.as_bytes()),
            Slice::of(place.group),
            place.bundle,
            out.0,
            error.0,
        )
    };
    outcome(code, &error, || out.bytes())
}

pub(crate) struct ActorSpec<'a> {
    pub(crate) constructor: &'a str,
    pub(crate) args: &'a [Arg],
    pub(crate) resources: &'a [Resource],
    pub(crate) name: &'a str,
    pub(crate) max_restarts: i32,
    pub(crate) max_concurrency: i32,
    pub(crate) place: Place<'a>,
}

pub(crate) fn create_actor(spec: &ActorSpec<'_>) -> Outcome<Vec<u8>> {
    let (out, error) = (Out::new(), Out::new());
    // SAFETY: everything the spec borrows is alive for the call.
    let code = unsafe {
        rr_create_actor(
            Slice::of(spec.constructor.as_bytes()),
            spec.args.as_ptr(),
            spec.args.len(),
            spec.resources.as_ptr(),
            spec.resources.len(),
            Slice::of(spec.name.as_bytes()),
            spec.max_restarts,
            spec.max_concurrency,
            Slice::of(spec.place.group),
            spec.place.bundle,
            out.0,
            error.0,
        )
    };
    outcome(code, &error, || out.bytes())
}

pub(crate) fn call_actor(actor: &[u8], method: &str, args: &[Arg]) -> Outcome<Vec<u8>> {
    let (out, error) = (Out::new(), Out::new());
    // SAFETY: the slices and args are alive for the call.
    let code = unsafe {
        rr_call_actor(
            Slice::of(actor),
            Slice::of(method.as_bytes()),
            args.as_ptr(),
            args.len(),
            out.0,
            error.0,
        )
    };
    outcome(code, &error, || out.bytes())
}

pub(crate) fn get_actor(name: &str) -> Outcome<Option<Vec<u8>>> {
    let (out, error) = (Out::new(), Out::new());
    // SAFETY: the slice and strings are alive for the call.
    let code = unsafe { rr_get_actor(Slice::of(name.as_bytes()), out.0, error.0) };
    outcome(code, &error, || {
        Some(out.bytes()).filter(|id| !id.is_empty())
    })
}

pub(crate) fn kill_actor(actor: &[u8]) -> Outcome<()> {
    let error = Out::new();
    // SAFETY: the slice and string are alive for the call.
    let code = unsafe { rr_kill_actor(Slice::of(actor), error.0) };
    outcome(code, &error, || ())
}

/// Ray's serialized handle of actor `actor`: what another process needs to call it.
pub(crate) fn serialize_actor(actor: &[u8]) -> Outcome<Vec<u8>> {
    let (out, error) = (Out::new(), Out::new());
    // SAFETY: the slice and strings are alive for the call.
    let code = unsafe { rr_serialize_actor(Slice::of(actor), out.0, error.0) };
    outcome(code, &error, || out.bytes())
}

/// Registers a handle from [`serialize_actor`] with this process; returns the actor's id.
pub(crate) fn register_actor(handle: &[u8]) -> Outcome<Vec<u8>> {
    let (out, error) = (Out::new(), Out::new());
    // SAFETY: the slice and strings are alive for the call.
    let code = unsafe { rr_register_actor(Slice::of(handle), out.0, error.0) };
    outcome(code, &error, || out.bytes())
}

/// Every node the cluster has known, alive or dead, each as Ray's serialized `GcsNodeInfo`.
pub(crate) fn nodes() -> Outcome<Vec<Vec<u8>>> {
    let (out, error) = (Out::new(), Out::new());
    // SAFETY: the strings are alive for the call.
    let code = unsafe { rr_nodes(out.0, error.0) };
    outcome(code, &error, || {
        let bytes = out.bytes();
        let mut nodes = Vec::new();
        let mut rest = &bytes[..];
        while let Some((len, after)) = rest.split_first_chunk::<4>() {
            let len = (u32::from_le_bytes(*len) as usize).min(after.len());
            nodes.push(after[..len].to_vec());
            rest = &after[len..];
        }
        nodes
    })
}

/// Creates a placement group with Ray's strategy number `strategy`, whose bundle `i` holds
/// the next `bundle_sizes[i]` of `resources`.
pub(crate) fn create_placement_group(
    name: &str,
    strategy: i32,
    resources: &[Resource],
    bundle_sizes: &[usize],
) -> Outcome<Vec<u8>> {
    assert_eq!(bundle_sizes.iter().sum::<usize>(), resources.len());
    let (out, error) = (Out::new(), Out::new());
    // SAFETY: `resources` holds what `bundle_sizes` counts (checked above); all are alive.
    let code = unsafe {
        rr_create_placement_group(
            Slice::of(name.as_bytes()),
            strategy,
            resources.as_ptr(),
            bundle_sizes.as_ptr(),
            bundle_sizes.len(),
            out.0,
            error.0,
        )
    };
    outcome(code, &error, || out.bytes())
}

pub(crate) fn remove_placement_group(id: &[u8]) -> Outcome<()> {
    let error = Out::new();
    // SAFETY: the slice and string are alive for the call.
    let code = unsafe { rr_remove_placement_group(Slice::of(id), error.0) };
    outcome(code, &error, || ())
}

/// The live group named `name`: its id, Ray's strategy number and its bundle count.
pub(crate) fn get_placement_group(name: &str) -> Outcome<Option<(Vec<u8>, i32, usize)>> {
    let (out, error) = (Out::new(), Out::new());
    let (mut strategy, mut bundles) = (0i32, 0usize);
    // SAFETY: the slice, strings and out-parameters are alive for the call.
    let code = unsafe {
        rr_get_placement_group(
            Slice::of(name.as_bytes()),
            out.0,
            &mut strategy,
            &mut bundles,
            error.0,
        )
    };
    outcome(code, &error, || {
        Some(out.bytes())
            .filter(|id| !id.is_empty())
            .map(|id| (id, strategy, bundles))
    })
}

// --- Callbacks the shim calls on a worker ---------------------------------------------------

/// Writes `bytes` into a `std::string` the shim passed in.
fn assign(out: *mut CxxString, bytes: &[u8]) {
    // SAFETY: `out` is a live std::string the shim owns for the duration of the callback.
    unsafe { rr_string_assign(out, bytes.as_ptr(), bytes.len()) }
}

/// Reads the shim's argument slices.
///
/// # Safety
/// `args` must point to `nargs` slices that stay valid for `'a`.
unsafe fn arg_slices<'a>(args: *const Slice, nargs: usize) -> Vec<&'a [u8]> {
    if nargs == 0 {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe {
        std::slice::from_raw_parts(args, nargs)
            .iter()
            .map(|s| s.as_bytes())
            .collect()
    }
}

/// Writes the outcome of a callback to `out` and returns the shim's status code.
fn report(
    out: *mut CxxString,
    id: &str,
    result: std::thread::Result<Result<Vec<u8>, String>>,
) -> i32 {
    match result {
        Ok(Ok(bytes)) => {
            assign(out, &bytes);
            0
        }
        Ok(Err(message)) => {
            assign(out, message.as_bytes());
            1
        }
        Err(panic) => {
            assign(out, panic_message(id, &*panic).as_bytes());
            1
        }
    }
}

/// What a callback reports for a panic that escaped the worker's own handling.
fn panic_message(id: &str, payload: &(dyn std::any::Any + Send)) -> String {
    super::errors::encode(&crate::Error::panicked(id, payload))
}

fn id_text(id: &[u8]) -> String {
    String::from_utf8_lossy(id).into_owned()
}

/// Runs a remote function for a Ray worker.
///
/// # Safety
/// Called by the shim with valid slices and a live output string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rustyray_worker_run_task(
    id: Slice,
    args: *const Slice,
    nargs: usize,
    out: *mut CxxString,
) -> i32 {
    // SAFETY: the shim passes valid slices for the duration of the call.
    let (id, args) = unsafe { (id_text(id.as_bytes()), arg_slices(args, nargs)) };
    let result = std::panic::catch_unwind(|| super::worker::run_task(&id, &args));
    report(out, &id, result)
}

/// Builds an actor for a Ray worker; `state` receives it.
///
/// # Safety
/// Called by the shim with valid slices, a valid `state` slot and a live error string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rustyray_worker_construct(
    id: Slice,
    args: *const Slice,
    nargs: usize,
    state: *mut *mut c_void,
    error: *mut CxxString,
) -> i32 {
    // SAFETY: the shim passes valid slices for the duration of the call.
    let (id, args) = unsafe { (id_text(id.as_bytes()), arg_slices(args, nargs)) };
    match std::panic::catch_unwind(|| super::worker::construct(&id, &args)) {
        Ok(Ok(actor)) => {
            // SAFETY: `state` is a valid slot; the box is given back in drop_actor.
            unsafe { *state = Box::into_raw(actor).cast() };
            0
        }
        Ok(Err(message)) => {
            assign(error, message.as_bytes());
            1
        }
        Err(panic) => {
            assign(error, panic_message(&id, &*panic).as_bytes());
            1
        }
    }
}

/// Calls an actor method for a Ray worker.
///
/// # Safety
/// `state` must come from `rustyray_worker_construct` and not be dropped yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rustyray_worker_call(
    state: *mut c_void,
    id: Slice,
    args: *const Slice,
    nargs: usize,
    out: *mut CxxString,
) -> i32 {
    // SAFETY: `state` is the box made by construct, alive until drop_actor.
    let actor = unsafe { &*state.cast::<super::worker::WorkerActor>() };
    // SAFETY: the shim passes valid slices for the duration of the call.
    let (id, args) = unsafe { (id_text(id.as_bytes()), arg_slices(args, nargs)) };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        super::worker::call(actor, &id, &args)
    }));
    report(out, &id, result)
}

/// Drops an actor's state.
///
/// # Safety
/// `state` must come from `rustyray_worker_construct`, and is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rustyray_worker_drop_actor(state: *mut c_void) {
    if !state.is_null() {
        // SAFETY: made by Box::into_raw in construct; dropped once.
        let actor = unsafe { Box::from_raw(state.cast::<super::worker::WorkerActor>()) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(actor)));
    }
}

/// Runs a remote function with JSON arguments, for callers in other languages.
///
/// # Safety
/// Called by the shim with valid slices and a live output string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rustyray_worker_run_json(
    id: Slice,
    json: Slice,
    out: *mut CxxString,
) -> i32 {
    // SAFETY: the shim passes valid slices for the duration of the call.
    let (id, json) = unsafe { (id_text(id.as_bytes()), json.as_bytes()) };
    let result = std::panic::catch_unwind(|| super::worker::run_json(&id, json));
    report(out, &id, result)
}
