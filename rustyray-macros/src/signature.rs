//! The model of one remote callable (a function, an actor constructor or method), built from a
//! `syn::Signature` with every rule checked, and the pieces of code every expansion needs.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Pat, PathArguments, ReturnType, Type};

use crate::args::Errors;

/// How a method takes the actor.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receiver {
    None,
    Shared,
    Exclusive,
}

/// How a parameter receives its argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    /// `T`: a value of its own.
    Owned,
    /// `&T`: the stored value, borrowed.
    Borrowed,
    /// `Arc<T>`: the stored value, shared.
    Shared,
    /// `&[T]` of plain numbers: the stored `Vec<T>` borrowed as a slice; on a Ray worker, read
    /// where the call's bytes hold it.
    Slice,
}

/// One parameter: the name the generated code uses, how it takes its argument, and the type of
/// the value it is given (`T` for `T`, `&T` and `Arc<T>` alike, `Vec<T>` for `&[T]`), at the
/// declared type's span.
pub(crate) struct Param {
    pub(crate) name: syn::Ident,
    pub(crate) kind: ParamKind,
    pub(crate) ty: Type,
}

/// What the callable returns.
pub(crate) enum Output {
    /// A plain value (`()` when nothing is declared): stored as the result.
    Value(Type),
    /// `Result<T, E>` (any alias named `Result`): `T` is stored, `Err` fails the task.
    Fallible(Type),
    /// `impl Iterator<Item = I>` or `impl Stream<Item = I>`: each item is stored (`T`, where `I`
    /// is `T` or `Result<T, E>`).
    Items(Box<Items>),
}

/// The items of a callable that returns `impl Iterator` or `impl Stream`.
pub(crate) struct Items {
    /// The type each item is stored as.
    pub(crate) item: Type,
    /// Whether items are `Result`s, an `Err` failing the producer.
    pub(crate) fallible: bool,
    /// `impl Stream` (read with `.await`), not `impl Iterator`.
    pub(crate) stream: bool,
    /// The declared return type (for errors at its span).
    pub(crate) declared: Type,
}

impl Output {
    /// The type the result's `ObjectRef` carries (for items, each item's).
    pub(crate) fn stored(&self) -> &Type {
        match self {
            Output::Value(t) | Output::Fallible(t) => t,
            Output::Items(items) => &items.item,
        }
    }
}

pub(crate) struct Callable {
    pub(crate) name: syn::Ident,
    pub(crate) is_async: bool,
    pub(crate) receiver: Receiver,
    pub(crate) params: Vec<Param>,
    pub(crate) output: Output,
    /// With `num_returns = N`: the N types of the returned tuple, each its own object.
    pub(crate) returns: Option<Vec<Type>>,
    /// With `streaming`: its items are stored one by one (the output is [`Output::Items`]).
    pub(crate) streaming: bool,
    /// An actor method's `backpressure = N` (a remote function's is an option setter).
    pub(crate) backpressure: Option<u32>,
}

/// Builds the model of `sig`, reporting every rule it breaks. `what` names the callable in
/// messages ("remote functions", "actor methods").
pub(crate) fn parse(sig: &syn::Signature, what: &str, errors: &mut Errors) -> Callable {
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.add(
            &sig.generics,
            format!(
                "{what} cannot be generic: each one is registered under one id and its arguments \
                 cross the object store as concrete types; write one per concrete type"
            ),
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.add(unsafety, format!("{what} cannot be `unsafe`"));
    }
    if let Some(variadic) = &sig.variadic {
        errors.add(variadic, format!("{what} cannot be variadic"));
    }
    let mut receiver = Receiver::None;
    let mut params = Vec::new();
    for (index, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() || r.colon_token.is_some() {
                    errors.add(
                        r,
                        format!(
                            "{what} take `&self` or `&mut self`: the actor keeps its state between \
                             calls, so a method cannot consume it"
                        ),
                    );
                } else if r.mutability.is_some() {
                    receiver = Receiver::Exclusive;
                } else {
                    receiver = Receiver::Shared;
                }
            }
            FnArg::Typed(typed) => {
                let (kind, ty) = classify(&typed.ty, what, errors);
                let name = match &*typed.pat {
                    Pat::Ident(p) if p.subpat.is_none() => p.ident.clone(),
                    _ => format_ident!("arg{}", index),
                };
                params.push(Param { name, kind, ty });
            }
        }
    }
    let output = match &sig.output {
        ReturnType::Default => Output::Value(syn::parse_quote!(())),
        ReturnType::Type(_, ty) => match (&**ty, items(ty)) {
            (_, Some(items)) => Output::Items(items),
            (Type::ImplTrait(_), None) => {
                errors.add(
                    ty,
                    format!(
                        "{what} must name their return type: results are stored as objects (a \
                         streaming one returns `impl Iterator<Item = T>` or \
                         `impl Stream<Item = T>`)"
                    ),
                );
                Output::Value((**ty).clone())
            }
            _ => match result_ok_type(ty) {
                Some(ok) => Output::Fallible(ok),
                None => Output::Value((**ty).clone()),
            },
        },
    };
    Callable {
        name: sig.ident.clone(),
        is_async: sig.asyncness.is_some(),
        receiver,
        params,
        output,
        returns: None,
        streaming: false,
        backpressure: None,
    }
}

/// The items of `impl Iterator<Item = I>` or `impl Stream<Item = I>` (other bounds, such as
/// `+ Send`, allowed beside).
fn items(ty: &Type) -> Option<Box<Items>> {
    let Type::ImplTrait(bounds) = ty else {
        return None;
    };
    bounds.bounds.iter().find_map(|bound| {
        let syn::TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let last = bound.path.segments.last()?;
        let stream = match last.ident.to_string().as_str() {
            "Iterator" => false,
            "Stream" => true,
            _ => return None,
        };
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        let item = args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Item" => Some(assoc.ty.clone()),
            _ => None,
        })?;
        let (item, fallible) = match result_ok_type(&item) {
            Some(ok) => (ok, true),
            None => (item, false),
        };
        Some(Box::new(Items {
            item,
            fallible,
            stream,
            declared: ty.clone(),
        }))
    })
}

/// How a parameter of type `ty` takes its argument, and the type of the value it is given;
/// what cannot work is reported at its span.
fn classify(ty: &Type, what: &str, errors: &mut Errors) -> (ParamKind, Type) {
    match ty {
        Type::Reference(r) => {
            let target = &*r.elem;
            if r.mutability.is_some() {
                errors.add(
                    r,
                    format!(
                        "{what} cannot take `&mut` arguments: an argument is a stored object that \
                         others may read too; take it by value (`T`, moved in when nothing else \
                         holds it) and return what changed"
                    ),
                );
            } else if let Some(lifetime) = &r.lifetime {
                errors.add(
                    lifetime,
                    format!("{what} take `&T` without a lifetime: the borrow lasts for the call"),
                );
            } else if is_path(target, "str") {
                errors.add(
                    r,
                    format!(
                        "{what} take `String` or `&String`, not `&str`: arguments are stored \
                         objects, and a stored string is a `String`"
                    ),
                );
            } else if let Type::Slice(slice) = target {
                // Stored as a `Vec`; the element must be a plain number (checked by the
                // generated code's assertions, at this span).
                let elem = &slice.elem;
                let stored = syn::parse_quote_spanned!(elem.span()=> ::std::vec::Vec<#elem>);
                return (ParamKind::Slice, stored);
            } else if matches!(target, Type::TraitObject(_) | Type::ImplTrait(_)) {
                errors.add(
                    r,
                    format!("{what} cannot take trait objects: name a concrete type"),
                );
            }
            (ParamKind::Borrowed, target.clone())
        }
        Type::ImplTrait(t) => {
            errors.add(
                t,
                format!("{what} cannot take `impl Trait` arguments: name a concrete type"),
            );
            (ParamKind::Owned, ty.clone())
        }
        _ => match arc_target(ty) {
            Some(target) => (ParamKind::Shared, target),
            None => (ParamKind::Owned, ty.clone()),
        },
    }
}

/// `result` (a `Result<T, E>`) as `anyhow::Result<T>`.
fn wrap_err(result: TokenStream) -> TokenStream {
    quote! {
        match #result {
            ::core::result::Result::Ok(value) => ::core::result::Result::Ok(value),
            ::core::result::Result::Err(error) => ::core::result::Result::Err({
                #[allow(unused_imports)]
                use ::rustyray::__private::{ViaAnyhow as _, ViaDisplay as _};
                (&&::rustyray::__private::ErrWrap::new(error)).into_task_error()
            }),
        }
    }
}

/// Whether `ty` is `()`.
fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// Whether `ty` is the path `name` (one segment, no arguments).
fn is_path(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident(name))
}

/// `T` if `ty` is `Arc<T>` (by any path ending in `Arc`).
fn arc_target(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Arc" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match (args.args.len(), args.args.first()?) {
        (1, GenericArgument::Type(target)) => Some(target.clone()),
        _ => None,
    }
}

/// `T` if `ty` is `Result<T, ..>` or an alias such as `anyhow::Result<T>`.
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ok) => Some(ok.clone()),
        _ => None,
    }
}

/// Whether `tokens` mention `Self` anywhere.
pub(crate) fn mentions_self(tokens: TokenStream) -> Option<Span> {
    tokens.into_iter().find_map(|tree| match tree {
        TokenTree::Ident(ident) if ident == "Self" => Some(ident.span()),
        TokenTree::Group(group) => mentions_self(group.stream()),
        _ => None,
    })
}

impl Callable {
    /// The `rustyray::__private` function that encodes its outcome for the registry: with
    /// `num_returns`, as the tuple's fields, so that each part is read by itself.
    pub(crate) fn encode_fn(&self) -> syn::Ident {
        let name = if self.returns.is_some() {
            "encode_parts"
        } else if self.vec_element().is_some() {
            "encode_vec"
        } else {
            "encode"
        };
        syn::Ident::new(name, Span::call_site())
    }

    /// `T` when the result is stored as a `Vec<T>` (written so), which a call may ask to come
    /// back as several objects with `num_returns(n)`.
    pub(crate) fn vec_element(&self) -> Option<&Type> {
        if self.streaming || self.returns.is_some() {
            return None;
        }
        let Type::Path(path) = self.output.stored() else {
            return None;
        };
        let last = path.path.segments.last()?;
        if last.ident != "Vec" {
            return None;
        }
        match &last.arguments {
            syn::PathArguments::AngleBracketed(args) if args.args.len() == 1 => {
                match args.args.first()? {
                    syn::GenericArgument::Type(element) => Some(element),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Sets `num_returns = n` (given at `at`), checking that the result is a tuple of `n`
    /// values; what is wrong is reported at its span. One return is the plain form.
    pub(crate) fn set_num_returns(&mut self, n: u32, at: Span, errors: &mut Errors) {
        if n == 1 {
            return;
        }
        if !(2..=8).contains(&n) {
            errors.push(syn::Error::new(
                at,
                "`num_returns` takes a number from 1 to 8",
            ));
            return;
        }
        let stored = self.output.stored();
        match stored {
            Type::Tuple(tuple) if tuple.elems.len() == n as usize => {
                self.returns = Some(tuple.elems.iter().cloned().collect());
            }
            _ => errors.add(
                stored,
                format!(
                    "`num_returns = {n}` needs a tuple of {n} values as the result (for example \
                     `-> ({})`, or a `Result` of one), to store each as its own object",
                    vec!["u64"; n as usize].join(", ")
                ),
            ),
        }
    }

    /// Sets `streaming` (given at `at`, or not given): checks that the result is items exactly
    /// when it is set, and that it does not meet `num_returns`.
    pub(crate) fn set_streaming(&mut self, at: Option<Span>, attribute: &str, errors: &mut Errors) {
        match (&self.output, at) {
            (Output::Items(_), Some(at)) => {
                if self.returns.is_some() {
                    errors.push(syn::Error::new(
                        at,
                        "`streaming` and `num_returns` do not go together: a stream's items \
                         are already objects of their own",
                    ));
                }
                self.streaming = true;
            }
            (Output::Items(items), None) => errors.add(
                &items.declared,
                format!(
                    "this returns items one by one: add `streaming` (`{attribute}`) to store \
                     each as an object the caller reads while this still runs, or return a \
                     `Vec` of them"
                ),
            ),
            (other, Some(at)) => {
                let message = "`streaming` needs the items as the result: return \
                               `impl Iterator<Item = T>` (or `Result<T, E>` items) or \
                               `impl Stream<Item = T>`";
                match other {
                    // An `impl` of another trait is refused already, at the same span.
                    Output::Value(Type::ImplTrait(_)) => {}
                    Output::Value(ty) | Output::Fallible(ty) if !is_unit(ty) => {
                        errors.add(ty, message)
                    }
                    _ => errors.push(syn::Error::new(at, message)),
                }
            }
            (_, None) => {}
        }
    }

    /// The body of a streaming task closure, given its sink `sink`: reads the arguments, calls
    /// `callee`, and sends its items, each as `anyhow::Result<T>`. A sync body for an
    /// `Iterator` from a sync function; otherwise the future of an async one.
    pub(crate) fn stream_body(&self, callee: TokenStream, sink: &syn::Ident) -> TokenStream {
        let names = self.names();
        let reads = self.read_slots();
        let pass = self.pass();
        let send = self.send_items(quote!(#callee(#(#pass),*)), sink);
        if self.stream_is_async() {
            quote! {
                #reads
                async move {
                    #(let #names = #names?;)*
                    let mut #sink = #sink;
                    #send
                }
            }
        } else {
            quote! {
                #reads
                #(let #names = #names?;)*
                let mut #sink = #sink;
                #send
            }
        }
    }

    /// The expression that sends the items of `call` (the streaming function called, not
    /// awaited) to `sink`, each as `anyhow::Result<T>`: `anyhow::Result<()>`, awaited when the
    /// items come from async code.
    pub(crate) fn send_items(&self, call: TokenStream, sink: &syn::Ident) -> TokenStream {
        let Output::Items(items) = &self.output else {
            unreachable!("checked by set_streaming")
        };
        let convert = if items.fallible {
            let wrapped = wrap_err(quote!(item));
            quote!(|item| #wrapped)
        } else {
            quote!(::core::result::Result::Ok)
        };
        let call = if self.is_async {
            quote!(#call.await)
        } else {
            call
        };
        if self.stream_is_async() {
            let source = if items.stream {
                quote!(::rustyray::__private::map_stream(#call, #convert))
            } else {
                quote!(::rustyray::__private::iter_stream(
                    ::core::iter::Iterator::map(::core::iter::IntoIterator::into_iter(#call), #convert)
                ))
            };
            quote!(#sink.send_all_async(#source).await)
        } else {
            quote! {
                #sink.send_all(::core::iter::Iterator::map(
                    ::core::iter::IntoIterator::into_iter(#call),
                    #convert,
                ))
            }
        }
    }

    /// The body of a streaming function's or method's entry by bytes, from `names` holding
    /// the decoded arguments and `feed` where its items go: sends them, then ends the call once
    /// they are stored.
    pub(crate) fn stream_entry(
        &self,
        callee: TokenStream,
        feed: &syn::Ident,
        id: &str,
    ) -> TokenStream {
        let sink = syn::Ident::new("__sink", Span::mixed_site());
        let item = self.output.stored();
        let args = self.invoke_args();
        let send = self.send_items(quote!(#callee(#args)), &sink);
        quote! {
            let mut #sink = ::rustyray::__private::stream_sink::<#item>(#feed);
            let output: ::rustyray::__private::anyhow::Result<()> = #send;
            ::rustyray::__private::finish_stream(#id, #sink, output).await
        }
    }

    /// Whether a streaming body runs as async code (an async function, or a `Stream`).
    pub(crate) fn stream_is_async(&self) -> bool {
        self.is_async || matches!(&self.output, Output::Items(items) if items.stream)
    }

    /// What `remote` (or a method call) returns, and the expression that makes it from
    /// `result`, the ref of the task's whole result: the ref itself, or with several returns
    /// one ref per field.
    pub(crate) fn refs_from(&self, result: &syn::Ident, name: &str) -> (TokenStream, TokenStream) {
        if self.streaming {
            let item = self.output.stored();
            return (quote!(::rustyray::ObjectRefStream<#item>), quote!(#result));
        }
        match &self.returns {
            Some(types) => {
                let split = format_ident!("split{}", types.len());
                (
                    quote!((#(::rustyray::ObjectRef<#types>,)*)),
                    quote!(::rustyray::__private::#split(#result, #name)),
                )
            }
            None => {
                let stored = self.output.stored();
                (quote!(::rustyray::ObjectRef<#stored>), quote!(#result))
            }
        }
    }

    /// `name: impl IntoArg<T>, ...` for the generated `remote`.
    pub(crate) fn remote_params(&self) -> TokenStream {
        let params = self
            .params
            .iter()
            .map(|Param { name, ty, .. }| quote!(#name: impl ::rustyray::task::IntoArg<#ty>));
        quote!(#(#params),*)
    }

    /// Adds to `attrs` what a signature that borrows stored values needs: `&Vec<T>` and
    /// `&String` are what it must say (the stored types), so clippy's advice to take a slice
    /// does not apply.
    pub(crate) fn allow_borrowed_stored_types(&self, attrs: &mut Vec<syn::Attribute>) {
        if self.params.iter().any(|p| p.kind == ParamKind::Borrowed) {
            attrs.push(syn::parse_quote!(#[allow(clippy::ptr_arg)]));
        }
    }

    pub(crate) fn names(&self) -> Vec<&syn::Ident> {
        self.params.iter().map(|p| &p.name).collect()
    }

    /// Checks, at each type's own span, that arguments and the result can be stored (and that
    /// a `&[T]` parameter's `T` is a plain number).
    pub(crate) fn assertions(&self) -> TokenStream {
        let args = self.params.iter().map(|Param { ty, kind, .. }| {
            let numbers = (*kind == ParamKind::Slice).then(
                || quote_spanned!(ty.span()=> ::rustyray::__private::assert_number_vec::<#ty>();),
            );
            quote_spanned!(ty.span()=> ::rustyray::__private::assert_arg::<#ty>(); #numbers)
        });
        let stored = self.output.stored();
        let result =
            quote_spanned!(stored.span()=> ::rustyray::__private::assert_result::<#stored>(););
        quote!(#(#args)* #result)
    }

    /// `let name = builder.arg(name);` for each parameter (`arg_shared` for those that
    /// borrow or share the value).
    pub(crate) fn bind_args(&self, builder: &syn::Ident) -> TokenStream {
        let binds = self
            .params
            .iter()
            .map(|Param { name, kind, .. }| match kind {
                ParamKind::Owned => quote!(let #name = #builder.arg(#name);),
                ParamKind::Borrowed | ParamKind::Shared | ParamKind::Slice => {
                    quote!(let #name = #builder.arg_shared(#name);)
                }
            });
        quote!(#(#binds)*)
    }

    /// The arguments as the body passes them, from `name`s holding each parameter's value
    /// (`T`) or its shared value (`Arc<T>`, for `&T` and `Arc<T>` parameters).
    fn pass(&self) -> Vec<TokenStream> {
        self.params
            .iter()
            .map(|Param { name, kind, .. }| match kind {
                ParamKind::Owned | ParamKind::Shared => quote!(#name),
                ParamKind::Borrowed => quote!(&*#name),
                ParamKind::Slice => quote!(#name.as_slice()),
            })
            .collect()
    }

    /// The arguments of a call by bytes, from `name`s holding the decoded values.
    pub(crate) fn invoke_args(&self) -> TokenStream {
        let args = self
            .params
            .iter()
            .map(|Param { name, kind, .. }| match kind {
                ParamKind::Owned => quote!(#name),
                ParamKind::Borrowed => quote!(&#name),
                ParamKind::Shared => quote!(::std::sync::Arc::new(#name)),
                ParamKind::Slice => quote!(&*#name),
            });
        quote!(#(#args),*)
    }

    /// `let name = name.value();` (or `.shared()`) for each parameter: each slot read as a
    /// `Result` (a by-value parameter's value moved when it can be, see `ArgSlot::value`).
    fn read_slots(&self) -> TokenStream {
        let reads = self
            .params
            .iter()
            .map(|Param { name, kind, .. }| match kind {
                ParamKind::Owned => quote!(let #name = #name.value();),
                ParamKind::Borrowed | ParamKind::Shared | ParamKind::Slice => {
                    quote!(let #name = #name.shared();)
                }
            });
        quote!(#(#reads)*)
    }

    /// The body of the task closure: reads the arguments, calls `callee`, and turns its output
    /// into `anyhow::Result<T>`.
    ///
    /// Sync: `let a = a.value()?; Ok(callee(a, ..))`. Async: reads the slots first, then returns
    /// the future, which holds what it read (a `&T` parameter borrows from its `Arc<T>`).
    pub(crate) fn task_body(&self, callee: TokenStream) -> TokenStream {
        let names = self.names();
        let reads = self.read_slots();
        let pass = self.pass();
        let call = if self.is_async {
            quote!(#callee(#(#pass),*).await)
        } else {
            quote!(#callee(#(#pass),*))
        };
        let wrapped = self.wrap_output(call);
        if self.is_async {
            quote! {
                #reads
                async move {
                    #(let #names = #names?;)*
                    #wrapped
                }
            }
        } else {
            quote! {
                #reads
                #(let #names = #names?;)*
                #wrapped
            }
        }
    }

    /// Hands each `&T` parameter's value, and each `&[T]` one's copy, back after a call by
    /// bytes (`Arguments::recycle`): on a Ray worker, a large `Vec` of numbers keeps its memory
    /// for the next call's argument.
    pub(crate) fn recycle_args(&self) -> TokenStream {
        let recycle = self
            .params
            .iter()
            .map(|Param { name, kind, .. }| match kind {
                ParamKind::Borrowed => quote!(::rustyray::__private::Arguments::recycle(#name);),
                ParamKind::Slice => quote!(::rustyray::__private::Arguments::recycle_slice(#name);),
                ParamKind::Owned | ParamKind::Shared => quote!(),
            });
        quote!(#(#recycle)*)
    }

    /// `call` turned into `anyhow::Result<T>`.
    pub(crate) fn wrap_output(&self, call: TokenStream) -> TokenStream {
        match self.output {
            Output::Value(_) | Output::Items(_) => quote!(::core::result::Result::Ok(#call)),
            Output::Fallible(_) => wrap_err(call),
        }
    }

    /// `let name: T = ...;` for each parameter, read from the entry point's `args` one by one
    /// (each as its own type, so a `Vec` of numbers in a frame is read in one copy), then
    /// `feed` (a stream's) when given, and a check that nothing is left over.
    pub(crate) fn read_args(&self, feed: Option<&syn::Ident>) -> TokenStream {
        let reader = syn::Ident::new("__args", Span::mixed_site());
        let types = syn::Ident::new("__types", Span::mixed_site());
        let reads = self
            .params
            .iter()
            .map(|Param { name, kind, ty }| match kind {
                ParamKind::Slice => {
                    quote_spanned!(ty.span()=> let #name = #reader.next_slice::<#ty>()?;)
                }
                _ => quote!(let #name: #ty = #reader.next()?;),
            });
        let feed_ty = quote!(::rustyray::__private::StreamFeed);
        let type_names = self.type_names_with(feed.map(|_| feed_ty.clone()));
        let feed = feed.map(|feed| quote!(let #feed: #feed_ty = #reader.next()?;));
        quote! {
            let #types: &[&'static str] = #type_names;
            let mut #reader = ::rustyray::__private::Arguments::new(&args, #types)?;
            #(#reads)*
            #feed
            #reader.end()?;
        }
    }

    /// The parameters' type names, in order (`&[type_name::<A>(), ..]`, with `extra`'s last
    /// when given), which the framed arguments of a call on a Ray worker are checked against.
    pub(crate) fn type_names_with(&self, extra: Option<TokenStream>) -> TokenStream {
        let tys = self.params.iter().map(|p| p.ty.to_token_stream());
        let tys = tys.chain(extra);
        quote!(&[#(::core::any::type_name::<#tys>()),*])
    }

    /// The stored type's tokens.
    pub(crate) fn stored_type(&self) -> TokenStream {
        self.output.stored().to_token_stream()
    }
}
