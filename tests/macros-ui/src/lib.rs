//! Nothing here: the cases are in `tests/ui`, run by `tests/ui.rs` (see Cargo.toml for why
//! this is a crate of its own).
