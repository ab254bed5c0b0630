//! Fuzzing the decoders of bytes from outside the process: frames (values and arguments from
//! Ray) and spill files (from disk). See `crate::fuzz` for the harness and the corpus.

use std::path::PathBuf;

use futures_util::FutureExt;

use super::entry::{decode as decode_args, with_encoding, Encoding};
use super::frame;
use crate::error::Error;
use crate::object_store::spill;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-corpus")
        .join(target)
}

type Value = (u64, String, Vec<u8>, Option<i32>);

#[test]
fn fuzz_frames() {
    crate::fuzz::fuzz(corpus("frame"), |bytes| {
        let _ = frame::decode::<Value>(bytes, "a fuzzed value", |b| {
            Error::Serialization(frame::readable(b))
        });
        let mut rest = bytes;
        while let Ok((frame, after)) = frame::split(rest) {
            let _ = frame.decode::<Value>();
            rest = after;
        }
    });
}

#[test]
fn fuzz_framed_arguments() {
    let names = [
        std::any::type_name::<u32>(),
        std::any::type_name::<String>(),
    ];
    crate::fuzz::fuzz(corpus("framed-arguments"), |bytes| {
        let _ = with_encoding(Encoding::Framed, async {
            decode_args::<(u32, String)>(bytes, &names)
        })
        .now_or_never();
    });
}

#[test]
fn fuzz_spill_files() {
    crate::fuzz::fuzz(corpus("spill"), |bytes| {
        if let Ok(payload) = spill::check_any(bytes.to_vec()) {
            // As a spilled object is read back: the bulk encoding of byte vectors and
            // strings, postcard for the rest.
            let _ = super::decode::<Value>(&payload);
            let _ = super::decode::<Vec<u8>>(&payload);
            let _ = super::decode::<String>(&payload);
        }
    });
}

/// Writes the starting corpus (valid inputs) into `fuzz-corpus/`; run once by hand with
/// `cargo test -p rustyray --lib write_seed_corpus -- --ignored`.
#[test]
#[ignore = "writes the kept corpus"]
fn write_seed_corpus() {
    let value: Value = (7, "seven".to_owned(), vec![1, 2, 3], Some(-7));
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    write("frame", "value.bin", &frame::encode(&value).unwrap());
    write("frame", "unit.bin", &frame::encode(&()).unwrap());
    write("frame", "msgpack-text.bin", b"\xa5hello");
    let mut args = frame::encode(&7u32).unwrap();
    args.extend(frame::encode(&"x".to_owned()).unwrap());
    write("framed-arguments", "u32-string.bin", &args);
    write(
        "framed-arguments",
        "one-only.bin",
        &frame::encode(&7u32).unwrap(),
    );
    let payload = postcard::to_stdvec(&value).unwrap();
    write("spill", "value.bin", &spill::encoded(&payload));
    let bulk = super::encode_bulk(&b"bytes".to_vec()).unwrap();
    write("spill", "bulk-bytes.bin", &spill::encoded(&bulk));
    write("spill", "empty.bin", &spill::encoded(&[]));
}
