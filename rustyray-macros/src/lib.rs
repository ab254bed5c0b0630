//! Attribute macros of RustyRay: `#[remote]`, `#[actor]` and `#[main]`.
//!
//! Use them through the `rustyray` crate (`#[rustyray::remote]`, ...), never by depending on
//! this crate directly: the code they generate names `::rustyray::` paths only.
//!
//! Each macro is written in three steps, as serde_derive and tokio's macros are: **parse** the
//! item and the attribute's arguments, build a **model** that holds only what expansion needs
//! (checking every rule on the way and collecting every error with its span), then **expand**
//! the model. All errors found are reported at once.

mod actor;
mod args;
mod main_fn;
mod options;
mod remote;
mod signature;

use proc_macro::TokenStream;

/// Makes a function remote: `f::remote(args) -> ObjectRef<R>` runs it as a task.
///
/// See the `rustyray` crate's documentation and `docs/guide.md`.
#[proc_macro_attribute]
pub fn remote(attr: TokenStream, item: TokenStream) -> TokenStream {
    remote::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a struct and its inherent impl an actor: `Type::remote(args) -> ActorHandle<Type>`,
/// and each `&self` / `&mut self` method a remote call on the handle.
///
/// See the `rustyray` crate's documentation and `docs/guide.md`.
#[proc_macro_attribute]
pub fn actor(attr: TokenStream, item: TokenStream) -> TokenStream {
    actor::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Runs `fn main` (sync or async) with the global RustyRay runtime and shuts it down
/// gracefully when `main` returns.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    main_fn::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
