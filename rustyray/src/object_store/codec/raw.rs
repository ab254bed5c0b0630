//! Plain numbers in bulk: a `Vec` of a primitive number that leaves the process (a Ray
//! object's contents, a task's argument or result) crosses as its elements' little-endian
//! bytes, not as postcard's one varint per element. The frame's kind byte says which number
//! (`frame.rs`); postcard stays the encoding of everything else, and of such a `Vec` inside
//! another value.
//!
//! Encoding writes the `Vec`'s memory into the frame as it is (on a little-endian machine);
//! decoding is one pass into a `Vec`, which the compiler turns into a copy. Postcard's varints
//! took a pass of many small writes each way, and the payloads were gathered in a copy before
//! decoding.
//!
//! A Ray worker decodes every call's arguments into memory of its own (Ray's C++ worker hands
//! them over as bytes). A fresh allocation of many megabytes comes from `mmap`, and its first
//! write page-faults every 4 KiB page: decoding 64 MiB into fresh memory took 36 ms here,
//! against 9.5 ms into memory written before. So the worker's entry points hand a `&T`
//! parameter's value back after the call ([`recycle`]), and a large one's allocation is kept
//! for the next decode of the same element type ([`SPARE`]), as the store keeps freed
//! `put_slice` values (`blocks.rs`).

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::mem::size_of;

use serde::de::{DeserializeSeed, IntoDeserializer, SeqAccess, Visitor};

use super::super::blocks::{Block, Blocks, MIN_BLOCK};

/// Allocations of large decoded `Vec`s handed back after a call, for the next decode to
/// build in. At most two: a worker keeps no more than two of its largest arguments' memory
/// between calls (one call's argument, while the next call's is decoded).
static SPARE: Blocks = Blocks::new(2);

/// The kind byte of a postcard payload.
pub(crate) const POSTCARD: u8 = 0;

/// The one table of the plain numbers and their kind bytes: the encoding, decoding, recycling
/// and `&[T]` reading of each are generated from it.
macro_rules! kinds {
    ($($kind:literal => $t:ty),* $(,)?) => {
        $(
            impl NumberVec for Vec<$t> {
                type Element = $t;
                const KIND: u8 = $kind;
                fn into_vec(self) -> Vec<$t> {
                    self
                }
            }

            impl LittleEndian for $t {
                type Bytes = [u8; size_of::<$t>()];
                fn to_le(self) -> Self::Bytes {
                    self.to_le_bytes()
                }
                #[inline] // a call per element otherwise, where the decode is generic
                fn read_le(chunk: &[u8]) -> Self {
                    <$t>::from_le_bytes(chunk.try_into().expect("a chunk of the number's size"))
                }
            }
        )*

        /// The raw encoding of `value` if it is a `Vec` of plain numbers: its kind and bytes.
        pub(crate) fn encode<T: 'static>(value: &T) -> Option<(u8, Cow<'_, [u8]>)> {
            let value = value as &dyn Any;
            $(
                if let Some(v) = value.downcast_ref::<Vec<$t>>() {
                    return Some(($kind, le_bytes(v)));
                }
            )*
            None
        }

        /// `bytes` of `kind` decoded as a `T`, when `T` is the `Vec` that kind encodes.
        pub(crate) fn decode_as<T: 'static>(kind: u8, bytes: &[u8]) -> Option<Result<T, String>> {
            $(
                if kind == $kind && TypeId::of::<T>() == TypeId::of::<Vec<$t>>() {
                    let v: Box<dyn Any> = match from_le_bytes::<$t>(bytes) {
                        Ok(v) => Box::new(v),
                        Err(e) => return Some(Err(e)),
                    };
                    return Some(Ok(*v.downcast::<T>().expect("the type was checked")));
                }
            )*
            None
        }

        /// Keeps the allocation of `value` for the next decode, if it is a large `Vec` of
        /// plain numbers; anything else is dropped.
        pub(crate) fn recycle<T: 'static>(value: T) {
            let mut value = Some(value);
            let value = &mut value as &mut dyn Any;
            $(
                if let Some(vec) = value.downcast_mut::<Option<Vec<$t>>>() {
                    if let Some(block) = vec.take().and_then(Block::of_vec) {
                        SPARE.keep(block);
                    }
                    return;
                }
            )*
        }

        /// Hands `visitor` the elements of `bytes` of `kind`, as a sequence (a `Vec` inside the
        /// tuple of a call's arguments, which serde builds element by element).
        pub(crate) fn visit<'de, V: Visitor<'de>>(
            kind: u8,
            bytes: &[u8],
            visitor: V,
        ) -> Result<V::Value, serde::de::value::Error> {
            use serde::de::Error as _;
            match kind {
                $(
                    $kind => {
                        const SIZE: usize = std::mem::size_of::<$t>();
                        if !bytes.chunks_exact(SIZE).remainder().is_empty() {
                            return Err(serde::de::value::Error::custom(bad_length(bytes, SIZE)));
                        }
                        visitor.visit_seq(Elements {
                            chunks: bytes.chunks_exact(SIZE),
                            read: <$t as LittleEndian>::read_le,
                        })
                    }
                )*
                other => Err(serde::de::value::Error::custom(format!(
                    "a value of an unknown kind ({other}): build the driver and the workers' \
                     library from the same sources"
                ))),
            }
        }

        /// The postcard encoding of `bytes` of `kind` (where a payload must be postcard: a part
        /// gathered into a parameter with others).
        pub(crate) fn to_postcard(kind: u8, bytes: &[u8]) -> Result<Vec<u8>, String> {
            match kind {
                $(
                    $kind => {
                        let v = from_le_bytes::<$t>(bytes)?;
                        postcard::to_stdvec(&v).map_err(|e| e.to_string())
                    }
                )*
                other => Err(format!("a value of an unknown kind ({other})")),
            }
        }
    };
}

kinds! {
    1 => u8, 2 => i8, 3 => u16, 4 => i16, 5 => u32, 6 => i32, 7 => u64, 8 => i64,
    9 => f32, 10 => f64,
}

/// A `Vec` of plain numbers: what a `&[T]` parameter of a remote function or actor method is
/// given (its argument is stored as a `Vec<T>`), read where a frame holds it when it can be.
#[diagnostic::on_unimplemented(
    message = "a `&[T]` parameter takes a slice of plain numbers, not of `{Self}`'s elements",
    label = "`T` must be one of u8, i8, u16, i16, u32, i32, u64, i64, f32, f64",
    note = "take `&Vec<T>` for a sequence of other values: it borrows the stored `Vec`"
)]
pub trait NumberVec: serde::de::DeserializeOwned + 'static {
    /// The number.
    type Element: bytemuck::Pod + LittleEndian;
    /// The number's kind byte in a frame.
    const KIND: u8;
    /// The `Vec` itself.
    fn into_vec(self) -> Vec<Self::Element>;
}

/// The elements in `bytes` (a payload of kind `V::KIND`) where they lie, if they are aligned
/// for them on a little-endian machine; else `None`, and the caller decodes a copy.
pub(crate) fn borrow<V: NumberVec>(kind: u8, bytes: &[u8]) -> Option<&[V::Element]> {
    if kind != V::KIND || cfg!(target_endian = "big") {
        return None;
    }
    bytemuck::try_cast_slice(bytes).ok()
}

/// The little-endian bytes of `v`: a view of its memory on a little-endian machine.
fn le_bytes<T: bytemuck::Pod + LittleEndian>(v: &[T]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        Cow::Borrowed(bytemuck::cast_slice(v))
    } else {
        Cow::Owned(v.iter().flat_map(|n| n.to_le()).collect())
    }
}

/// The elements whose little-endian bytes `bytes` are, in a `Vec` of their own: a spare
/// one's memory when a large one fits (see the module's notes).
fn from_le_bytes<T: bytemuck::Pod + LittleEndian>(bytes: &[u8]) -> Result<Vec<T>, String> {
    let size = size_of::<T>();
    let chunks = bytes.chunks_exact(size);
    if !chunks.remainder().is_empty() {
        return Err(bad_length(bytes, size));
    }
    let spare = match bytes.len() >= MIN_BLOCK {
        true => SPARE.take::<T>(chunks.len()).map(|(vec, _)| vec),
        false => None,
    };
    let mut v = spare.unwrap_or_else(|| Vec::with_capacity(chunks.len()));
    // One pass with unaligned reads (the payload sits anywhere in its frame): as fast as a
    // `memcpy` here, and it does not zero the memory first.
    v.extend(chunks.map(T::read_le));
    Ok(v)
}

/// A number's little-endian form (for the rare big-endian machine).
pub trait LittleEndian: Sized + Copy + Send + Sync + 'static {
    /// Its little-endian bytes.
    type Bytes: IntoIterator<Item = u8>;
    /// The number as its little-endian bytes.
    fn to_le(self) -> Self::Bytes;
    /// The number whose little-endian bytes `chunk` (of its size) holds.
    fn read_le(chunk: &[u8]) -> Self;
}

fn bad_length(bytes: &[u8], size: usize) -> String {
    format!(
        "{} bytes are not a whole number of {size}-byte elements",
        bytes.len()
    )
}

/// The elements of a raw payload, one by one, for serde.
struct Elements<'a, F> {
    chunks: std::slice::ChunksExact<'a, u8>,
    read: F,
}

impl<'de, 'a, T, F> SeqAccess<'de> for Elements<'a, F>
where
    F: Fn(&'a [u8]) -> T,
    T: IntoDeserializer<'de, serde::de::value::Error>,
{
    type Error = serde::de::value::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        match self.chunks.next() {
            Some(chunk) => seed
                .deserialize((self.read)(chunk).into_deserializer())
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.chunks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_others_are_not_raw() {
        let v: Vec<u64> = vec![0, 1, u64::MAX, 1 << 40];
        let (kind, bytes) = encode(&v).expect("raw");
        assert_eq!(bytes.len(), 32);
        assert_eq!(decode_as::<Vec<u64>>(kind, &bytes), Some(Ok(v.clone())));
        assert_eq!(decode_as::<Vec<i64>>(kind, &bytes), None, "another type");
        let f: Vec<f32> = vec![1.5, -0.0, f32::MAX];
        let (kind, bytes) = encode(&f).unwrap();
        assert_eq!(decode_as::<Vec<f32>>(kind, &bytes), Some(Ok(f)));
        assert!(encode(&vec![String::new()]).is_none());
        assert!(encode(&7u64).is_none());
        let postcard = to_postcard(7, &encode(&v).unwrap().1).unwrap();
        assert_eq!(postcard, postcard::to_stdvec(&v).unwrap());
        assert!(
            decode_as::<Vec<u64>>(7, &[1, 2, 3]).unwrap().is_err(),
            "cut short"
        );
    }

    #[test]
    fn a_recycled_vec_is_decoded_into_again_and_other_values_are_dropped() {
        // `i16`, used by no other test of this binary, so the spare blocks are this test's.
        let v: Vec<i16> = (0..MIN_BLOCK as i32).map(|i| i as i16).collect();
        let (kind, bytes) = encode(&v).expect("raw");
        let bytes = bytes.into_owned();
        let first = decode_as::<Vec<i16>>(kind, &bytes).unwrap().unwrap();
        assert_eq!(first, v);
        let memory = first.as_ptr() as usize;
        recycle(first);
        recycle(String::from("not a vec of numbers"));
        recycle(vec![1i16; 10]); // too small to keep
        assert_eq!(SPARE.len(), 1, "the large vec alone is kept");
        let flipped: Vec<i16> = v.iter().map(|n| !n).collect();
        let (_, other) = encode(&flipped).unwrap();
        let second = decode_as::<Vec<i16>>(kind, &other).unwrap().unwrap();
        assert_eq!(
            second.as_ptr() as usize,
            memory,
            "decoded into the kept memory"
        );
        assert_eq!(second, flipped, "and holds the new value only");
        assert_eq!(SPARE.len(), 0, "the block was taken");
        let third = decode_as::<Vec<i16>>(kind, &bytes).unwrap().unwrap();
        assert_eq!(third, v);
    }
}
