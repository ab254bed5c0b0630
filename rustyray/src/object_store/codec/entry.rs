//! The encoding of entry points' arguments and results: plain postcard (a tuple of the
//! parameters, as `registry::invoke` documents), JSON while `registry::invoke_json` runs one, or one
//! [frame](super::frame) per argument and for the result while a Ray worker runs one.

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

/// Decodes an argument tuple whose elements have the types `names` (in order).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    names: &[&'static str],
) -> crate::Result<T> {
    let shape = |e: String| {
        Error::Serialization(format!(
            "the arguments do not match the function's parameters: {e}"
        ))
    };
    match encoding() {
        Encoding::Postcard => exact(bytes).map_err(shape),
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| shape(e.to_string())),
        Encoding::Framed => {
            // Each argument's frame must name its parameter's type; their payloads,
            // one after the other, are the tuple's postcard encoding.
            let mut payloads = Vec::with_capacity(bytes.len());
            let mut rest = bytes;
            for (i, &expected) in names.iter().enumerate() {
                let what = format!("argument {} of {}", i + 1, names.len());
                let (frame, after) = frame::split(rest).map_err(|not| {
                    not.error(&what, rest, |_| shape(format!("{what} is not a value")))
                })?;
                if frame.type_name != expected {
                    return Err(Error::TypeMismatch {
                        expected,
                        found: frame::intern(frame.type_name),
                    });
                }
                payloads.extend_from_slice(frame.payload);
                rest = after;
            }
            if !rest.is_empty() {
                return Err(shape(format!("more than {} arguments", names.len())));
            }
            exact(&payloads).map_err(shape)
        }
    }
}

/// Encodes an entry point's result.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> crate::Result<Vec<u8>> {
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
pub(crate) fn encode_parts<T: serde::Serialize>(
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
