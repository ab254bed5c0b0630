//! `#[main]`: run `main` with the global runtime, then shut it down gracefully.

use proc_macro2::TokenStream;
use quote::quote;

use crate::args::Errors;
use crate::options::{self, Takes};

const OPTIONS: &[(&str, Takes)] = &[("num_cpus", Takes::Count), ("num_gpus", Takes::Count)];

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut function: syn::ItemFn = syn::parse2(item)
        .map_err(|e| syn::Error::new(e.span(), "#[rustyray::main] goes on `fn main`"))?;
    let mut errors = Errors::default();
    let config = options::parse(attr, OPTIONS, "#[rustyray::main]", &mut errors);
    if !function.sig.inputs.is_empty() {
        errors.add(&function.sig.inputs, "`main` takes no arguments");
    }
    if !function.sig.generics.params.is_empty() {
        errors.add(&function.sig.generics, "`main` cannot be generic");
    }
    errors.finish()?;
    let setters = options::setters(&config);
    let init = if config.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        quote!(::core::option::Option::Some(::rustyray::Config::default() #setters))
    };
    let body = &function.block;
    let output = match &function.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let new_body = if function.sig.asyncness.take().is_some() {
        quote!({ ::rustyray::__private::run_async_main::<#output, _>(#init, async move #body) })
    } else {
        quote!({ ::rustyray::__private::run_main::<#output>(#init, move || -> #output #body) })
    };
    function.block = syn::parse2(new_body)?;
    Ok(quote!(#function))
}
