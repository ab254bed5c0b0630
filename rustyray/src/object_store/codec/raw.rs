//! Plain numbers in bulk: a `Vec` of a primitive number that leaves the process (a Ray
//! object's contents, a task's argument or result) crosses as its elements' little-endian
//! bytes, not as postcard's one varint per element. The frame's kind byte says which number
//! (`frame.rs`); postcard stays the encoding of everything else, and of such a `Vec` inside
//! another value.
//!
//! Encoding writes the `Vec`'s memory into the frame as it is (on a little-endian machine);
//! decoding is one copy into an aligned `Vec` (`bytemuck`). Postcard's varints took a pass of
//! many small writes each way, and the payloads were gathered in a copy before decoding.

use std::any::{Any, TypeId};
use std::borrow::Cow;

use serde::de::{DeserializeSeed, IntoDeserializer, SeqAccess, Visitor};

/// The kind byte of a postcard payload.
pub(crate) const POSTCARD: u8 = 0;

macro_rules! kinds {
    ($($kind:literal => $t:ty),* $(,)?) => {
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
                            read: |c: &[u8]| <$t>::from_le_bytes(c.try_into().expect("sized")),
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

/// The little-endian bytes of `v`: a view of its memory on a little-endian machine.
fn le_bytes<T: bytemuck::Pod + LittleEndian>(v: &[T]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        Cow::Borrowed(bytemuck::cast_slice(v))
    } else {
        Cow::Owned(v.iter().flat_map(|n| n.to_le()).collect())
    }
}

/// The elements whose little-endian bytes `bytes` are: one copy into an aligned `Vec`.
fn from_le_bytes<T: bytemuck::Pod + LittleEndian>(bytes: &[u8]) -> Result<Vec<T>, String> {
    let size = std::mem::size_of::<T>();
    if !bytes.chunks_exact(size).remainder().is_empty() {
        return Err(bad_length(bytes, size));
    }
    let mut v: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
    if cfg!(target_endian = "big") {
        v.iter_mut().for_each(|n| *n = n.swapped_from_le());
    }
    Ok(v)
}

/// A number's little-endian form (for the rare big-endian machine).
trait LittleEndian: Sized + Copy {
    type Bytes: IntoIterator<Item = u8>;
    fn to_le(self) -> Self::Bytes;
    fn swapped_from_le(self) -> Self;
}

macro_rules! little_endian {
    ($($t:ty),*) => {$(
        impl LittleEndian for $t {
            type Bytes = [u8; std::mem::size_of::<$t>()];
            fn to_le(self) -> Self::Bytes {
                self.to_le_bytes()
            }
            fn swapped_from_le(self) -> Self {
                <$t>::from_le_bytes(self.to_ne_bytes())
            }
        }
    )*};
}

little_endian!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

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
}
