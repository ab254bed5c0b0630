//! Errors across Ray: RustyRay's own errors carried inside Ray's messages, and Ray's failures
//! (exceptions, or error records handed back where a value was expected) turned into the
//! library's [`Error`] with Ray's words, never into a value.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::ffi::Failure;
use crate::error::Error;
use crate::object_store::codec::frame;

/// Where a RustyRay error starts inside a Ray error message (see [`encode`]).
const ERROR_START: &str = "\u{1e}rustyray-error:";
/// Where it ends.
const ERROR_END: char = '\u{1e}';

/// A RustyRay error as it travels inside Ray's messages.
#[derive(Serialize, Deserialize)]
struct WireError {
    /// `TaskFailed` (the default, and what older workers send) or `ActorDied`.
    #[serde(default)]
    kind: WireKind,
    /// The function, or for `ActorDied` the actor.
    function: String,
    /// The message, or for `ActorDied` the reason.
    message: String,
    causes: Vec<String>,
}

#[derive(Serialize, Deserialize, Default, PartialEq, Eq)]
enum WireKind {
    #[default]
    TaskFailed,
    ActorDied,
}

/// The text a failed call on a Ray worker reports: the error between markers, so the driver
/// (and any task downstream, through the shim) reads back the same error, not Ray's wrapping
/// of it.
pub(crate) fn encode(error: &Error) -> String {
    let wire = match error {
        Error::TaskFailed {
            function,
            message,
            causes,
        } => WireError {
            kind: WireKind::TaskFailed,
            function: function.clone(),
            message: message.clone(),
            causes: causes.clone(),
        },
        Error::ActorDied { actor, reason } => WireError {
            kind: WireKind::ActorDied,
            function: actor.clone(),
            message: reason.clone(),
            causes: Vec::new(),
        },
        other => WireError {
            kind: WireKind::TaskFailed,
            function: String::new(),
            message: other.to_string(),
            causes: Vec::new(),
        },
    };
    let json = serde_json::to_string(&wire).unwrap_or_else(|_| format!("{:?}", error.to_string()));
    format!("{ERROR_START}{json}{ERROR_END}")
}

/// The RustyRay error inside a message from Ray, if there is one.
pub(crate) fn decode(message: &str, origin: &str) -> Option<Error> {
    let start = message.find(ERROR_START)? + ERROR_START.len();
    let len = message[start..].find(ERROR_END)?;
    let wire: WireError = serde_json::from_str(&message[start..start + len]).ok()?;
    let function = if wire.function.is_empty() {
        origin.to_owned()
    } else {
        wire.function
    };
    Some(match wire.kind {
        WireKind::TaskFailed => Error::TaskFailed {
            function,
            message: wire.message,
            causes: wire.causes,
        },
        WireKind::ActorDied => Error::ActorDied {
            actor: function,
            reason: wire.message,
        },
    })
}

/// Turns a failure reported by Ray into the library's error, keeping Ray's words (the
/// readable part of them: Ray's messages can carry binary records).
pub(crate) fn from_ray(
    origin: &str,
    (failure, message): (Failure, String),
    started: Instant,
) -> Error {
    if let Some(error) = decode(&message, origin) {
        return error;
    }
    let text = frame::readable(message.as_bytes());
    match failure {
        Failure::TaskFailed => Error::TaskFailed {
            function: origin.to_owned(),
            message: text,
            causes: Vec::new(),
        },
        Failure::ActorDied => Error::ActorDied {
            actor: origin.to_owned(),
            reason: or_no_reason(text),
        },
        Failure::WorkerDied => Error::TaskFailed {
            function: origin.to_owned(),
            message: format!(
                "its Ray worker died: {}",
                if text.is_empty() {
                    "the worker process exited or was killed while running it (Ray gives no \
                     reason; the raylet's log in /tmp/ray/session_latest/logs may)"
                        .to_owned()
                } else {
                    text
                }
            ),
            causes: Vec::new(),
        },
        Failure::Timeout => Error::Timeout(started.elapsed()),
        Failure::ObjectLost | Failure::Other => classify(origin, &text),
    }
}

/// The error for bytes Ray handed back where a RustyRay value was expected: a failure Ray
/// stores as the object's data (a lost raylet, an actor that died with a call in flight).
pub(crate) fn foreign(origin: &str, bytes: &[u8]) -> Error {
    if let Some(error) = decode(&String::from_utf8_lossy(bytes), origin) {
        return error;
    }
    classify(origin, &frame::readable(bytes))
}

/// Sorts a Ray failure by its text: Ray's C++ API reports several kinds only as text.
fn classify(origin: &str, text: &str) -> Error {
    let lower = text.to_lowercase();
    let gone = ["dead", "died", "unavailable"];
    if lower.contains("actor") && gone.iter().any(|word| lower.contains(word)) {
        return Error::ActorDied {
            actor: origin.to_owned(),
            reason: or_no_reason(text.to_owned()),
        };
    }
    let lost = [
        "raylet",
        "gcs",
        "failed to receive a response",
        "failed to connect",
    ];
    if lost.iter().any(|word| lower.contains(word)) {
        return Error::Backend {
            message: format!(
                "`{origin}` could not finish: the Ray cluster was lost or could not be reached \
                 (Ray says: {})",
                or_no_reason(text.to_owned())
            ),
        };
    }
    Error::Backend {
        message: format!(
            "Ray returned no value for `{origin}`: {}",
            or_no_reason(text.to_owned())
        ),
    }
}

fn or_no_reason(text: String) -> String {
    if text.is_empty() {
        "Ray gave no reason".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_errors_survive_being_wrapped_in_ray_messages() {
        let error = Error::TaskFailed {
            function: "check_even".to_owned(),
            message: "refused".to_owned(),
            causes: vec!["3 is odd".to_owned()],
        };
        let wrapped = format!(
            "Invalid: An exception was thrown while executing function(RustyRayTask): \
             std::runtime_error: {} (more text)",
            encode(&error)
        );
        assert_eq!(decode(&wrapped, "plus_one"), Some(error));
        let died = Error::ActorDied {
            actor: "Counter".to_owned(),
            reason: "panicked: boom".to_owned(),
        };
        assert_eq!(decode(&encode(&died), "x"), Some(died));
        let other = encode(&Error::Timeout(std::time::Duration::from_secs(1)));
        match decode(&other, "caller") {
            Some(Error::TaskFailed {
                function, message, ..
            }) => {
                assert_eq!(function, "caller");
                assert!(message.contains("timed out"), "{message}");
            }
            found => panic!("{found:?}"),
        }
        assert_eq!(decode("no marker here", "f"), None);
    }

    #[test]
    fn ray_records_become_readable_errors() {
        let mut record = vec![0x2A, 0x1D];
        record.extend_from_slice(b"The actor is dead because its worker process has died.");
        record.extend_from_slice(&[0x05, 0x9F, 0x3F]);
        match foreign("Counter", &record) {
            Error::ActorDied { actor, reason } => {
                assert_eq!(actor, "Counter");
                assert_eq!(
                    reason,
                    "The actor is dead because its worker process has died."
                );
            }
            other => panic!("{other:?}"),
        }
        let started = Instant::now();
        match from_ray("f", (Failure::WorkerDied, String::new()), started) {
            Error::TaskFailed { message, .. } => {
                assert!(message.starts_with("its Ray worker died: the worker process exited"))
            }
            other => panic!("{other:?}"),
        }
        match foreign("f", &[0xB7, 0x01, 0x00]) {
            Error::Backend { message } => assert!(message.contains("no value"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}
