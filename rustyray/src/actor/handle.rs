//! Actor ids, the `Actor` trait and the counted, serializable `ActorHandle`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::counted::{self, Counted, Handle};
use crate::error::Result;
use crate::runtime::RuntimeCore;

use super::CallBuilder;

/// The identity of an actor: its runtime and a sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActorId {
    pub(crate) owner: u32,
    pub(crate) seq: u64,
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor {}:{}", self.owner, self.seq)
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A type that runs as an actor.
///
/// `#[rustyray::actor]` on a struct implements it; by hand, it is one line:
///
/// ```
/// struct Logger;
/// impl rustyray::actor::Actor for Logger {
///     type Methods = rustyray::actor::NoMethods;
/// }
/// ```
pub trait Actor: Send + Sized + 'static {
    /// What [`ActorHandle<Self>`] dereferences to: the actor's methods as remote calls.
    /// `#[rustyray::actor]` generates it (`CounterMethods` for `struct Counter`).
    type Methods: From<ActorId> + Send + Sync + 'static;
}

/// The [`Actor::Methods`] of an actor whose calls are all made with [`ActorHandle::call`].
#[derive(Debug)]
pub struct NoMethods(#[allow(dead_code)] ActorId);

impl From<ActorId> for NoMethods {
    fn from(id: ActorId) -> Self {
        NoMethods(id)
    }
}

/// A handle to an actor of type `A`: cheap to clone, `Send`, serializable, usable from any
/// thread, task or other actor of the runtime that made it.
///
/// It dereferences to `A`'s generated methods, so `handle.incr(5)` works with no trait to
/// import. Handles are counted: an unnamed actor is freed once no handle to it remains.
pub struct ActorHandle<A: Actor> {
    pub(super) id: ActorId,
    pub(super) methods: A::Methods,
    pub(super) holder: Handle<ActorId>,
}

impl Counted for ActorId {
    fn retain(self, shared: &RuntimeCore) -> bool {
        shared.actors().retain(self)
    }

    fn release(self, shared: &RuntimeCore) {
        shared.actors().release(self)
    }
}

impl<A: Actor> std::ops::Deref for ActorHandle<A> {
    type Target = A::Methods;

    fn deref(&self) -> &A::Methods {
        &self.methods
    }
}

impl<A: Actor> ActorHandle<A> {
    /// Takes over the count the table gave a new (or newly retained) actor.
    pub(crate) fn from_new_entry(shared: &Arc<RuntimeCore>, id: ActorId) -> ActorHandle<A> {
        ActorHandle {
            id,
            methods: A::Methods::from(id),
            holder: counted::taking_count(shared, id),
        }
    }

    /// A new counted handle for an id read back from bytes; uncounted if the actor is gone.
    fn retained(id: ActorId) -> ActorHandle<A> {
        ActorHandle {
            id,
            methods: A::Methods::from(id),
            holder: counted::retained(id),
        }
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Starts a call of `method` (its name in errors); add arguments, then `spawn` it.
    pub fn call(&self, method: impl Into<Cow<'static, str>>) -> CallBuilder<A> {
        CallBuilder::new(self.id, method)
    }
}

impl<A: Actor> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        ActorHandle {
            id: self.id,
            methods: A::Methods::from(self.id),
            holder: self.holder.clone(),
        }
    }
}

impl<A: Actor> PartialEq for ActorHandle<A> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<A: Actor> Eq for ActorHandle<A> {}

impl<A: Actor> fmt::Debug for ActorHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ActorHandle<{}>({})",
            std::any::type_name::<A>(),
            self.id
        )
    }
}

/// An actor handle as it is serialized (inside an argument, a result or a stored value).
#[derive(Serialize, Deserialize)]
enum HandleWire {
    /// An actor of a runtime of this process, by its runtime's numbers: found again only here.
    Here(crate::object_store::WireId),
    /// An actor on a cluster: the cluster's own serialized handle, which any process of the
    /// cluster can register and call, and the actor's class.
    Cluster { handle: Vec<u8>, class: String },
}

impl<A: Actor> Serialize for ActorHandle<A> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let portable =
            crate::runtime::current_if_any().and_then(|shared| shared.actors().portable(self.id));
        if let Some(portable) = portable {
            let (handle, class) = portable.map_err(crate::object_store::codec::custom_ser)?;
            return HandleWire::Cluster { handle, class }.serialize(serializer);
        }
        if let Some(holder) = &self.holder {
            crate::object_store::note_serialized(|| Arc::clone(holder) as _);
        }
        let id = crate::object_store::WireId::local(self.id.owner, self.id.seq);
        HandleWire::Here(id).serialize(serializer)
    }
}

impl<'de, A: Actor> Deserialize<'de> for ActorHandle<A> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match HandleWire::deserialize(deserializer)? {
            HandleWire::Here(id) => {
                let (owner, seq, local) = id.read();
                // A handle from another process names no actor here: an id of no runtime
                // (runtimes are numbered from 1) makes every use of it report it as not found.
                let owner = if local { owner } else { 0 };
                Ok(ActorHandle::retained(ActorId { owner, seq }))
            }
            HandleWire::Cluster { handle, class } => {
                let shared = crate::runtime::current();
                let id = shared
                    .backend()
                    .enter_actor(&shared, &handle, class)
                    .map_err(crate::object_store::codec::custom)?;
                Ok(ActorHandle::from_new_entry(&shared, id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Runtime};

    struct Far;
    impl Actor for Far {
        type Methods = NoMethods;
    }

    /// A handle to an actor of a Ray cluster that reaches an embedded runtime (inside a value
    /// read back from somewhere) fails to decode, saying so, instead of naming a local actor.
    #[test]
    fn a_cluster_handle_in_an_embedded_runtime_is_not_found() {
        let rt = Runtime::new(Config::default().num_cpus(1)).unwrap();
        let _guard = rt.enter();
        let wire = HandleWire::Cluster {
            handle: vec![1, 2, 3],
            class: "Far".to_owned(),
        };
        let bytes = postcard::to_stdvec(&wire).unwrap();
        let framed = crate::object_store::codec::frame::wrap(
            std::any::type_name::<ActorHandle<Far>>(),
            &bytes,
        );
        let err = crate::object_store::codec::frame::decode::<ActorHandle<Far>>(
            &framed,
            "a value",
            |_| unreachable!("framed"),
        )
        .expect_err("an embedded runtime cannot call a cluster's actor")
        .to_string();
        assert!(err.contains("Far of a Ray cluster"), "{err}");
        let here = postcard::to_stdvec(&HandleWire::Here(crate::object_store::WireId::local(
            rt.id(),
            1,
        )))
        .unwrap();
        let handle: ActorHandle<Far> = postcard::from_bytes(&here).unwrap();
        assert_eq!(
            handle.id().owner,
            rt.id(),
            "a handle of this process decodes as before"
        );
    }
}
