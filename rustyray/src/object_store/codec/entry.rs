//! The encoding of entry points' arguments and results: plain postcard (a tuple of the
//! parameters, as `registry::invoke` documents), JSON while `registry::invoke_json` runs one, or one
//! [frame](super::frame) per argument and for the result while a Ray worker runs one.

use std::borrow::Cow;
use std::cell::Cell;

use super::{exact, frame};
use crate::error::Error;

/// How the entry point running on this thread reads and writes its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Postcard,
    Json,
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    Framed,
}

thread_local! {
    static ENCODING: Cell<Encoding> = const { Cell::new(Encoding::Postcard) };
}

/// Runs `future` (an entry point's, which decodes its arguments when first polled and
/// encodes its result when done) with `encoding` on this thread while it is polled.
pub(crate) async fn with_encoding<F: std::future::Future>(
    encoding: Encoding,
    future: F,
) -> F::Output {
    struct Reset(Encoding);
    impl Drop for Reset {
        fn drop(&mut self) {
            ENCODING.with(|e| e.set(self.0));
        }
    }
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx| {
        let _reset = Reset(ENCODING.with(|e| e.replace(encoding)));
        future.as_mut().poll(cx)
    })
    .await
}

fn encoding() -> Encoding {
    ENCODING.with(Cell::get)
}

/// The error for arguments that do not fit the parameters.
fn shape(e: String) -> Error {
    Error::Serialization(format!(
        "the arguments do not match the function's parameters: {e}"
    ))
}

/// Reads a call's arguments one parameter at a time, each as its own type: so that a `Vec` of
/// plain numbers in a frame is read in one copy (see `raw.rs`), which a tuple's serde
/// decoding, element by element, cannot do.
pub(crate) struct Reader<'a> {
    names: &'a [&'static str],
    read: usize,
    from: From<'a>,
}

enum From<'a> {
    /// Postcard, or frames one after the other: the bytes not read yet.
    Bytes(&'a [u8]),
    /// A JSON array's elements not read yet.
    Json(std::vec::IntoIter<serde_json::Value>),
}

impl<'a> Reader<'a> {
    /// The arguments in `bytes`, for parameters of the types `names` (in order).
    pub(crate) fn new(bytes: &'a [u8], names: &'a [&'static str]) -> crate::Result<Reader<'a>> {
        let from = match encoding() {
            Encoding::Json => {
                let values: Vec<serde_json::Value> =
                    serde_json::from_slice(bytes).map_err(|e| shape(e.to_string()))?;
                if values.len() != names.len() {
                    return Err(shape(format!(
                        "{} arguments for {} parameters",
                        values.len(),
                        names.len()
                    )));
                }
                From::Json(values.into_iter())
            }
            Encoding::Postcard | Encoding::Framed => From::Bytes(bytes),
        };
        Ok(Reader {
            names,
            read: 0,
            from,
        })
    }

    /// The next argument, as a `T` (the next parameter's type).
    pub(crate) fn next<T: serde::de::DeserializeOwned + 'static>(&mut self) -> crate::Result<T> {
        let index = self.read;
        self.read += 1;
        let missing = || shape(format!("no argument {} of {}", index + 1, self.names.len()));
        match &mut self.from {
            From::Json(values) => {
                let value = values.next().ok_or_else(missing)?;
                serde_json::from_value(value).map_err(|e| shape(e.to_string()))
            }
            From::Bytes(rest) if encoding() != Encoding::Framed => {
                let (value, after) =
                    postcard::take_from_bytes(rest).map_err(|e| shape(super::postcard_error(e)))?;
                *rest = after;
                Ok(value)
            }
            From::Bytes(rest) => {
                if index >= self.names.len() {
                    return Err(missing());
                }
                let (frame, after) = argument_frame(rest, index, self.names)?;
                *rest = after;
                frame.decode()
            }
        }
    }

    /// The next argument, a `V` (a `Vec` of plain numbers), as a slice: where the frame holds
    /// it when its payload is aligned for the numbers (a frame at the start of Ray's buffer,
    /// see `frame.rs`), else a copy.
    pub(crate) fn next_slice<V: super::raw::NumberVec>(
        &mut self,
    ) -> crate::Result<Cow<'a, [V::Element]>> {
        if let (Encoding::Framed, From::Bytes(rest)) = (encoding(), &mut self.from) {
            let index = self.read;
            if index < self.names.len() {
                let (frame, after) = argument_frame(rest, index, self.names)?;
                self.read += 1;
                *rest = after;
                return match super::raw::borrow::<V>(frame.kind, frame.payload) {
                    Some(numbers) => Ok(Cow::Borrowed(numbers)),
                    None => frame.decode::<V>().map(|v| Cow::Owned(v.into_vec())),
                };
            }
        }
        self.next::<V>().map(|v| Cow::Owned(v.into_vec()))
    }

    /// Checks that no argument is left over.
    pub(crate) fn end(self) -> crate::Result<()> {
        match self.from {
            From::Bytes([]) => Ok(()),
            From::Json(values) if values.len() == 0 => Ok(()),
            From::Bytes(rest) if encoding() != Encoding::Framed => Err(shape(format!(
                "{} bytes are left over after the {} parameters (more arguments than \
                 parameters, or arguments of other types)",
                rest.len(),
                self.names.len()
            ))),
            _ => Err(shape(format!("more than {} arguments", self.names.len()))),
        }
    }
}

/// Takes back an argument's value after its call: on a Ray worker, a large `Vec` of numbers
/// keeps its memory for the next call's argument (see `raw.rs`). Elsewhere it is dropped.
pub(crate) fn recycle<T: 'static>(value: T) {
    if encoding() == Encoding::Framed {
        super::raw::recycle(value);
    }
}

/// Decodes an argument tuple whose elements have the types `names` (in order).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    names: &[&'static str],
) -> crate::Result<T> {
    match encoding() {
        Encoding::Postcard => exact(bytes).map_err(shape),
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| shape(e.to_string())),
        Encoding::Framed => {
            // Each argument's frame must name its parameter's type; each element of the tuple
            // is read from its own frame's payload, where it lies (no payload is copied).
            let mut frames = Vec::with_capacity(names.len());
            let mut rest = bytes;
            for i in 0..names.len() {
                let (frame, after) = argument_frame(rest, i, names)?;
                frames.push(frame);
                rest = after;
            }
            if !rest.is_empty() {
                return Err(shape(format!("more than {} arguments", names.len())));
            }
            T::deserialize(Arguments(frames)).map_err(|e| shape(super::postcard_error_text(e)))
        }
    }
}

/// The frame of argument `index` at the start of `rest`, checked against its parameter's type
/// (`names[index]`), and the bytes after it.
fn argument_frame<'a>(
    rest: &'a [u8],
    index: usize,
    names: &[&'static str],
) -> crate::Result<(frame::Frame<'a>, &'a [u8])> {
    let expected = names[index];
    let what = format!("argument {} of {}", index + 1, names.len());
    let (frame, after) = frame::split(rest)
        .map_err(|not| not.error(&what, rest, |_| shape(format!("{what} is not a value"))))?;
    if frame.type_name != expected {
        return Err(Error::TypeMismatch {
            expected,
            found: frame::intern(frame.type_name),
        });
    }
    Ok((frame, after))
}

/// A call's argument frames, read as the tuple of its parameters.
struct Arguments<'a>(Vec<frame::Frame<'a>>);

impl<'de> serde::Deserializer<'de> for Arguments<'de> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(ArgumentFrames(self.0.into_iter()))
    }

    fn deserialize_unit<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0.is_empty() {
            true => visitor.visit_unit(),
            false => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// The frames, one tuple element each.
struct ArgumentFrames<'a>(std::vec::IntoIter<frame::Frame<'a>>);

impl<'a> serde::de::SeqAccess<'a> for ArgumentFrames<'a> {
    type Error = serde::de::value::Error;

    fn next_element_seed<S: serde::de::DeserializeSeed<'a>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        use serde::de::Error as _;
        let Some(frame) = self.0.next() else {
            return Ok(None);
        };
        if frame.kind != super::raw::POSTCARD {
            return seed
                .deserialize(RawValue(frame.kind, frame.payload))
                .map(Some);
        }
        let mut de = postcard::Deserializer::from_bytes(frame.payload);
        let value = seed
            .deserialize(&mut de)
            .map_err(|e| Self::Error::custom(super::postcard_error(e)))?;
        match de.finalize() {
            Ok([]) => Ok(Some(value)),
            Ok(left) => Err(Self::Error::custom(format!(
                "{} bytes are left over after the value of `{}` (an argument of another type)",
                left.len(),
                frame.type_name
            ))),
            Err(e) => Err(Self::Error::custom(super::postcard_error(e))),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A `Vec` of plain numbers in its raw bytes (see `raw.rs`).
struct RawValue<'a>(u8, &'a [u8]);

impl<'de> serde::Deserializer<'de> for RawValue<'de> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        super::raw::visit(self.0, self.1, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// Encodes an entry point's result.
pub(crate) fn encode<T: serde::Serialize + 'static>(value: &T) -> crate::Result<Vec<u8>> {
    let failed = |e: String| Error::Serialization(e);
    match encoding() {
        Encoding::Postcard => {
            postcard::to_stdvec(value).map_err(|e| failed(super::postcard_error(e)))
        }
        Encoding::Json => serde_json::to_vec(value).map_err(|e| failed(e.to_string())),
        Encoding::Framed => frame::encode(value),
    }
}

/// Encodes an entry point's tuple result that a `num_returns` call splits: on Ray, as its
/// fields' frames (so each part can be read, or passed on, without the tuple's types); else as
/// the tuple.
pub(crate) fn encode_parts<T: serde::Serialize + 'static>(
    value: &T,
    frames: impl FnOnce(&T) -> crate::Result<Vec<Vec<u8>>>,
) -> crate::Result<Vec<u8>> {
    match encoding() {
        Encoding::Framed => frame::join_parts(&frames(value)?),
        _ => encode(value),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::super::frame;
    use super::{decode, with_encoding, Encoding};
    use crate::error::Error;

    /// Decodes `bytes` as a Ray worker does: one frame per argument.
    fn framed<T: serde::de::DeserializeOwned>(
        bytes: &[u8],
        names: &[&'static str],
    ) -> crate::Result<T> {
        with_encoding(Encoding::Framed, async { decode::<T>(bytes, names) })
            .now_or_never()
            .expect("decoding does not wait")
    }

    #[test]
    fn framed_arguments_are_checked_against_the_parameters_types() {
        let names = [
            std::any::type_name::<u32>(),
            std::any::type_name::<String>(),
        ];
        let mut bytes = frame::encode(&7u32).unwrap();
        bytes.extend(frame::encode(&"x".to_owned()).unwrap());
        assert_eq!(
            framed::<(u32, String)>(&bytes, &names).unwrap(),
            (7, "x".to_owned())
        );

        let mut swapped = frame::encode(&"x".to_owned()).unwrap();
        swapped.extend(frame::encode(&7u32).unwrap());
        match framed::<(u32, String)>(&swapped, &names) {
            Err(Error::TypeMismatch { expected, found }) => {
                assert_eq!((expected, found), ("u32", "alloc::string::String"));
            }
            other => panic!("{other:?}"),
        }

        // Missing, extra and foreign arguments are errors, never values.
        let one = frame::encode(&7u32).unwrap();
        assert!(framed::<(u32, String)>(&one, &names).is_err());
        let mut extra = bytes.clone();
        extra.extend(frame::encode(&1u8).unwrap());
        assert!(framed::<(u32, String)>(&extra, &names).is_err());
        assert!(framed::<(u32,)>(&[0x2A], &names[..1]).is_err());
    }

    #[test]
    fn vecs_of_numbers_cross_as_raw_bytes_beside_postcard_values() {
        let big: Vec<u64> = (0..1000).map(|i| i * 1_000_003).collect();
        let floats = vec![0.5f64, -2.0];
        let names = [
            std::any::type_name::<Vec<u64>>(),
            std::any::type_name::<String>(),
            std::any::type_name::<Vec<f64>>(),
        ];
        let first = frame::encode(&big).unwrap();
        let (head, _) = frame::split(&first).unwrap();
        assert_eq!(head.payload.len(), 8000, "raw, not varints");
        let mut bytes = first.clone();
        bytes.extend(frame::encode(&"x".to_owned()).unwrap());
        bytes.extend(frame::encode(&floats).unwrap());
        let (a, b, c) = framed::<(Vec<u64>, String, Vec<f64>)>(&bytes, &names).unwrap();
        assert_eq!((a, b.as_str(), c), (big.clone(), "x", floats));
        assert_eq!(
            frame::decode::<Vec<u64>>(&first, "it", |_| unreachable!()).unwrap(),
            big
        );
        // A raw payload is read as its own type only.
        assert!(frame::decode::<Vec<i64>>(&first, "it", |_| unreachable!()).is_err());
        assert_eq!(head.postcard().unwrap(), postcard::to_stdvec(&big).unwrap());
        let cut = &first[..first.len() - 3];
        assert!(frame::decode::<Vec<u64>>(cut, "it", |_| unreachable!()).is_err());
    }

    #[test]
    fn a_framed_slice_argument_is_read_where_it_lies_when_aligned() {
        use std::borrow::Cow;
        let numbers: Vec<u64> = (0..100).collect();
        let names = [
            std::any::type_name::<Vec<u64>>(),
            std::any::type_name::<u8>(),
        ];
        let mut bytes = frame::encode(&numbers).unwrap();
        bytes.extend(frame::encode(&7u8).unwrap());
        let read = |bytes: &[u8]| -> (bool, Vec<u64>, u8) {
            with_encoding(Encoding::Framed, async {
                let mut reader = super::Reader::new(bytes, &names).unwrap();
                let slice = reader.next_slice::<Vec<u64>>().unwrap();
                let last: u8 = reader.next().unwrap();
                reader.end().unwrap();
                (matches!(slice, Cow::Borrowed(_)), slice.into_owned(), last)
            })
            .now_or_never()
            .expect("decoding does not wait")
        };
        // The frames where Ray's buffer holds an argument: after the msgpack header of the
        // first frame's string, in memory aligned for a `u64`; then one byte further on.
        let first = frame::split(&bytes).unwrap().1.len();
        let at = frame::msgpack_header(bytes.len() - first);
        let mut storage = vec![0u64; bytes.len() / 8 + 2];
        let aligned: &mut [u8] = bytemuck::cast_slice_mut(&mut storage);
        aligned[at..at + bytes.len()].copy_from_slice(&bytes);
        let in_place = &aligned[at..at + bytes.len()];
        assert_eq!(read(in_place), (true, numbers.clone(), 7), "in place");
        aligned.copy_within(at..at + bytes.len(), at + 1);
        let shifted = &aligned[at + 1..at + 1 + bytes.len()];
        assert_eq!(read(shifted), (false, numbers, 7), "copied");
        // Another parameter type is refused, as for any parameter.
        let outcome = with_encoding(Encoding::Framed, async {
            let mut reader = super::Reader::new(&bytes, &names).unwrap();
            reader.next_slice::<Vec<i64>>().map(|_| ())
        })
        .now_or_never()
        .unwrap();
        assert!(
            matches!(outcome, Err(Error::TypeMismatch { .. })),
            "{outcome:?}"
        );
    }

    #[test]
    fn postcard_arguments_with_bytes_left_over_are_refused() {
        let plain = |bytes: &[u8]| {
            with_encoding(Encoding::Postcard, async {
                decode::<(u64,)>(bytes, &["u64"])
            })
            .now_or_never()
            .expect("decoding does not wait")
        };
        assert_eq!(
            plain(&postcard::to_stdvec(&(7u64,)).unwrap()).unwrap(),
            (7,)
        );
        let two = postcard::to_stdvec(&(7u64, 99u64)).unwrap();
        match plain(&two) {
            Err(Error::Serialization(why)) => assert!(why.contains("left over"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
