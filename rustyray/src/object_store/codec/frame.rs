//! The frame around every value that leaves the process: a Ray object's contents, a task's
//! argument and its result on the `ray` backend.
//!
//! Another process hands back bytes, and bytes can be anything: a value of another type (a
//! driver and a cdylib built from different sources), or a backend's own error record where a
//! value was expected (Ray returns some failures as the object's data). Postcard decodes many
//! such byte strings as *some* value (an error record starting with `0x2A` reads as the
//! integer 42), so a value must say what it is before it is decoded:
//!
//! ```text
//! magic C1 'R' 'R' 'Y' | version u8 | kind u8 | pad u8 | type name: len u16 LE, UTF-8
//!     | pad zero bytes | payload: len u64 LE
//! ```
//!
//! The payload is postcard (kind 0), or for a `Vec` of plain numbers its elements' raw
//! little-endian bytes (the kinds of `raw.rs`). The zero bytes (0 to 7) align the payload in
//! the buffer a Ray object's data is read into: RustyRay stores a frame in Ray as a msgpack
//! string, whose header (1 to 5 bytes, by the frame's length) comes first, and that buffer
//! starts aligned. So a frame is padded as if it followed such a header, and a `&[u64]`
//! parameter reads its argument where Ray's buffer holds it (`entry.rs`). Elsewhere the
//! padding costs a few bytes; a reader only skips it.
//!
//! `0xC1` is the one byte msgpack never uses, and protobuf records (Ray's errors) never start
//! with it either. The type name is `std::any::type_name`, the same string in every process
//! built by the same compiler from the same code; a mismatch is an [`Error::TypeMismatch`]
//! that names both types. The payload's length makes frames self-delimiting, so a call's
//! arguments travel as frames one after the other.

use std::collections::HashSet;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::protobuf::{Fields, Value};
use super::raw;
use crate::error::{Error, Result};

const MAGIC: [u8; 4] = [0xC1, b'R', b'R', b'Y'];
/// The frame version this build writes and reads (3: the payload aligned).
const VERSION: u8 = 3;

/// The bytes of a frame's header before its type name.
const FIXED: usize = 4 + 1 + 1 + 1 + 2;

/// The length of the msgpack header of a string of `len` bytes (fixstr, str8, str16, str32:
/// what Ray's C++ API writes before the frame, see `ray/shim.cc`).
pub(super) fn msgpack_header(len: usize) -> usize {
    match len {
        0..=31 => 1,
        32..=255 => 2,
        256..=65535 => 3,
        _ => 5,
    }
}

/// The zero bytes after a type name of `name` bytes, in a frame with a payload of `payload`
/// bytes: so that the payload starts a multiple of 8 bytes into a msgpack string of the frame.
fn padding(name: usize, payload: usize) -> usize {
    let header = FIXED + name;
    let mut pad = 0;
    // A longer frame may need a longer msgpack header: settle on a padding that fits its own.
    for _ in 0..4 {
        let outer = msgpack_header(header + pad + 8 + payload);
        let next = (8 - (outer + header) % 8) % 8;
        if next == pad {
            break;
        }
        pad = next;
    }
    pad
}

/// One frame read from bytes: the type it says it holds and its payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) type_name: &'a str,
    /// How the payload is encoded: [`raw::POSTCARD`], or a kind of `raw.rs`.
    pub(crate) kind: u8,
    pub(crate) payload: &'a [u8],
}

/// Why bytes are not a frame this build can read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotAFrame {
    /// No magic: the bytes are something else (a backend's error record, for one).
    Foreign,
    /// A frame of another version of RustyRay.
    Version(u8),
    /// The magic is there but the frame is cut short or its lengths are wrong.
    Truncated,
}

/// Encodes `value` in a frame naming its type: a `Vec` of plain numbers as its raw bytes,
/// anything else in postcard.
pub(crate) fn encode<T: Serialize + 'static>(value: &T) -> Result<Vec<u8>> {
    let name = std::any::type_name::<T>();
    if let Some((kind, payload)) = raw::encode(value) {
        return Ok(wrap_kind(name, kind, &payload));
    }

    let payload =
        postcard::to_stdvec(value).map_err(|e| Error::Serialization(super::postcard_error(e)))?;
    Ok(wrap(name, &payload))
}

/// A frame around the postcard `payload`, said to hold a `type_name`.
pub(crate) fn wrap(type_name: &str, payload: &[u8]) -> Vec<u8> {
    wrap_kind(type_name, raw::POSTCARD, payload)
}

/// A frame around `payload` of `kind`, said to hold a `type_name`.
fn wrap_kind(type_name: &str, kind: u8, payload: &[u8]) -> Vec<u8> {
    // Type names are far below 64 KiB; a longer one is cut (and then never matches).
    let name = &type_name.as_bytes()[..type_name.len().min(u16::MAX as usize)];
    let pad = padding(name.len(), payload.len());
    let mut out = Vec::with_capacity(FIXED + name.len() + pad + 8 + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind);
    out.push(pad as u8);
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&[0; 7][..pad]);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The type name of the frame that starts a value stored as its fields' frames (a tuple of a
/// `num_returns` call, on Ray): its payload is how many frames follow.
pub(crate) const PARTS: &str = "rustyray::Parts";

/// The type name of the frame that starts the last items of a stream, as parts (a stream
/// actor's answer to a `take` after which no item follows): as [`PARTS`] otherwise.
pub(crate) const LAST_PARTS: &str = "rustyray::LastParts";

/// A value stored as its fields' frames: a [`PARTS`] frame, then each field's frame.
pub(crate) fn join_parts(parts: &[Vec<u8>]) -> Result<Vec<u8>> {
    join_parts_named(PARTS, parts)
}

/// The last items of a stream, stored as [`join_parts`] stores fields, under [`LAST_PARTS`].
pub(crate) fn join_last_parts(parts: &[Vec<u8>]) -> Result<Vec<u8>> {
    join_parts_named(LAST_PARTS, parts)
}

fn join_parts_named(name: &str, parts: &[Vec<u8>]) -> Result<Vec<u8>> {
    let count = postcard::to_stdvec(&(parts.len() as u32))
        .map_err(|e| Error::Serialization(super::postcard_error(e)))?;
    let mut out = wrap(name, &count);
    for part in parts {
        out.extend_from_slice(part);
    }
    Ok(out)
}

/// Part `index` of bytes that [`join_parts`] wrote (and whatever follows the last part):
/// the part's frame, and the bytes after the last part.
pub(crate) fn part(bytes: &[u8], index: usize) -> Result<(&[u8], &[u8])> {
    let bad = |why: &str| Error::Serialization(format!("a value stored as parts {why}"));
    let (count, _, mut rest) = parts_header(bytes)?;
    if index >= count as usize {
        return Err(bad(&format!("has {count} parts, not part {index}")));
    }
    let mut found = &[][..];
    for i in 0..count as usize {
        let (_, after) = split(rest).map_err(|_| bad(&format!("is cut short at part {i}")))?;
        if i == index {
            found = &rest[..rest.len() - after.len()];
        }
        rest = after;
    }
    Ok((found, rest))
}

/// How many parts bytes that [`join_parts`] or [`join_last_parts`] wrote hold, and whether
/// the latter wrote them.
pub(crate) fn count_parts(bytes: &[u8]) -> Result<(usize, bool)> {
    let (count, last, _) = parts_header(bytes)?;
    Ok((count as usize, last))
}

/// The count of parts at the start of bytes that [`join_parts`] (or [`join_last_parts`]:
/// `true`) wrote, and the parts after it.
fn parts_header(bytes: &[u8]) -> Result<(u32, bool, &[u8])> {
    let bad = |why: &str| Error::Serialization(format!("a value stored as parts {why}"));
    let (head, rest) = split(bytes).map_err(|_| bad("has no readable header"))?;
    let last = match head.type_name {
        PARTS => false,
        LAST_PARTS => true,
        _ => return Err(bad("does not start with its count of parts")),
    };
    let count = super::exact(head.payload).map_err(|_| bad("has a bad count of parts"))?;
    Ok((count, last, rest))
}

/// Whether `bytes` start like a frame (of any version).
pub(crate) fn is_framed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Reads the first frame of `bytes`; returns it and the bytes after it.
pub(crate) fn split(bytes: &[u8]) -> std::result::Result<(Frame<'_>, &[u8]), NotAFrame> {
    let rest = bytes.strip_prefix(&MAGIC).ok_or(NotAFrame::Foreign)?;
    let (&version, rest) = rest.split_first().ok_or(NotAFrame::Truncated)?;
    if version != VERSION {
        return Err(NotAFrame::Version(version));
    }
    let (&kind, rest) = rest.split_first().ok_or(NotAFrame::Truncated)?;
    let (&pad, rest) = rest.split_first().ok_or(NotAFrame::Truncated)?;
    let (len, rest) = take::<2>(rest)?;
    let (name, rest) = take_n(rest, u16::from_le_bytes(len) as usize)?;
    let type_name = std::str::from_utf8(name).map_err(|_| NotAFrame::Truncated)?;
    let (_, rest) = take_n(rest, pad as usize)?;
    let (len, rest) = take::<8>(rest)?;
    let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| NotAFrame::Truncated)?;
    let (payload, rest) = take_n(rest, len)?;
    Ok((
        Frame {
            type_name,
            kind,
            payload,
        },
        rest,
    ))
}

fn take<const N: usize>(bytes: &[u8]) -> std::result::Result<([u8; N], &[u8]), NotAFrame> {
    let (head, rest) = take_n(bytes, N)?;
    Ok((head.try_into().map_err(|_| NotAFrame::Truncated)?, rest))
}

fn take_n(bytes: &[u8], n: usize) -> std::result::Result<(&[u8], &[u8]), NotAFrame> {
    if bytes.len() < n {
        return Err(NotAFrame::Truncated);
    }
    Ok(bytes.split_at(n))
}

impl Frame<'_> {
    /// The payload decoded as a `T`, if the frame says it holds one.
    pub(crate) fn decode<T: DeserializeOwned + 'static>(&self) -> Result<T> {
        let expected = std::any::type_name::<T>();
        if self.type_name != expected {
            return Err(Error::TypeMismatch {
                expected,
                found: intern(self.type_name),
            });
        }
        let decoded = match self.kind {
            raw::POSTCARD => super::exact(self.payload),
            kind => raw::decode_as::<T>(kind, self.payload)
                .unwrap_or_else(|| Err(format!("a payload of kind {kind} for another type"))),
        };
        decoded.map_err(|e| {
            Error::Serialization(format!("a framed `{expected}` does not decode: {e}"))
        })
    }

    /// The payload's postcard encoding (made from a raw one).
    pub(crate) fn postcard(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match self.kind {
            raw::POSTCARD => Ok(self.payload.into()),
            kind => raw::to_postcard(kind, self.payload)
                .map(Into::into)
                .map_err(|e| Error::Serialization(format!("a framed `{}`: {e}", self.type_name))),
        }
    }
}

/// Decodes the one frame `bytes` hold as a `T`. `what` names where the bytes came from, for
/// errors; bytes that are no frame at all are handed to `foreign` to make the error.
pub(crate) fn decode<T: DeserializeOwned + 'static>(
    bytes: &[u8],
    what: &str,
    foreign: impl FnOnce(&[u8]) -> Error,
) -> Result<T> {
    match split(bytes) {
        Ok((frame, [])) => frame.decode(),
        Ok(_) => Err(Error::Serialization(format!(
            "{what} holds bytes after its value"
        ))),
        Err(not) => Err(not.error(what, bytes, foreign)),
    }
}

impl NotAFrame {
    /// The error for bytes from `what` that were not a readable frame.
    pub(crate) fn error(
        self,
        what: &str,
        bytes: &[u8],
        foreign: impl FnOnce(&[u8]) -> Error,
    ) -> Error {
        match self {
            NotAFrame::Foreign => foreign(bytes),
            NotAFrame::Version(v) => Error::Serialization(format!(
                "{what} was written by another version of RustyRay (frame version {v}, this \
                 build reads {VERSION}); build the driver and the workers' library from the same \
                 sources"
            )),
            NotAFrame::Truncated => Error::Serialization(format!(
                "{what} is a truncated or corrupted RustyRay value ({} bytes)",
                bytes.len()
            )),
        }
    }
}

/// The readable text inside bytes that are not a frame. Ray's error records are protobuf
/// messages: their text fields are kept (nested messages walked), the binary around them
/// dropped. Bytes that are no protobuf message keep their runs of printable text.
pub(crate) fn readable(bytes: &[u8]) -> String {
    let bytes = stored_record(bytes).unwrap_or(bytes);
    let mut texts = Vec::new();
    if !protobuf_texts(bytes, 0, &mut texts) {
        texts.clear();
        let lossy = String::from_utf8_lossy(bytes);
        texts.extend(
            lossy
                .split(|c: char| c.is_control() && c != '\n' || c == char::REPLACEMENT_CHARACTER)
                .filter(|run| is_text(run))
                // A run may start with a tag or length byte that happens to print.
                .map(|run| run.trim_start_matches(|c: char| !c.is_alphanumeric()))
                .map(|run| run.trim().to_owned()),
        );
    }
    // Ray's records hold ids and addresses beside their sentences: when there are sentences,
    // those are the reason; a text that another one holds too is said once.
    let texts: Vec<String> = texts.into_iter().map(|t| t.replace('\t', " ")).collect();
    let sentences = texts.iter().any(|t| t.trim().contains(' '));
    let kept: Vec<&str> = texts
        .iter()
        .enumerate()
        .filter(|(_, t)| !sentences || t.trim().contains(' '))
        .filter(|&(i, t)| {
            !texts.iter().enumerate().any(|(j, other)| {
                j != i && other.contains(t.as_str()) && (other.len() > t.len() || j < i)
            })
        })
        .map(|(_, t)| t.trim())
        .collect();
    kept.join("; ")
}

/// The protobuf message inside an error record as Ray stores it for an object (Ray's
/// `MakeSerializedErrorBuffer`): a msgpack integer (the length of what follows) in a 9-byte
/// field, then the message as a msgpack `bin`. The field's bytes after the integer are not
/// cleared by Ray (seen: " of de"), so they are skipped unread. `None` for bytes that are not
/// laid out so.
fn stored_record(bytes: &[u8]) -> Option<&[u8]> {
    const OFFSET: usize = 9;
    let be = |at: std::ops::Range<usize>| -> Option<usize> {
        let field = bytes.get(at)?;
        let mut n = 0usize;
        for &b in field {
            n = n.checked_mul(256)?.checked_add(usize::from(b))?;
        }
        Some(n)
    };
    let (len, width) = match *bytes.first()? {
        small @ 0x00..=0x7f => (usize::from(small), 1),
        0xcc => (be(1..2)?, 2),
        0xcd => (be(1..3)?, 3),
        0xce => (be(1..5)?, 5),
        0xcf => (be(1..9)?, 9),
        _ => return None,
    };
    let (_, packed) = bytes.get(width..)?.split_at_checked(OFFSET - width)?;
    if packed.len() != len {
        return None;
    }
    let (size, body) = match *packed.first()? {
        0xc4 => (usize::from(*packed.get(1)?), packed.get(2..)?),
        0xc5 => (
            u16::from_be_bytes(packed.get(1..3)?.try_into().ok()?).into(),
            packed.get(3..)?,
        ),
        0xc6 => (
            usize::try_from(u32::from_be_bytes(packed.get(1..5)?.try_into().ok()?)).ok()?,
            packed.get(5..)?,
        ),
        _ => return None,
    };
    (body.len() == size).then_some(body)
}

/// Whether `s` reads as text: some words, no control characters but line breaks and tabs.
fn is_text(s: &str) -> bool {
    s.chars().filter(|c| c.is_alphanumeric()).count() >= 4
        && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// Collects the text fields of the protobuf message `bytes`, or returns false if the bytes
/// are not one.
fn protobuf_texts(bytes: &[u8], depth: usize, out: &mut Vec<String>) -> bool {
    if depth > 16 {
        return false;
    }
    for field in Fields(bytes) {
        let Some((_, value)) = field else {
            return false;
        };
        let Value::Bytes(field) = value else {
            continue;
        };
        match std::str::from_utf8(field) {
            Ok(text) if is_text(text) => out.push(text.trim().to_owned()),
            _ => {
                let mut nested = Vec::new();
                if protobuf_texts(field, depth + 1, &mut nested) {
                    out.extend(nested);
                }
            }
        }
    }
    true
}

/// A `'static` copy of a type name read from another process, for [`Error::TypeMismatch`].
/// Names are kept once each; past a bound (names come from outside), a fixed text stands in.
pub(crate) fn intern(name: &str) -> &'static str {
    const MAX: usize = 4096;
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock();
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(known) = names.get(name) {
        return known;
    }
    if names.len() >= MAX {
        return "a type this process has not seen";
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_start_a_multiple_of_8_bytes_into_a_msgpack_string_of_the_frame() {
        for name in [
            "",
            "u8",
            "alloc::vec::Vec<u64>",
            "a_type_name_of_some_length",
        ] {
            for payload in [0, 1, 5, 13, 200, 240, 65_500, 70_000] {
                let bytes = wrap_kind(name, 7, &vec![1; payload]);
                let (frame, rest) = split(&bytes).unwrap();
                assert_eq!((frame.type_name, frame.payload.len()), (name, payload));
                assert!(rest.is_empty());
                let offset = frame.payload.as_ptr() as usize - bytes.as_ptr() as usize;
                let outer = msgpack_header(bytes.len());
                assert_eq!((outer + offset) % 8, 0, "{name:?}, {payload} bytes");
            }
        }
        // A frame cut in its padding is cut short, not a value.
        let bytes = wrap_kind("u8", 7, &[1]);
        let pad = bytes[6] as usize;
        assert!(pad > 0);
        assert_eq!(
            split(&bytes[..FIXED + 2 + pad - 1]),
            Err(NotAFrame::Truncated)
        );
    }

    fn foreign(bytes: &[u8]) -> Error {
        Error::Backend {
            message: readable(bytes),
        }
    }

    #[test]
    fn a_value_reads_back_as_its_own_type_only() {
        let bytes = encode(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(
            decode::<Vec<u8>>(&bytes, "the test", foreign).unwrap(),
            [1, 2, 3]
        );
        match decode::<u64>(&bytes, "the test", foreign) {
            Err(Error::TypeMismatch { expected, found }) => {
                assert_eq!(expected, "u64");
                assert_eq!(found, "alloc::vec::Vec<u8>");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn frames_one_after_the_other_split_apart() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.extend(encode(&"x".to_owned()).unwrap());
        let (first, rest) = split(&bytes).unwrap();
        assert_eq!(first.decode::<u32>().unwrap(), 7);
        let (second, rest) = split(rest).unwrap();
        assert_eq!(second.decode::<String>().unwrap(), "x");
        assert!(rest.is_empty());
    }

    /// A Ray error record handed back where a value was expected: the bytes of one as seen
    /// (a protobuf message whose first byte, 0x2A, postcard reads as 42).
    #[test]
    fn foreign_bytes_are_an_error_with_their_text_never_a_value() {
        let mut record = vec![0x2A, 0x27];
        record.extend_from_slice(b"The worker failed to receive a response");
        record.extend_from_slice(&[0x10, 0x05, 0x12, 0x15]);
        record.extend_from_slice(b"from the local raylet");
        match decode::<u64>(&record, "the test", foreign) {
            Err(Error::Backend { message }) => assert_eq!(
                message,
                "The worker failed to receive a response; from the local raylet"
            ),
            other => panic!("{other:?}"),
        }
        assert!(!is_framed(&record));
    }

    /// As Ray's record of an actor lost with a call in flight was seen: a protobuf message
    /// whose text field sits between binary tags and lengths.
    #[test]
    fn protobuf_records_keep_their_text_fields_only() {
        let text = b"The actor is temporarily unavailable: RpcError: Socket closed rpc_code: 14";
        let mut inner = vec![0x0A, text.len() as u8];
        inner.extend_from_slice(text);
        inner.extend_from_slice(&[0x10, 0x0E]); // a number field
        let mut record = vec![0x08, 0x2A, 0x2A, inner.len() as u8];
        record.extend_from_slice(&inner);
        record.extend_from_slice(&[0x58, 0x01]);
        assert_eq!(readable(&record), std::str::from_utf8(text).unwrap());
    }

    /// Ray stores an actor's death as its record in msgpack behind a 9-byte length; read as
    /// plain bytes, the binary around the text gave fragments ("u of de; The actor died ...").
    #[test]
    fn rays_stored_error_records_read_as_their_text() {
        let text = b"The actor died because its node has died. Node Id: 3f2a";
        let mut record = vec![0x12, text.len() as u8];
        record.extend_from_slice(text);
        record.extend_from_slice(&[0x18, 0x04, 0x22, 0x03, 0xff, 0x01, 0x75]);
        for long in [false, true] {
            let mut packed = if long {
                vec![0xc5, 0, record.len() as u8]
            } else {
                vec![0xc4, record.len() as u8]
            };
            packed.extend_from_slice(&record);
            // The length, then what Ray left in the rest of its 9-byte field.
            let mut stored = vec![packed.len() as u8];
            stored.extend_from_slice(b" of de\0\0");
            stored.extend_from_slice(&packed);
            assert_eq!(readable(&stored), std::str::from_utf8(text).unwrap());
            for cut in 0..stored.len() {
                let _ = readable(&stored[..cut]);
            }
        }
    }

    /// The record a driver got for a call to an actor whose node was killed (Ray 2.60, captured
    /// from the `node-loss` check, with what Ray left in its length field): its reason, said
    /// once, without the ids and addresses.
    #[test]
    fn an_actors_death_on_a_lost_node_reads_as_rays_sentence() {
        let record = (0..RAY_NODE_DIED_RECORD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&RAY_NODE_DIED_RECORD[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>();
        assert_eq!(
            readable(&record),
            "The actor died because its node has died. Node Id: \
             fde6bc8f05ad6de2e852017da210ae69ace52bb5e20d6c484059d162\n the actor's node was \
             terminated unexpectedly: health check failed due to missing too many heartbeats"
        );
    }

    const RAY_NODE_DIED_RECORD: &str = "cd0274206f66206465c502711298031a95030ad101546865206163746f722064696564206265636175736520697473206e6f64652068617320646965642e204e6f64652049643a2066646536626338663035616436646532653835323031376461323130616536396163653532626235653230643663343834303539643136320a09746865206163746f722773206e6f646520776173207465726d696e6174656420756e65787065637465646c793a206865616c746820636865636b206661696c65642064756520746f206d697373696e6720746f6f206d616e792068656172746265617473121c01000000ffffffffffffffffffffffffffffffffffffffffffffffff1a093139322e302e322e3222093132372e302e302e3228fe6d3a3839356462393962666336643361343936313632653766396565306337656333336265626430363833386338613439306130313462346261654a10609c09991b6deb36d6b9b349010000005a3a080212366865616c746820636865636b206661696c65642064756520746f206d697373696e6720746f6f206d616e79206865617274626561747360032ad101546865206163746f722064696564206265636175736520697473206e6f64652068617320646965642e204e6f64652049643a2066646536626338663035616436646532653835323031376461323130616536396163653532626235653230643663343834303539643136320a09746865206163746f722773206e6f646520776173207465726d696e6174656420756e65787065637465646c793a206865616c746820636865636b206661696c65642064756520746f206d697373696e6720746f6f206d616e7920686561727462656174735801";

    #[test]
    fn parts_read_back_one_by_one_with_what_follows_them() {
        let fields = [encode(&7u64).unwrap(), encode(&"x".to_owned()).unwrap()];
        let mut bytes = join_parts(&fields).unwrap();
        bytes.extend_from_slice(b"tail");
        let (first, tail) = part(&bytes, 0).unwrap();
        assert_eq!((first, tail), (&fields[0][..], &b"tail"[..]));
        let (second, _) = part(&bytes, 1).unwrap();
        assert_eq!(decode::<String>(second, "t", foreign).unwrap(), "x");
        assert!(part(&bytes, 2).unwrap_err().to_string().contains("2 parts"));
        assert!(part(&fields[0], 0).is_err(), "a plain value is no parts");
        for cut in 0..bytes.len() - 4 {
            assert!(part(&bytes[..cut], 1).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn bytes_that_are_no_protobuf_keep_their_printable_runs() {
        let mut bytes = vec![0xFF, b'*', b'\''];
        bytes.extend_from_slice(b"Socket closed");
        bytes.extend_from_slice(&[0x00, 0x07]);
        bytes.extend_from_slice(b"rpc_code: 14");
        assert_eq!(readable(&bytes), "Socket closed; rpc_code: 14");
    }

    #[test]
    fn every_cut_of_a_frame_is_an_error_not_a_panic() {
        let bytes = encode(&("a".to_owned(), 5u64)).unwrap();
        for cut in 0..bytes.len() {
            let result = decode::<(String, u64)>(&bytes[..cut], "the test", foreign);
            assert!(result.is_err(), "cut at {cut}");
        }
        let mut other_version = bytes.clone();
        other_version[4] = 9;
        match decode::<(String, u64)>(&other_version, "the test", foreign) {
            Err(Error::Serialization(m)) => assert!(m.contains("another version"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
