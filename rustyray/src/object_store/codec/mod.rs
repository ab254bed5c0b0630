//! The one home of encoding: values in postcard, with byte vectors and strings encoded and
//! decoded in bulk and sizes counted without encoding (this file); the frame around a value
//! that leaves the process (`frame.rs`); and how a registered entry point reads its arguments
//! and writes its result: postcard, JSON or frames (`entry.rs`).

use std::any::{Any, TypeId};
use std::sync::Arc;

use serde::Serialize;

use super::Value;

pub(crate) mod entry;
// Used by the `ray` backend; tested without it too.
#[cfg_attr(not(feature = "ray"), allow(dead_code))]
pub(crate) mod frame;
pub(crate) mod protobuf;
#[cfg_attr(not(feature = "ray"), allow(dead_code))]
pub(crate) mod raw;
use crate::error::{Error, Result};

/// The length of `value`'s postcard encoding, counted without allocating.
pub(super) fn encoded_size<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default()).unwrap_or(0)
}

/// The encoded size of common bulk types, in O(1): a length prefix (a varint) plus the
/// elements. Other types are measured by a counting pass over their encoding.
/// The type tests are on `T` itself, so they fold away for every other type.
pub(super) fn bulk_size<T: 'static>(value: &T) -> Option<usize> {
    pub(super) fn is<T: 'static, U: 'static>() -> bool {
        TypeId::of::<T>() == TypeId::of::<U>()
    }
    let value = value as &dyn Any;
    pub(super) fn prefixed(len: usize, bytes: usize) -> usize {
        let varint = (usize::BITS - len.max(1).leading_zeros()).div_ceil(7) as usize;
        varint + bytes
    }
    macro_rules! fixed {
        ($($t:ty),*) => {$(
            if is::<T, Vec<$t>>() {
                let v = value.downcast_ref::<Vec<$t>>()?;
                return Some(prefixed(v.len(), v.len() * std::mem::size_of::<$t>()));
            }
        )*};
    }
    if is::<T, Vec<u8>>() {
        let v = value.downcast_ref::<Vec<u8>>()?;
        return Some(prefixed(v.len(), v.len()));
    }
    if is::<T, String>() {
        let s = value.downcast_ref::<String>()?;
        return Some(prefixed(s.len(), s.len()));
    }
    // Floats are written whole; integers wider than a byte are varints, at most this long.
    fixed!(f32, f64);
    None
}

/// postcard's length prefix: an unsigned LEB128 varint.
pub(super) fn write_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(super) fn read_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut len = 0usize;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        len |= ((byte & 0x7f) as usize).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((len, &bytes[i + 1..]));
        }
    }
    None
}

/// Bulk encodings of byte vectors and strings, identical to postcard's but one copy instead
/// of one call per byte.
pub(super) fn encode_bulk(value: &dyn Any) -> Option<Vec<u8>> {
    let bytes: &[u8] = if let Some(v) = value.downcast_ref::<Vec<u8>>() {
        v
    } else {
        value.downcast_ref::<String>()?.as_bytes()
    };
    let mut out = Vec::with_capacity(bytes.len() + 10);
    write_len(&mut out, bytes.len());
    out.extend_from_slice(bytes);
    Some(out)
}

/// Decodes a value from its postcard encoding, in bulk for byte vectors and strings.
pub(super) fn decode<T: Value>(bytes: &[u8]) -> std::result::Result<Arc<T>, String> {
    let bulk = |bytes: &[u8]| -> std::result::Result<Vec<u8>, String> {
        let (len, rest) = read_len(bytes).ok_or("a bad length prefix")?;
        rest.get(..len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "a truncated payload".to_owned())
    };
    let any: Box<dyn Any> = if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        Box::new(bulk(bytes)?)
    } else if TypeId::of::<T>() == TypeId::of::<String>() {
        Box::new(String::from_utf8(bulk(bytes)?).map_err(|e| e.to_string())?)
    } else {
        return exact::<T>(bytes).map(Arc::new);
    };
    Ok(Arc::new(*any.downcast::<T>().expect("type checked above")))
}

std::thread_local! {
    /// The message of the last custom serde error raised on this thread (see [`custom`]).
    static CUSTOM: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// A custom serde error saying `message`, for a `Serialize` or `Deserialize` impl of ours that
/// fails (an actor handle that cannot cross, say). postcard keeps no message for custom errors,
/// so the message is also kept here, where [`postcard_error`] finds it.
pub(crate) fn custom<E: serde::de::Error>(message: impl std::fmt::Display) -> E {
    E::custom(kept(message))
}

/// [`custom`] for serializing.
pub(crate) fn custom_ser<E: serde::ser::Error>(message: impl std::fmt::Display) -> E {
    E::custom(kept(message))
}

/// Keeps `message` for [`postcard_error`]; returns it.
fn kept(message: impl std::fmt::Display) -> String {
    let message = message.to_string();
    CUSTOM.with(|c| *c.borrow_mut() = Some(message.clone()));
    message
}

/// What a postcard error says, with the message of a custom error raised by our own impls.
pub(crate) fn postcard_error(error: postcard::Error) -> String {
    let kept = CUSTOM.with(|c| c.borrow_mut().take());
    match (error, kept) {
        (postcard::Error::SerdeDeCustom | postcard::Error::SerdeSerCustom, Some(message)) => {
            message
        }
        (error, _) => error.to_string(),
    }
}

/// What a serde error of our own deserializers says (a custom error's message).
pub(crate) fn postcard_error_text(error: serde::de::value::Error) -> String {
    error.to_string()
}

/// Decodes a postcard encoding that must be all of `bytes`: bytes left over mean the caller
/// encoded something else (more arguments, or other types), which is an error, never a value.
pub(super) fn exact<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(postcard_error)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(format!(
            "{} bytes are left over after the {} the parameters take (more arguments than \
             parameters, or arguments of other types)",
            rest.len(),
            bytes.len() - rest.len()
        ))
    }
}

pub(super) fn serialize_as<T: Value>(value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>> {
    if let Some(bytes) = encode_bulk(value) {
        return Ok(bytes);
    }

    let value = value.downcast_ref::<T>().ok_or(Error::TypeMismatch {
        expected: std::any::type_name::<T>(),
        found: "another type",
    })?;
    postcard::to_stdvec(value).map_err(|e| Error::Serialization(postcard_error(e)))
}

#[cfg(test)]
mod fuzz_tests;
