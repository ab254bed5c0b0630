//! A call's arguments as they go to Ray: values as bytes (with the objects their refs name
//! beside them), refs as the Ray objects they name, and refs gathered into one parameter.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ffi;
use super::objects::{self, lookup, sendable, RayObject};
use crate::call_args::{WireArg, WireArgs};
use crate::error::Result;
use crate::object_store::codec::frame;

/// A call's arguments as Ray takes them: values as bytes, refs as their Ray objects.
pub(super) struct RayArgs {
    args: Vec<RayArg>,
}

enum RayArg {
    Bytes(Vec<u8>),
    Object(Arc<RayObject>),
}

impl RayArgs {
    /// The recorded arguments with each ref looked up; the first that cannot travel fails it.
    pub(super) fn from_wire(wire: WireArgs) -> Result<RayArgs> {
        if let Some(error) = wire.broken {
            return Err(error);
        }
        let mut args = Vec::with_capacity(wire.args.len());
        for arg in wire.args {
            match arg {
                WireArg::Bytes(mut bytes, refs) => {
                    // The objects its refs name travel as the arguments after it.
                    let objects = objects::beside(&mut bytes, &refs)?;
                    args.push(RayArg::Bytes(bytes));
                    args.extend(objects.into_iter().map(RayArg::Object));
                }
                WireArg::Ref(r) => {
                    let object = lookup(&r)?;
                    match object.as_part() {
                        // A part of a `num_returns` object: the whole goes, after a frame
                        // that says which part the worker takes.
                        Some((whole, index)) => {
                            args.push(RayArg::Bytes(frame::encode(&TakePart {
                                index: index as u32,
                            })?));
                            args.push(RayArg::Object(sendable(Arc::clone(whole))?));
                        }
                        None => args.push(RayArg::Object(sendable(object)?)),
                    }
                }
                WireArg::Gathered {
                    refs,
                    type_name,
                    layout,
                } => {
                    // The objects travel as arguments of their own, so Ray fetches each to the
                    // worker, after a frame that says how to rebuild the parameter from them.
                    let marker = Gathered {
                        type_name: type_name.to_owned(),
                        counted: layout.counted,
                        parts: (0..refs.len())
                            .map(|i| (layout.part)(i).to_owned())
                            .collect(),
                    };
                    args.push(RayArg::Bytes(frame::encode(&marker)?));
                    for r in &refs {
                        args.push(RayArg::Object(sendable(lookup(r)?)?));
                    }
                }
            }
        }
        Ok(RayArgs { args })
    }

    /// The Ray objects among the arguments.
    pub(super) fn objects(&self) -> impl Iterator<Item = &Arc<RayObject>> {
        self.args.iter().filter_map(|arg| match arg {
            RayArg::Bytes(_) => None,
            RayArg::Object(object) => Some(object),
        })
    }

    /// The arguments as the shim takes them, after `policy` (a framed [`TaskPolicy`] or
    /// [`ActorPolicy`]) where the entry point expects one.
    pub(super) fn ffi_args(&self, policy: Option<&[u8]>) -> Vec<ffi::Arg> {
        let policy = policy.map(ffi::Arg::value);
        let args = self.args.iter().map(|arg| match arg {
            RayArg::Bytes(bytes) => ffi::Arg::value(bytes),
            RayArg::Object(object) => ffi::Arg::object(object.own_id().unwrap_or_default()),
        });
        policy.into_iter().chain(args).collect()
    }
}

/// Sent ahead of an object that holds a `num_returns` call's fields: the argument is part
/// `index` of it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TakePart {
    pub(crate) index: u32,
}

/// Sent ahead of the objects of a gathered argument (refs passed for one `Vec`, array or tuple
/// parameter): the worker rebuilds the parameter's frame, of type `type_name`, from the
/// objects' frames, which must be of the `parts` types, after their count if `counted`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gathered {
    pub(crate) type_name: String,
    pub(crate) counted: bool,
    pub(crate) parts: Vec<String>,
}
