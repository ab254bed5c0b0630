//! The documentation of RustyRay, compiled: each Rust example in these pages is a doctest.
#![doc = include_str!("../README.md")]

#[doc = include_str!("semantics.md")]
pub mod semantics {}

#[doc = include_str!("architecture.md")]
pub mod architecture {}

#[doc = include_str!("guide.md")]
pub mod guide {}

#[doc = include_str!("observability.md")]
pub mod observability {}

#[doc = include_str!("security.md")]
pub mod security {}
