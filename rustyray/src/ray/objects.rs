//! Ray objects as a runtime's store keeps them, and the objects that travel with a value.
//!
//! An entry of a Ray runtime's store holds a [`RayObject`]: the id of an object in Ray's store
//! (holding one Ray reference while alive), or, for an object another process sent beside a
//! value, the object's bytes themselves (put into Ray the first time it must travel on).
//!
//! # Refs inside values
//!
//! A ref inside a value names its object by [`WireId`], which another process cannot read.
//! Ray's C++ API carries no owner information with an object id either, so a Ray object id
//! inside bytes cannot be fetched by the process that decodes them. So the objects travel
//! *beside* the value, after its frame, in a [`Contained`] frame that lists each object's
//! `WireId` and where its bytes are:
//! - a value passed as an argument: each object is passed to Ray as an argument of its own,
//!   after the value's ([`Source::Next`]): Ray fetches it to the worker, with no copy through
//!   the caller (and, as for any argument, runs the call once it exists);
//! - a value returned or `put`: the objects' bytes are inlined ([`Source::Inline`]), so the
//!   reader has them even after the writer (a worker) is gone; a failed object travels as its
//!   error ([`Source::Failed`]).
//!
//! The receiver enters each object in its store and in the `foreign` index under the sender's
//! id before decoding the value, so the decoded refs read those objects
//! ([`crate::object_store::foreign`]).

use std::borrow::Cow;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{errors, ffi};
use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::codec::frame;
use crate::object_store::{foreign, Cell, Object, ObjectStore, WireId};

/// A Ray object as the local store keeps it.
pub(crate) struct RayObject {
    held: Held,
    /// What produced it, for errors.
    pub(super) origin: Cow<'static, str>,
    /// What its task needs to run, when this process sent it.
    needs: Option<Needs>,
}

/// What the task (or actor call) that makes an object needs before it can run: resources on
/// a node, and the objects of its arguments. A `get` that waits long asks whether they can
/// still be had (see `nodes.rs`).
pub(super) struct Needs {
    /// The resources of one node it runs on (none if it is placed in a group, which holds
    /// them for it).
    pub(super) demand: Vec<(String, f64)>,
    /// Its arguments' objects, while something else holds them.
    pub(super) upstream: Vec<Weak<RayObject>>,
    /// Set once a demand no node ever had was warned about.
    pub(super) warned: AtomicBool,
    /// How to cancel the task (none for an actor call).
    pub(super) cancel: Option<super::cancel::Cancellable>,
}

enum Held {
    /// An object in Ray's store, by id, holding one Ray reference.
    Ray(Vec<u8>),
    /// Another process's object, sent beside a value: its bytes, and once it had to travel
    /// on, the id of the Ray object made of them (holding one reference).
    Copy {
        bytes: Vec<u8>,
        uploaded: OnceLock<Vec<u8>>,
    },
    /// Part `index` of the object of a `num_returns` call, which holds its fields' frames
    /// (`frame::join_parts`); the parts share the whole's bytes once one of them fetched them.
    /// Put into Ray's store by itself (`uploaded`) only if it must travel where a part
    /// cannot be named (inside a value, gathered into a parameter).
    Part {
        whole: Arc<RayObject>,
        index: usize,
        fetched: Arc<OnceLock<Vec<u8>>>,
        uploaded: OnceLock<Vec<u8>>,
    },
}

/// Where an object's bytes are.
pub(super) enum Place<'a> {
    /// Here: a copy of another process's object.
    Here(&'a [u8]),
    /// In Ray's store, under this id.
    Ray(&'a [u8]),
    /// Among the fields of another object (see [`Held::Part`]).
    Part {
        whole: &'a RayObject,
        index: usize,
        fetched: &'a OnceLock<Vec<u8>>,
    },
}

impl RayObject {
    /// Takes over the reference Ray gave a new object.
    pub(super) fn taking_reference(id: Vec<u8>, origin: Cow<'static, str>) -> RayObject {
        RayObject {
            held: Held::Ray(id),
            origin,
            needs: None,
        }
    }

    /// The same object, made by a task that needs `needs`.
    pub(super) fn needing(mut self, needs: Needs) -> RayObject {
        self.needs = Some(needs);
        self
    }

    /// Whether this process cancelled its task (`rustyray::cancel`).
    pub(super) fn cancelled(&self) -> bool {
        self.needs()
            .and_then(|needs| needs.cancel.as_ref())
            .is_some_and(|cancel| cancel.is_cancelled())
    }

    /// What its task needs, if this process sent it (for a part, the whole's task).
    pub(super) fn needs(&self) -> Option<&Needs> {
        match &self.held {
            Held::Part { whole, .. } => whole.needs(),
            _ => self.needs.as_ref(),
        }
    }

    /// A copy of another process's object, from its bytes.
    fn copy(bytes: Vec<u8>, origin: Cow<'static, str>) -> RayObject {
        RayObject {
            held: Held::Copy {
                bytes,
                uploaded: OnceLock::new(),
            },
            origin,
            needs: None,
        }
    }

    /// The `n` parts of `whole`, an object holding its fields' frames.
    pub(super) fn parts(whole: &Arc<RayObject>, n: usize) -> Vec<RayObject> {
        Self::parts_sharing(whole, n, Arc::new(OnceLock::new()))
    }

    /// The parts of `whole`, whose bytes `fetched` are: as many as they hold, and whether they
    /// are a stream's last (`frame::join_last_parts`).
    pub(super) fn fetched_parts(
        whole: &Arc<RayObject>,
        fetched: Vec<u8>,
    ) -> Result<(Vec<RayObject>, bool)> {
        let (n, last) = frame::count_parts(&fetched)?;
        let parts = Self::parts_sharing(whole, n, Arc::new(OnceLock::from(fetched)));
        Ok((parts, last))
    }

    fn parts_sharing(
        whole: &Arc<RayObject>,
        n: usize,
        fetched: Arc<OnceLock<Vec<u8>>>,
    ) -> Vec<RayObject> {
        (0..n)
            .map(|index| RayObject {
                held: Held::Part {
                    whole: Arc::clone(whole),
                    index,
                    fetched: Arc::clone(&fetched),
                    uploaded: OnceLock::new(),
                },
                origin: Cow::Owned(format!("{} (part {index})", whole.origin)),
                needs: None,
            })
            .collect()
    }

    /// Where its bytes are.
    pub(super) fn place(&self) -> Place<'_> {
        match &self.held {
            Held::Copy { bytes, .. } => Place::Here(bytes),
            Held::Ray(id) => Place::Ray(id),
            Held::Part {
                whole,
                index,
                fetched,
                ..
            } => Place::Part {
                whole,
                index: *index,
                fetched,
            },
        }
    }

    /// Its bytes, if this process holds them (a copy).
    pub(super) fn bytes_here(&self) -> Option<&[u8]> {
        match &self.held {
            Held::Copy { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    /// The whole object and the index, if this is a part of one.
    pub(super) fn as_part(&self) -> Option<(&Arc<RayObject>, usize)> {
        match &self.held {
            Held::Part { whole, index, .. } => Some((whole, *index)),
            _ => None,
        }
    }

    /// The id of the Ray object whose readiness is this one's: its own, or for a part the
    /// whole's (for a copy, the id it was put under, once it had to travel on).
    pub(super) fn id(&self) -> Option<&[u8]> {
        match &self.held {
            Held::Part { whole, .. } => whole.id(),
            _ => self.own_id(),
        }
    }

    /// The id of the Ray object this entry holds a reference to, if it holds one.
    pub(super) fn own_id(&self) -> Option<&[u8]> {
        match &self.held {
            Held::Ray(id) => Some(id),
            Held::Copy { uploaded, .. } | Held::Part { uploaded, .. } => {
                uploaded.get().map(Vec::as_slice)
            }
        }
    }

    /// The id of a Ray object holding it by itself, putting it into Ray's store first (once)
    /// if it is a copy or a part (a part's whole is fetched for that, waiting for it).
    pub(super) fn ray_id(&self) -> Result<&[u8]> {
        let uploaded = match &self.held {
            Held::Ray(id) => return Ok(id),
            Held::Copy { uploaded, .. } | Held::Part { uploaded, .. } => uploaded,
        };
        if let Some(id) = uploaded.get() {
            return Ok(id);
        }
        let bytes = super::waiting::fetch(self, None)?;
        let started = Instant::now();
        let id = ffi::put(&bytes).map_err(|e| errors::from_ray(&self.origin, e, started))?;
        match uploaded.set(id) {
            Ok(()) => {}
            // Another thread put it first: drop this reference, use theirs.
            Err(ours) => ffi::remove_reference(&ours),
        }
        Ok(uploaded.get().map(Vec::as_slice).unwrap_or_default())
    }
}

impl Drop for RayObject {
    fn drop(&mut self) {
        if let Some(id) = self.own_id() {
            ffi::remove_reference(id);
        }
    }
}

/// A local entry as it is measured and spilled: where its bytes are, never fetching or
/// putting anything (the store sizes every entry by encoding it). [`StoredRef`] writes the
/// same encoding without copying.
#[derive(Deserialize)]
enum Stored {
    Ray(Vec<u8>),
    Copy(Vec<u8>),
    Part(Box<(Stored, String)>, usize),
}

#[derive(Serialize)]
enum StoredRef<'a> {
    Ray(&'a [u8]),
    Copy(&'a [u8]),
    Part(Box<(StoredRef<'a>, &'a str)>, usize),
}

impl RayObject {
    fn stored(&self) -> StoredRef<'_> {
        match &self.held {
            Held::Ray(id) => StoredRef::Ray(id),
            Held::Copy { bytes, .. } => StoredRef::Copy(bytes),
            Held::Part { whole, index, .. } => {
                StoredRef::Part(Box::new((whole.stored(), &whole.origin)), *index)
            }
        }
    }

    fn from_stored(stored: Stored, origin: Cow<'static, str>) -> RayObject {
        match stored {
            Stored::Ray(id) => {
                ffi::add_reference(&id);
                RayObject::taking_reference(id, origin)
            }
            Stored::Copy(bytes) => RayObject::copy(bytes, origin),
            Stored::Part(whole, index) => {
                let (whole, whole_origin) = *whole;
                let whole = Arc::new(RayObject::from_stored(whole, whole_origin.into()));
                let mut part = RayObject::parts(&whole, index + 1).swap_remove(index);
                part.origin = origin;
                part
            }
        }
    }
}

impl Serialize for RayObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        (self.stored(), &*self.origin).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RayObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (stored, origin): (Stored, String) = Deserialize::deserialize(deserializer)?;
        Ok(RayObject::from_stored(stored, origin.into()))
    }
}

/// `object`, put into Ray's store first if this process holds it as bytes (one another
/// process sent), so that it can be sent by id.
pub(super) fn sendable(object: Arc<RayObject>) -> Result<Arc<RayObject>> {
    object.ray_id()?;
    Ok(object)
}

/// The Ray object behind a local entry.
pub(super) fn lookup<T>(r: &ObjectRef<T>) -> Result<Arc<RayObject>> {
    let id = r.id();
    let cell = r.cell().ok_or_else(|| crate::object_ref::missing(id))?;
    read(cell)
}

/// The Ray object a local entry holds.
pub(super) fn read(cell: &Arc<Cell>) -> Result<Arc<RayObject>> {
    match cell.read::<RayObject>() {
        Some(Err(Error::TypeMismatch { .. })) => Err(Error::NotFound {
            what: format!(
                "object {} on the Ray cluster (it was made by an embedded runtime)",
                cell.id()
            ),
        }),
        Some(read) => read,
        // Entries for Ray objects are made ready.
        None => Err(crate::object_ref::missing(cell.id())),
    }
}

/// Says, after a value's frame, which objects its refs name and where their bytes are.
#[derive(Serialize, Deserialize)]
struct Contained {
    objects: Vec<(WireId, Source)>,
}

#[derive(Serialize, Deserialize)]
enum Source {
    /// The next argument of the call, in order.
    Next,
    /// These bytes.
    Inline(Vec<u8>),
    /// The object failed: this error, as [`errors::encode`] writes it.
    Failed(String),
}

/// Appends to `bytes` (a value's frame) the [`Contained`] frame for the objects `cells` (the
/// ones its refs name), to travel as arguments of their own: returns those objects, in order.
pub(super) fn beside(bytes: &mut Vec<u8>, cells: &[Arc<Cell>]) -> Result<Vec<Arc<RayObject>>> {
    if cells.is_empty() {
        return Ok(Vec::new());
    }
    let mut objects = Vec::with_capacity(cells.len());
    let mut listed = Vec::with_capacity(cells.len());
    for cell in cells {
        let source = match read(cell).and_then(sendable) {
            Ok(object) => {
                objects.push(object);
                Source::Next
            }
            Err(error) => Source::Failed(errors::encode(&error)),
        };
        listed.push((WireId::of(cell.id()), source));
    }
    bytes.extend(frame::encode(&Contained { objects: listed })?);
    Ok(objects)
}

/// Appends to `bytes` (a value's frame) the [`Contained`] frame holding the bytes of the
/// objects `cells`, waiting for each (a result or a `put` carries its refs' objects with it).
pub(super) fn inline(bytes: &mut Vec<u8>, cells: &[Arc<Cell>]) -> Result<()> {
    if cells.is_empty() {
        return Ok(());
    }
    let objects = cells
        .iter()
        .map(|cell| {
            let fetched = read(cell)
                .and_then(|object| Ok(super::waiting::fetch(&object, None)?.into_owned()));
            let source = match fetched {
                Ok(bytes) => Source::Inline(bytes),
                Err(error) => Source::Failed(errors::encode(&error)),
            };
            (WireId::of(cell.id()), source)
        })
        .collect();
    bytes.extend(frame::encode(&Contained { objects })?);
    Ok(())
}

/// Enters in `store` (and in the index of other processes' objects) the objects that `rest`
/// (what follows a value's frame) says travel with the value, taking those sent as arguments
/// from `next`. Returns the entries, which the caller keeps until the value is decoded.
pub(super) fn enter(
    store: &Arc<ObjectStore>,
    rest: &[u8],
    next: &mut dyn Iterator<Item = &[u8]>,
    origin: &str,
) -> Result<Vec<Arc<Cell>>> {
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let what = format!("the objects sent with a value from `{origin}`");
    let contained: Contained = frame::decode(rest, &what, |bytes| errors::foreign(origin, bytes))?;
    let copy = |bytes: Vec<u8>| {
        let object = Object::new(RayObject::copy(bytes, Cow::Owned(origin.to_owned())));
        store
            .insert_ready(object)
            .unwrap_or_else(|error| store.insert_failed(error))
    };
    let mut cells = Vec::with_capacity(contained.objects.len());
    for (wire, source) in contained.objects {
        let cell = match source {
            Source::Next => {
                let bytes = next.next().ok_or_else(|| {
                    Error::Serialization(format!("{what} are fewer than it lists"))
                })?;
                if frame::is_framed(bytes) {
                    copy(bytes.to_vec())
                } else {
                    store.insert_failed(errors::foreign(origin, bytes))
                }
            }
            Source::Inline(bytes) => copy(bytes),
            Source::Failed(message) => {
                store.insert_failed(errors::decode(&message, origin).unwrap_or_else(|| {
                    Error::TaskFailed {
                        function: origin.to_owned(),
                        message,
                        causes: Vec::new(),
                    }
                }))
            }
        };
        foreign::enter(wire, &cell);
        cells.push(cell);
    }
    Ok(cells)
}

/// Decodes `bytes` (an object's: a frame, and the objects its refs name) as a `T`, entering
/// those objects in `store` first.
pub(super) fn decode_value<T: serde::de::DeserializeOwned + 'static>(
    store: &Arc<ObjectStore>,
    bytes: &[u8],
    origin: &str,
) -> Result<T> {
    let what = format!("the object from `{origin}`");
    let (head, rest) = frame::split(bytes)
        .map_err(|not| not.error(&what, bytes, |bytes| errors::foreign(origin, bytes)))?;
    let _entered = enter(store, rest, &mut std::iter::empty(), origin)?;
    head.decode()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value from another process names three objects: one sent inline, one sent as its
    /// error, one not sent. Decoded, the refs read the first two; the third is not found,
    /// never an object of this process that happens to have the same numbers.
    #[test]
    fn refs_decoded_from_another_process_read_the_objects_sent_with_them() {
        let store = ObjectStore::for_tests(1);
        let ids: Vec<WireId> = (1..=3)
            .map(|seq| WireId::of_another_process(1, 1, seq))
            .collect();
        // This process's own object 1:1..1:3 exist too.
        let own: Vec<_> = (0..3u64)
            .map(|v| store.insert_ready(Object::new(v)).unwrap())
            .collect();
        let payload = postcard::to_stdvec(&ids).unwrap();
        let mut bytes = frame::wrap(std::any::type_name::<Vec<ObjectRef<u64>>>(), &payload);
        let failure = Error::TaskFailed {
            function: "f".to_owned(),
            message: "boom".to_owned(),
            causes: Vec::new(),
        };
        let contained = Contained {
            objects: vec![
                (ids[0], Source::Inline(frame::encode(&7u64).unwrap())),
                (ids[1], Source::Failed(errors::encode(&failure))),
            ],
        };
        bytes.extend(frame::encode(&contained).unwrap());

        let refs: Vec<ObjectRef<u64>> = decode_value(&store, &bytes, "t").unwrap();
        let first = refs[0].cell().expect("sent inline").read::<RayObject>();
        let first = first.expect("ready").expect("a value");
        assert_eq!(first.bytes_here(), Some(&frame::encode(&7u64).unwrap()[..]));
        let second = refs[1]
            .cell()
            .expect("sent as an error")
            .read::<RayObject>();
        assert!(
            matches!(second, Some(Err(Error::TaskFailed { ref message, .. })) if message == "boom"),
            "{:?}",
            second.map(|r| r.map(|_| ()))
        );
        assert!(refs[2].cell().is_none(), "an object not sent is not found");
        let sent = refs.iter().filter_map(ObjectRef::cell);
        assert!(
            sent.clone().count() == 2
                && sent
                    .into_iter()
                    .all(|c| !own.iter().any(|o| Arc::ptr_eq(o, c)))
        );
    }

    /// Objects listed as the next arguments are taken from them, in order; fewer arguments than
    /// listed is an error, not a wrong object.
    /// An entry is measured (and spilled) by its encoding, which must never fetch or put
    /// anything: a copy and a part read back as themselves.
    #[test]
    fn entries_encode_as_where_their_bytes_are() {
        let copy = Arc::new(RayObject::copy(frame::encode(&5u64).unwrap(), "t".into()));
        let bytes = postcard::to_stdvec(&*copy).unwrap();
        let back: RayObject = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.bytes_here(), copy.bytes_here());
        let part = RayObject::parts(&copy, 2).swap_remove(1);
        let bytes = postcard::to_stdvec(&part).unwrap();
        let back: RayObject = postcard::from_bytes(&bytes).unwrap();
        let (whole, index) = back.as_part().unwrap();
        assert_eq!((whole.bytes_here(), index), (copy.bytes_here(), 1));
        assert_eq!(back.origin, part.origin);
    }

    #[test]
    fn objects_sent_as_arguments_are_taken_in_order() {
        let store = ObjectStore::for_tests(1);
        let ids: Vec<WireId> = (1..=2)
            .map(|seq| WireId::of_another_process(2, 4, seq))
            .collect();
        let contained = frame::encode(&Contained {
            objects: vec![(ids[0], Source::Next), (ids[1], Source::Next)],
        })
        .unwrap();
        let (a, b) = (frame::encode(&1u64).unwrap(), frame::encode(&2u64).unwrap());
        let mut next = [&a[..], &b[..]].into_iter();
        let cells = enter(&store, &contained, &mut next, "t").unwrap();
        assert_eq!(cells.len(), 2);
        let read = |i: usize| foreign::find(&ids[i]).unwrap().read::<RayObject>();
        assert_eq!(read(1).unwrap().unwrap().bytes_here(), Some(&b[..]));
        assert_eq!(read(0).unwrap().unwrap().bytes_here(), Some(&a[..]));
        let err = enter(&store, &contained, &mut [&a[..]].into_iter(), "t").unwrap_err();
        assert!(err.to_string().contains("fewer"), "{err}");
    }
}
