//! `#[remote]`: parse the function and its options, check them, expand to a module of remote
//! stubs beside the function.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

use crate::args::Errors;
use crate::options::{self, OptionValue, Takes};
use crate::signature::{self, Callable};

const OPTIONS: &[(&str, Takes)] = &[
    ("num_cpus", Takes::Number),
    ("num_gpus", Takes::Number),
    ("resources", Takes::Resources),
    ("max_retries", Takes::Count),
    ("retry_exceptions", Takes::Flag),
    ("name", Takes::Text),
    ("num_returns", Takes::Count),
    ("streaming", Takes::Flag),
    ("backpressure", Takes::Count),
];

/// Everything the expansion needs.
struct Model {
    function: syn::ItemFn,
    callable: Callable,
    defaults: Vec<(syn::Ident, OptionValue)>,
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let model = parse(attr, item)?;
    Ok(generate(&model))
}

fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Model> {
    let mut function: syn::ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "#[rustyray::remote] goes on a function; for a struct and its methods use \
             #[rustyray::actor]",
        )
    })?;
    let mut errors = Errors::default();
    let mut defaults = options::parse(attr, OPTIONS, "remote functions", &mut errors);
    let mut callable = signature::parse(&function.sig, "remote functions", &mut errors);
    // `num_returns` is no per-call setting: the signature of `remote` depends on it.
    if let Some(at) = defaults.iter().position(|(key, _)| key == "num_returns") {
        if let (key, OptionValue::Count(n)) = defaults.remove(at) {
            callable.set_num_returns(n, key.span(), &mut errors);
        }
    }
    // Nor is `streaming`; `backpressure`, the default of a per-call option, needs it.
    let streaming = match defaults.iter().position(|(key, _)| key == "streaming") {
        Some(at) => match defaults.remove(at) {
            (key, OptionValue::Flag(true)) => Some(key.span()),
            _ => None,
        },
        None => None,
    };
    callable.set_streaming(streaming, "#[rustyray::remote(streaming)]", &mut errors);
    if let Some((key, _)) = defaults.iter().find(|(key, _)| key == "backpressure") {
        if streaming.is_none() {
            errors.add(
                key,
                "`backpressure` bounds how far a stream's producer runs ahead: it goes with \
                 `streaming`",
            );
        }
    }
    callable.allow_borrowed_stored_types(&mut function.attrs);
    if callable.receiver != signature::Receiver::None {
        errors.add(&function.sig, "#[rustyray::remote] goes on free functions; methods belong in an #[rustyray::actor] impl");
    }
    // The stubs live in a module beside the function; paths relative to the function's module
    // would resolve differently there.
    for param in &callable.params {
        if let Some(span) = relative_path(&param.ty) {
            errors.push(syn::Error::new(
                span,
                "use a `crate::` path or import the type: `self::` and `super::` paths are not \
                 supported in remote function signatures",
            ));
        }
    }
    errors.finish()?;
    Ok(Model {
        function,
        callable,
        defaults,
    })
}

fn relative_path(ty: &syn::Type) -> Option<proc_macro2::Span> {
    fn scan(tokens: TokenStream) -> Option<proc_macro2::Span> {
        tokens.into_iter().find_map(|tree| match tree {
            proc_macro2::TokenTree::Ident(i) if i == "super" || i == "self" => Some(i.span()),
            proc_macro2::TokenTree::Group(g) => scan(g.stream()),
            _ => None,
        })
    }
    scan(ty.to_token_stream())
}

fn generate(model: &Model) -> TokenStream {
    let Model {
        function,
        callable,
        defaults,
    } = model;
    let vis = &function.vis;
    let name = &callable.name;
    let name_str = name.to_string();
    let params = callable.remote_params();
    let names = callable.names();
    let assertions = callable.assertions();
    let builder = syn::Ident::new("__task", proc_macro2::Span::mixed_site());
    let bind = callable.bind_args(&builder);
    let sink = syn::Ident::new("__sink", proc_macro2::Span::mixed_site());
    let (spawn, closure) = match (callable.streaming, callable.stream_is_async()) {
        (true, true) => (quote!(spawn_stream_async), quote!(move |#sink|)),
        (true, false) => (quote!(spawn_stream), quote!(move |#sink|)),
        (false, _) if callable.is_async => (quote!(spawn_async), quote!(move ||)),
        (false, _) => (quote!(spawn), quote!(move ||)),
    };
    let body = if callable.streaming {
        callable.stream_body(quote!(super::#name), &sink)
    } else {
        callable.task_body(quote!(super::#name))
    };
    let setters = options::setters(defaults);
    // With several returns, the task's tuple is split into one object per field.
    let result = syn::Ident::new("__result", proc_macro2::Span::mixed_site());
    let (refs, split) = callable.refs_from(&result, &name_str);
    let registration = registration(callable, &name_str);
    let stream_options = if callable.streaming {
        quote! {
            /// The producer waits while `n` of its items are unconsumed.
            pub fn backpressure(self, n: usize) -> Self {
                Self(self.0.backpressure(n))
            }
        }
    } else {
        quote!()
    };
    // A `Vec` result may come back as several objects, as many as each call says.
    let dynamic_returns = match callable.vec_element() {
        Some(_) => quote! {
            /// The result comes back as `n` objects, one per element (Ray's `num_returns` set
            /// per call), each freed on its own; finish with `.remote(..)`. A result of
            /// another length fails all `n` with an error saying so.
            pub fn num_returns(self, n: usize) -> Returns {
                Returns(Self(self.0.dynamic_returns(n)), n)
            }
        },
        None => quote!(),
    };
    let returns_type = match callable.vec_element() {
        Some(element) => quote! {
            /// A call whose `Vec` result comes back as several objects; finish with
            /// `.remote(..)`.
            #[must_use = "the call is made only by `.remote(..)`"]
            #[derive(Debug, Clone)]
            pub struct Returns(Options, usize);

            impl Returns {
                /// Runs the function as a task; returns one ref per element of its result.
                pub fn remote(self, #params) -> ::std::vec::Vec<::rustyray::ObjectRef<#element>> {
                    ::rustyray::__private::split_vec(self.0.remote(#(#names),*), self.1, #name_str)
                }
            }
        },
        None => quote!(),
    };
    let doc = format!(
        "Remote calls of [`{name}()`](fn@{name}): `{name}::remote(..)` runs it as a task and \
         returns the result's `ObjectRef` at once; `{name}::options()` sets per-call options first."
    );
    quote! {
        #function

        #[doc = #doc]
        #[allow(unused_imports, non_snake_case, unreachable_pub, clippy::all)]
        #vis mod #name {
            use super::*;

            /// Options of one call of this remote function; finish with `.remote(..)`.
            #[must_use = "the call is made only by `.remote(..)`"]
            #[derive(Debug, Clone)]
            pub struct Options(::rustyray::task::TaskOptions);

            /// The options of a call, starting from the defaults given in the attribute.
            pub fn options() -> Options {
                Options(::rustyray::task::TaskOptions::default() #setters)
            }

            /// Runs the function as a task; returns its result's ref at once. Each argument may
            /// be a value or a ref to one.
            pub fn remote(#params) -> #refs {
                self::options().remote(#(#names),*)
            }

            impl Options {
                ::rustyray::__private::task_option_methods!(newtype);

                /// Runs the function as a task with these options.
                pub fn remote(self, #params) -> #refs {
                    #assertions
                    let mut #builder = ::rustyray::task::TaskBuilder::new(#name_str)
                        .registered(::core::module_path!())
                        .options(self.0);
                    #bind
                    let #result = #builder.#spawn(#closure { #body });
                    #split
                }

                #stream_options
                #dynamic_returns
            }

            #returns_type

            #registration
        }
    }
}

/// The function's entry for calls by bytes (Ray's workers), and its registration.
fn registration(callable: &Callable, name_str: &str) -> TokenStream {
    let name = &callable.name;
    let body = if callable.streaming {
        // A stream's producer gets where its items go as its last argument.
        let feed = syn::Ident::new("__feed", proc_macro2::Span::mixed_site());
        let read = callable.read_args(Some(&feed));
        let send = callable.stream_entry(quote!(super::#name), &feed, name_str);
        quote! {
            #read
            #send
        }
    } else {
        let stored = callable.stored_type();
        let read = callable.read_args(None);
        let encode = callable.encode_fn();
        let args = callable.invoke_args();
        let call = if callable.is_async {
            quote!(super::#name(#args).await)
        } else {
            quote!(super::#name(#args))
        };
        let invoke_call = callable.wrap_output(call);
        let recycle = callable.recycle_args();
        quote! {
            #read
            let output: ::rustyray::__private::anyhow::Result<#stored> = #invoke_call;
            #recycle
            ::rustyray::__private::#encode(#name_str, output)
        }
    };
    quote! {
        #[doc(hidden)]
        pub fn __invoke<'a>(
            args: &'a [u8],
        ) -> ::rustyray::task::BoxFuture<'a, ::rustyray::Result<::std::vec::Vec<u8>>> {
            ::std::boxed::Box::pin(async move { #body })
        }

        ::rustyray::__private::inventory::submit! {
            ::rustyray::__private::Registration::function(::core::module_path!(), __invoke)
        }
    }
}
