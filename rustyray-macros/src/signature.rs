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

/// One parameter: the name the generated code uses and its declared type.
pub(crate) struct Param {
    pub(crate) name: syn::Ident,
    pub(crate) ty: Type,
}

/// What the callable returns.
pub(crate) enum Output {
    /// A plain value (`()` when nothing is declared): stored as the result.
    Value(Type),
    /// `Result<T, E>` (any alias named `Result`): `T` is stored, `Err` fails the task.
    Fallible(Type),
}

impl Output {
    /// The type the result's `ObjectRef` carries.
    pub(crate) fn stored(&self) -> &Type {
        match self {
            Output::Value(t) | Output::Fallible(t) => t,
        }
    }
}

pub(crate) struct Callable {
    pub(crate) name: syn::Ident,
    pub(crate) is_async: bool,
    pub(crate) receiver: Receiver,
    pub(crate) params: Vec<Param>,
    pub(crate) output: Output,
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
                check_owned(&typed.ty, what, errors);
                let name = match &*typed.pat {
                    Pat::Ident(p) if p.subpat.is_none() => p.ident.clone(),
                    _ => format_ident!("arg{}", index),
                };
                params.push(Param {
                    name,
                    ty: (*typed.ty).clone(),
                });
            }
        }
    }
    let output = match &sig.output {
        ReturnType::Default => Output::Value(syn::parse_quote!(())),
        ReturnType::Type(_, ty) => {
            if let Type::ImplTrait(_) = &**ty {
                errors.add(
                    ty,
                    format!("{what} must name their return type: results are stored as objects"),
                );
            }
            match result_ok_type(ty) {
                Some(ok) => Output::Fallible(ok),
                None => Output::Value((**ty).clone()),
            }
        }
    };
    Callable {
        name: sig.ident.clone(),
        is_async: sig.asyncness.is_some(),
        receiver,
        params,
        output,
    }
}

fn check_owned(ty: &Type, what: &str, errors: &mut Errors) {
    match ty {
        Type::Reference(r) => errors.add(
            r,
            format!(
                "{what} take owned arguments (for example `String`, not `&str`): arguments are \
                 stored in the object store and may arrive as refs"
            ),
        ),
        Type::ImplTrait(t) => errors.add(
            t,
            format!("{what} cannot take `impl Trait` arguments: name a concrete type"),
        ),
        _ => {}
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
    /// `name: impl IntoArg<T>, ...` for the generated `remote`.
    pub(crate) fn remote_params(&self) -> TokenStream {
        let params = self
            .params
            .iter()
            .map(|Param { name, ty }| quote!(#name: impl ::rustyray::task::IntoArg<#ty>));
        quote!(#(#params),*)
    }

    pub(crate) fn names(&self) -> Vec<&syn::Ident> {
        self.params.iter().map(|p| &p.name).collect()
    }

    /// Checks, at each type's own span, that arguments and the result can be stored.
    pub(crate) fn assertions(&self) -> TokenStream {
        let args = self.params.iter().map(|Param { ty, .. }| {
            quote_spanned!(ty.span()=> ::rustyray::__private::assert_arg::<#ty>();)
        });
        let stored = self.output.stored();
        let result =
            quote_spanned!(stored.span()=> ::rustyray::__private::assert_result::<#stored>(););
        quote!(#(#args)* #result)
    }

    /// `let name = builder.arg(name);` for each parameter.
    pub(crate) fn bind_args(&self, builder: &syn::Ident) -> TokenStream {
        let names = self.names();
        quote!(#(let #names = #builder.arg(#names);)*)
    }

    /// The body of the task closure: reads the arguments, calls `callee`, and turns its output
    /// into `anyhow::Result<T>`.
    ///
    /// Sync: `Ok(callee(a.get()?, ..))`. Async: reads the slots first, then returns the future.
    pub(crate) fn task_body(&self, callee: TokenStream) -> TokenStream {
        let names = self.names();
        if self.is_async {
            let call = quote!(#callee(#(#names?),*).await);
            let wrapped = self.wrap_output(call);
            quote! {
                #(let #names = #names.get();)*
                async move { #wrapped }
            }
        } else {
            let call = quote!(#callee(#(#names.get()?),*));
            self.wrap_output(call)
        }
    }

    /// `call` turned into `anyhow::Result<T>`.
    pub(crate) fn wrap_output(&self, call: TokenStream) -> TokenStream {
        match self.output {
            Output::Value(_) => quote!(::core::result::Result::Ok(#call)),
            Output::Fallible(_) => quote! {
                match #call {
                    ::core::result::Result::Ok(value) => ::core::result::Result::Ok(value),
                    ::core::result::Result::Err(error) => ::core::result::Result::Err({
                        #[allow(unused_imports)]
                        use ::rustyray::__private::{ViaAnyhow as _, ViaDisplay as _};
                        (&&::rustyray::__private::ErrWrap::new(error)).into_task_error()
                    }),
                }
            },
        }
    }

    /// The types of the parameters, as a tuple type.
    pub(crate) fn tuple_type(&self) -> TokenStream {
        let tys = self.params.iter().map(|p| &p.ty);
        quote!((#(#tys,)*))
    }

    /// The parameters' type names, in order (`&[type_name::<A>(), ..]`), which the framed
    /// arguments of a call on a Ray worker are checked against.
    pub(crate) fn type_names(&self) -> TokenStream {
        let tys = self.params.iter().map(|p| &p.ty);
        quote!(&[#(::core::any::type_name::<#tys>()),*])
    }

    /// The stored type's tokens.
    pub(crate) fn stored_type(&self) -> TokenStream {
        self.output.stored().to_token_stream()
    }
}
