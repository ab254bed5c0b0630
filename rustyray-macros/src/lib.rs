//! Attribute macros of RustyRay.
//!
//! Users reach these through the `rustyray` crate (`#[rustyray::remote]`, `#[rustyray::actor]`,
//! `#[rustyray::main]`), never by depending on this crate directly. The macros expand to calls of
//! `rustyray`'s typed builders (`rustyray::task::TaskBuilder`, `rustyray::actor::ActorBuilder`,
//! `rustyray::actor::CallBuilder`), which are usable by hand today; the macros themselves are the
//! subject of the next milestone (see `docs/architecture.md`).
