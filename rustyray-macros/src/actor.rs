//! `#[actor]`: on a struct, the actor's handle types; on its inherent impl, the constructor as
//! `Type::remote(..)` and each method as a remote call on `ActorHandle<Type>`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::args::Errors;
use crate::options::{self, OptionValue, Takes};
use crate::signature::{self, Callable, Receiver};

/// What `#[rustyray::actor(..)]` says on the impl.
#[derive(Default)]
struct ImplOptions {
    /// `concurrent` (or `concurrency_groups`, which implies it): async `&self` methods may
    /// interleave. The span of the word, for errors about `Sync`.
    concurrent: Option<syn::Ident>,
    /// `concurrency_groups(io = 4, ..)`: each group's name and limit, in order.
    groups: Vec<(String, usize)>,
    /// Class defaults of the actor's options (`max_concurrency = 8`, `num_cpus = 1`, ..),
    /// which `Type::options()` starts from.
    defaults: Vec<(syn::Ident, OptionValue)>,
}

/// The options `#[rustyray::actor(..)]` takes as class defaults, as Ray's `@ray.remote(..)`
/// on a class does.
const CLASS_OPTIONS: &[(&str, Takes)] = &[
    ("max_concurrency", Takes::Count),
    ("num_cpus", Takes::Number),
    ("num_gpus", Takes::Number),
    ("resources", Takes::Resources),
    ("resource", Takes::Resources),
    ("max_restarts", Takes::Count),
    ("max_task_retries", Takes::Count),
];

/// What an async (`concurrent`) actor runs at once unless told otherwise: Ray's default for
/// async actors.
const ASYNC_DEFAULT_CONCURRENCY: u32 = 1000;

fn parse_impl_options(attr: TokenStream) -> syn::Result<ImplOptions> {
    let mut options = ImplOptions::default();
    if attr.is_empty() {
        return Ok(options);
    }
    let usage = "#[rustyray::actor] takes `concurrent`, `concurrency_groups(name = limit, ..)` \
                 and class defaults (`max_concurrency = n`, `num_cpus = n`, `num_gpus = n`, \
                 `resources(name = amount)`, `max_restarts = n`, `max_task_retries = n`) on the \
                 impl; set a name per actor with `Type::options().name(..).remote(..)`";
    let metas = syn::parse::Parser::parse2(
        syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
        attr.clone(),
    )
    .map_err(|_| syn::Error::new_spanned(&attr, usage))?;
    let mut class_defaults = TokenStream::new();
    for meta in metas {
        match &meta {
            syn::Meta::Path(path) if path.is_ident("concurrent") => {
                options.concurrent = path.get_ident().cloned();
            }
            syn::Meta::List(list) if list.path.is_ident("concurrency_groups") => {
                let pairs = list.parse_args_with(
                    syn::punctuated::Punctuated::<syn::MetaNameValue, syn::Token![,]>::parse_terminated,
                )?;
                for pair in pairs {
                    let name = pair.path.get_ident().ok_or_else(|| {
                        syn::Error::new_spanned(&pair.path, "expected a group name, as in `io = 4`")
                    })?;
                    let limit =
                        match &pair.value {
                            syn::Expr::Lit(syn::ExprLit {
                                lit: syn::Lit::Int(n),
                                ..
                            }) => n.base10_parse::<usize>()?,
                            other => return Err(syn::Error::new_spanned(
                                other,
                                "a concurrency group's limit is a whole number of calls, as in \
                                 `io = 4`",
                            )),
                        };
                    if limit == 0 {
                        return Err(syn::Error::new_spanned(
                            &pair.value,
                            "a concurrency group needs a limit of at least 1",
                        ));
                    }
                    if options.groups.iter().any(|(n, _)| name == n) {
                        return Err(syn::Error::new_spanned(
                            name,
                            "this group is declared twice",
                        ));
                    }
                    options.groups.push((name.to_string(), limit));
                }
                if options.groups.len() > 254 {
                    return Err(syn::Error::new_spanned(
                        list,
                        "at most 254 concurrency groups",
                    ));
                }
                options
                    .concurrent
                    .get_or_insert_with(|| syn::Ident::new("concurrency_groups", list.path.span()));
            }
            syn::Meta::Path(_) => return Err(syn::Error::new_spanned(meta, usage)),
            // Class defaults, and anything else (refused with the list of options).
            _ => {
                if !class_defaults.is_empty() {
                    class_defaults.extend(quote!(,));
                }
                class_defaults.extend(meta.to_token_stream());
            }
        }
    }
    let mut errors = Errors::default();
    options.defaults = options::parse(
        class_defaults,
        CLASS_OPTIONS,
        "besides `concurrent` and `concurrency_groups(..)`, actors",
        &mut errors,
    );
    errors.finish()?;
    let concurrency = options
        .defaults
        .iter()
        .find(|(key, _)| key == "max_concurrency");
    match (concurrency, &options.concurrent) {
        (Some((key, OptionValue::Count(0))), _) => {
            return Err(syn::Error::new_spanned(
                key,
                "max_concurrency = 0 would never run a call; use 1 or more",
            ))
        }
        (Some((key, OptionValue::Count(n))), None) if *n > 1 => {
            return Err(syn::Error::new_spanned(
                key,
                "max_concurrency above 1 needs methods that may run side by side: add \
                 `concurrent` (#[rustyray::actor(concurrent, max_concurrency = ..)]), so the \
                 actor's `&self` methods do (async ones interleave; sync ones run on the CPU \
                 pool, as Ray's threaded actors)",
            ))
        }
        _ => {}
    }
    Ok(options)
}

/// Names `ActorHandle<A>` answers itself, which a method of `A` would be hidden behind.
const RESERVED: &[&str] = &[
    "call",
    "id",
    "from_id",
    "clone",
    "clone_from",
    "eq",
    "ne",
    "fmt",
    "serialize",
    "deref",
    "to_owned",
];

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options = parse_impl_options(attr)?;
    let concurrent = options.concurrent.clone();
    let item = syn::parse2::<syn::Item>(item)?;
    if let (Some(word), false) = (&concurrent, matches!(item, syn::Item::Impl(_))) {
        return Err(syn::Error::new_spanned(
            word,
            "`concurrent` goes on the actor's impl block: #[rustyray::actor(concurrent)] impl ..",
        ));
    }
    if let (Some((key, _)), false) = (options.defaults.first(), matches!(item, syn::Item::Impl(_)))
    {
        return Err(syn::Error::new_spanned(
            key,
            format!(
                "`{key}` goes on the actor's impl block, as a class default: \
                 #[rustyray::actor({key} = ..)] impl .."
            ),
        ));
    }
    match item {
        syn::Item::Struct(item) => Ok(generate_type(&parse_type(item)?)),
        syn::Item::Enum(item) => {
            let ident = item.ident.clone();
            let vis = item.vis.clone();
            check_no_generics(&item.generics)?;
            Ok(generate_type(&TypeModel {
                item: item.into_token_stream(),
                ident,
                vis,
            }))
        }
        syn::Item::Impl(item) => Ok(generate_impl(&parse_impl(item, options)?)),
        other => Err(syn::Error::new_spanned(
            other,
            "#[rustyray::actor] goes on a struct and on its inherent impl block",
        )),
    }
}

fn check_no_generics(generics: &syn::Generics) -> syn::Result<()> {
    if generics.params.is_empty() && generics.where_clause.is_none() {
        return Ok(());
    }
    Err(syn::Error::new_spanned(
        generics,
        "actors cannot be generic: each actor type is registered under one id; write a \
         concrete type (a type alias of a generic struct is fine)",
    ))
}

// ---- the struct --------------------------------------------------------------------------------

struct TypeModel {
    item: TokenStream,
    ident: syn::Ident,
    vis: syn::Visibility,
}

fn parse_type(item: syn::ItemStruct) -> syn::Result<TypeModel> {
    check_no_generics(&item.generics)?;
    Ok(TypeModel {
        ident: item.ident.clone(),
        vis: item.vis.clone(),
        item: item.into_token_stream(),
    })
}

fn generate_type(model: &TypeModel) -> TokenStream {
    let TypeModel { item, ident, vis } = model;
    let methods = format_ident!("{}Methods", ident);
    let options = format_ident!("{}Options", ident);
    let methods_doc = format!(
        "The remote methods of [`{ident}`]: what `ActorHandle<{ident}>` dereferences to, so \
         `handle.method(..)` returns an `ObjectRef` at once."
    );
    let options_doc = format!(
        "Options of a new [`{ident}`] actor, from `{ident}::options()`; finish with `.remote(..)`."
    );
    // The `Actor` impl carries the struct's span, so a non-`Send` field is reported there.
    let actor_impl = quote_spanned! {ident.span()=>
        impl ::rustyray::actor::Actor for #ident {
            type Methods = #methods;
        }
    };
    quote! {
        #item

        #[doc = #methods_doc]
        #[derive(Debug)]
        #vis struct #methods {
            #[doc(hidden)]
            pub __rustyray_id: ::rustyray::actor::ActorId,
        }

        impl ::core::convert::From<::rustyray::actor::ActorId> for #methods {
            fn from(id: ::rustyray::actor::ActorId) -> Self {
                #methods { __rustyray_id: id }
            }
        }

        #actor_impl

        #[doc = #options_doc]
        #[must_use = "the actor starts only with `.remote(..)`"]
        #[derive(Debug, Clone)]
        #vis struct #options(#[doc(hidden)] pub ::rustyray::actor::ActorOptions);

        impl #options {
            ::rustyray::__private::actor_option_methods!(newtype);
        }
    }
}

// ---- the impl block ----------------------------------------------------------------------------

struct ImplModel {
    item: syn::ItemImpl,
    /// The actor type, as written after `impl`.
    self_ty: syn::Type,
    /// The last segment of its path (`Counter`), and the path to its module's items.
    class: String,
    sibling: Box<dyn Fn(&str) -> TokenStream>,
    constructor: Callable,
    methods: Vec<Callable>,
    /// `#[actor(concurrent)]`: async `&self` methods may interleave.
    concurrent: Option<syn::Ident>,
    /// `#[actor(concurrency_groups(..))]`: names and limits, in order.
    groups: Vec<(String, usize)>,
    /// Each method's concurrency group (0: the default one), in the order of `methods`.
    method_groups: Vec<u8>,
    /// The class defaults of its options.
    defaults: Vec<(syn::Ident, OptionValue)>,
}

fn parse_impl(mut item: syn::ItemImpl, options: ImplOptions) -> syn::Result<ImplModel> {
    let ImplOptions {
        concurrent,
        groups,
        defaults,
    } = options;
    let mut method_groups = Vec::new();
    let mut errors = Errors::default();
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[rustyray::actor] goes on the type's inherent impl (`impl Counter { .. }`), not on \
             a trait impl",
        ));
    }
    if let Err(e) = check_no_generics(&item.generics) {
        errors.push(e);
    }
    let syn::Type::Path(type_path) = &*item.self_ty else {
        return Err(syn::Error::new_spanned(
            &item.self_ty,
            "expected the actor's type name",
        ));
    };
    let last = type_path
        .path
        .segments
        .last()
        .expect("a path has a segment");
    let class = last.ident.to_string();
    let prefix: Vec<syn::Ident> = type_path
        .path
        .segments
        .iter()
        .take(type_path.path.segments.len() - 1)
        .map(|s| s.ident.clone())
        .collect();
    let leading = type_path.path.leading_colon;
    let sibling = {
        let class = class.clone();
        move |suffix: &str| {
            let ident = format_ident!("{}{}", class, suffix);
            quote!(#leading #(#prefix::)* #ident)
        }
    };

    let mut constructors: Vec<(Callable, Span)> = Vec::new();
    let mut methods = Vec::new();
    for impl_item in &mut item.items {
        let syn::ImplItem::Fn(f) = impl_item else {
            continue;
        };
        let attributes = take_method_attributes(&mut f.attrs, &mut errors);
        if attributes.skip {
            continue;
        }
        let has_receiver = matches!(f.sig.inputs.first(), Some(syn::FnArg::Receiver(_)));
        if !has_receiver {
            if let Some((_, at)) = attributes.num_returns {
                errors.push(syn::Error::new(
                    at,
                    "#[rustyray(num_returns = N)] goes on methods: a constructor returns the actor",
                ));
            }
            if let Some(at) = attributes.streaming {
                errors.push(syn::Error::new(
                    at,
                    "#[rustyray(streaming)] goes on methods: a constructor returns the actor",
                ));
            }
            if returns_self(&f.sig.output, &class) {
                let callable = signature::parse(&f.sig, "actor constructors", &mut errors);
                callable.allow_borrowed_stored_types(&mut f.attrs);
                constructors.push((callable, f.sig.ident.span()));
            }
            continue;
        }
        let mut callable = signature::parse(&f.sig, "actor methods", &mut errors);
        callable.allow_borrowed_stored_types(&mut f.attrs);
        if let Some((n, at)) = attributes.num_returns {
            callable.set_num_returns(n, at, &mut errors);
        }
        callable.set_streaming(attributes.streaming, "#[rustyray(streaming)]", &mut errors);
        let name = callable.name.to_string();
        if RESERVED.contains(&name.as_str()) {
            errors.add(
                &f.sig.ident,
                format!(
                    "a method named `{name}` would be hidden behind `ActorHandle::{name}`; rename \
                     it, or mark it #[rustyray(skip)] to keep it local"
                ),
            );
        }
        for input in f.sig.inputs.iter().skip(1) {
            if let Some(span) = signature::mentions_self(input.to_token_stream()) {
                errors.push(syn::Error::new(
                    span,
                    format!("write `{class}` instead of `Self` in a remote method's arguments"),
                ));
            }
        }
        if let syn::ReturnType::Type(_, ty) = &f.sig.output {
            if let Some(span) = signature::mentions_self(ty.to_token_stream()) {
                errors.push(syn::Error::new(
                    span,
                    "a remote method cannot return `Self`: the actor stays where it runs; \
                     return data, or build another actor",
                ));
            }
        }
        callable.backpressure = attributes.backpressure.map(|(n, _)| n);
        let group = match &attributes.group {
            None => 0,
            Some(name) => match groups.iter().position(|(g, _)| *g == name.value()) {
                Some(i) if callable.receiver == Receiver::Shared && !callable.streaming => {
                    (i + 1) as u8
                }
                Some(_) => {
                    errors.add(
                        name,
                        "only `&self` methods run in a concurrency group: `&mut self` methods \
                         and streams have the actor to themselves; make it `fn ..(&self, ..)`",
                    );
                    0
                }
                None => {
                    let declared: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
                    errors.add(
                        name,
                        if declared.is_empty() {
                            "no concurrency groups are declared: add \
                             `concurrency_groups(name = limit, ..)` to #[rustyray::actor] on the \
                             impl"
                                .to_owned()
                        } else {
                            format!(
                                "no concurrency group `{}`; the impl declares: {}",
                                name.value(),
                                declared.join(", ")
                            )
                        },
                    );
                    0
                }
            },
        };
        method_groups.push(group);
        methods.push(callable);
    }
    let constructor = match constructors.len() {
        0 => {
            errors.add(
                &item.self_ty,
                format!(
                    "actor `{class}` has no constructor: add an associated function returning \
                     `Self` (or `Result<Self, E>`), for example `fn new(..) -> Self`"
                ),
            );
            None
        }
        1 => constructors.pop().map(|(c, _)| c),
        _ => match constructors.iter().position(|(c, _)| c.name == "new") {
            Some(i) => Some(constructors.swap_remove(i).0),
            None => {
                for (c, span) in &constructors {
                    errors.push(syn::Error::new(
                        *span,
                        format!(
                            "actor `{class}` has several constructors and none is named `new`: \
                             rename the one `{class}::remote` should use to `new`, or mark the \
                             others #[rustyray(skip)] (this one is `{}`)",
                            c.name
                        ),
                    ));
                }
                None
            }
        },
    };
    errors.finish()?;
    // An async actor takes up to 1000 calls at once unless told otherwise, as Ray's; a
    // threaded one (`concurrent`, sync methods only) one, as Ray's.
    let mut defaults = defaults;
    let told = defaults.iter().any(|(key, _)| key == "max_concurrency");
    if concurrent.is_some() && !told && methods.iter().any(|m| m.is_async) {
        defaults.push((
            syn::Ident::new("max_concurrency", Span::call_site()),
            OptionValue::Count(ASYNC_DEFAULT_CONCURRENCY),
        ));
    }
    Ok(ImplModel {
        self_ty: (*item.self_ty).clone(),
        item,
        class,
        sibling: Box::new(sibling),
        constructor: constructor.expect("errors reported above"),
        methods,
        concurrent,
        groups,
        method_groups,
        defaults,
    })
}

/// Removes `#[rustyray(skip)]` from `attrs`, returning whether it was there.
/// What a method's `#[rustyray(..)]` attributes say (they are removed from the method).
#[derive(Default)]
struct MethodAttributes {
    /// `#[rustyray(skip)]`: a local method, not callable through the handle.
    skip: bool,
    /// `#[rustyray(num_returns = N)]`, with where it was written.
    num_returns: Option<(u32, Span)>,
    /// `#[rustyray(streaming)]`, with where it was written.
    streaming: Option<Span>,
    /// `#[rustyray(backpressure = N)]` (with `streaming`), with where it was written.
    backpressure: Option<(u32, Span)>,
    /// `#[rustyray(concurrency_group = "io")]`.
    group: Option<syn::LitStr>,
}

fn take_method_attributes(
    attrs: &mut Vec<syn::Attribute>,
    errors: &mut Errors,
) -> MethodAttributes {
    let mut found = MethodAttributes::default();
    attrs.retain(|attr| {
        if !attr.path().is_ident("rustyray") {
            return true;
        }
        let parsed = attr.parse_args_with(|input: syn::parse::ParseStream<'_>| loop {
            let word: syn::Ident = input.parse()?;
            let count = || -> syn::Result<(u32, Span)> {
                input.parse::<syn::Token![=]>()?;
                let n: syn::LitInt = input.parse()?;
                Ok((n.base10_parse()?, n.span()))
            };
            match word.to_string().as_str() {
                "skip" => found.skip = true,
                "num_returns" => found.num_returns = Some(count()?),
                "streaming" => found.streaming = Some(word.span()),
                "backpressure" => found.backpressure = Some(count()?),
                "concurrency_group" => {
                    input.parse::<syn::Token![=]>()?;
                    found.group = Some(input.parse()?);
                }
                _ => return Err(input.error("unknown")),
            }
            if input.is_empty() {
                return Ok(());
            }
            input.parse::<syn::Token![,]>()?;
        });
        if parsed.is_err() {
            errors.add(
                attr,
                "method attributes are #[rustyray(skip)], #[rustyray(num_returns = N)], \
                 #[rustyray(streaming)] (with an optional `backpressure = N`) and \
                 #[rustyray(concurrency_group = \"name\")]",
            );
        }
        false
    });
    if let (Some((_, at)), None) = (found.backpressure, found.streaming) {
        errors.push(syn::Error::new(
            at,
            "`backpressure` bounds how far a stream's producer runs ahead: it goes with \
             `streaming`",
        ));
    }
    found
}

fn returns_self(output: &syn::ReturnType, class: &str) -> bool {
    let syn::ReturnType::Type(_, ty) = output else {
        return false;
    };
    let is_self = |ty: &syn::Type| match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Self" || s.ident == class),
        _ => false,
    };
    if is_self(ty) {
        return true;
    }
    // Result<Self, E>
    if let syn::Type::Path(p) = &**ty {
        if let Some(last) = p.path.segments.last() {
            if last.ident == "Result" {
                if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(syn::GenericArgument::Type(ok)) = args.args.first() {
                        return is_self(ok);
                    }
                }
            }
        }
    }
    false
}

fn generate_impl(model: &ImplModel) -> TokenStream {
    let ImplModel {
        item,
        self_ty,
        class,
        sibling,
        constructor,
        methods,
        concurrent,
        groups,
        method_groups,
        defaults,
    } = model;
    let methods_ty = sibling("Methods");
    let options_ty = sibling("Options");
    let builder = syn::Ident::new("__builder", Span::mixed_site());
    let class_defaults = options::setters(defaults);

    // Constructor: `Type::remote(..)` and `Type::options()...remote(..)`.
    let ctor_name = &constructor.name;
    let ctor_params = constructor.remote_params();
    let ctor_names = constructor.names();
    let ctor_asserts = {
        let args = constructor.params.iter().map(|p| {
            let ty = &p.ty;
            quote_spanned!(ty.span()=> ::rustyray::__private::assert_arg::<#ty>();)
        });
        quote!(#(#args)*)
    };
    let ctor_bind = constructor.bind_args(&builder);
    let ctor_body = constructor.task_body(quote!(<#self_ty>::#ctor_name));
    let ctor_spawn = if constructor.is_async {
        quote!(spawn_async)
    } else {
        quote!(spawn)
    };
    // Interleaved calls share `&Self` across threads: the span points at `concurrent` if the
    // state is not `Sync`.
    let make_concurrent = match concurrent {
        Some(word) if !groups.is_empty() => {
            let (names, limits): (Vec<&String>, Vec<&usize>) =
                groups.iter().map(|(n, l)| (n, l)).unzip();
            quote_spanned!(word.span()=> .concurrency_groups(&[#((#names, #limits)),*]))
        }
        Some(word) => quote_spanned!(word.span()=> .concurrent()),
        None => quote!(),
    };
    // Sync `&self` methods make it a threaded actor: they run on the CPU pool beside the rest.
    let threaded = methods
        .iter()
        .any(|m| !m.is_async && !m.streaming && m.receiver == Receiver::Shared);
    let make_concurrent = match concurrent {
        Some(word) if threaded => quote_spanned!(word.span()=> #make_concurrent.threaded()),
        _ => make_concurrent,
    };

    // Methods.
    let this = syn::Ident::new("__this", Span::mixed_site());
    let method_fns = methods.iter().zip(method_groups).map(|(m, &group)| {
        let group = (group > 0).then(|| quote!(.concurrency_group(#group)));
        let name = &m.name;
        let name_str = name.to_string();
        let method_id = format!("{class}::{name_str}");
        let params = m.remote_params();
        let result = syn::Ident::new("__result", Span::mixed_site());
        let (refs, split) = m.refs_from(&result, &method_id);
        let assertions = m.assertions();
        let bind = m.bind_args(&builder);
        let body = m.task_body(quote!(#this.#name));
        let receiver_doc = match m.receiver {
            Receiver::Exclusive => "`&mut self`",
            _ => "`&self`",
        };
        let doc = format!(
            "Calls [`{class}::{name}`] ({receiver_doc}) on the actor; returns its result's ref \
             at once. Each argument may be a value or a ref to one."
        );
        let sink = syn::Ident::new("__sink", Span::mixed_site());
        let send = if m.streaming {
            let body = m.stream_body(quote!(#this.#name), &sink);
            let backpressure = m.backpressure.map(|n| {
                let n = proc_macro2::Literal::usize_unsuffixed(n as usize);
                quote!(.backpressure(#n))
            });
            if m.stream_is_async() {
                quote! {
                    #builder #backpressure.spawn_stream_async(move |#this: &mut #self_ty, #sink| {
                        let __future = { #body };
                        ::std::boxed::Box::pin(__future)
                    })
                }
            } else {
                quote!(#builder #backpressure.spawn_stream(move |#this: &mut #self_ty, #sink| { #body }))
            }
        } else if m.is_async && concurrent.is_some() && m.receiver == Receiver::Shared {
            quote! {
                #builder.spawn_shared(move |#this: &#self_ty| {
                    let __future = { #body };
                    ::std::boxed::Box::pin(__future)
                })
            }
        } else if m.is_async {
            quote! {
                #builder.spawn_async(move |#this: &mut #self_ty| {
                    let __future = { #body };
                    ::std::boxed::Box::pin(__future)
                })
            }
        } else if concurrent.is_some() && m.receiver == Receiver::Shared {
            // A threaded actor's call: runs on the CPU pool beside the other shared calls.
            quote!(#builder.spawn_shared_sync(move |#this: &#self_ty| { #body }))
        } else {
            quote!(#builder.spawn(move |#this: &mut #self_ty| { #body }))
        };
        quote! {
            #[doc = #doc]
            pub fn #name(&self, #params) -> #refs {
                #assertions
                let mut #builder =
                    ::rustyray::actor::CallBuilder::<#self_ty>::new(self.__rustyray_id, #name_str)
                        .registered(::core::concat!(::core::module_path!(), "::", #method_id))
                        #group;
                #bind
                let #result = #send;
                #split
            }
        }
    });
    let registrations = registrations(model);
    let ctor_id = format!("{class}::{ctor_name}");
    let remote_doc = format!(
        "Starts a `{class}` actor with [`{class}::{ctor_name}`]; returns its handle at once. Each \
         argument may be a value or a ref to one."
    );

    quote! {
        #item

        #[allow(unreachable_pub)]
        impl #self_ty {
            #[doc = #remote_doc]
            pub fn remote(#ctor_params) -> ::rustyray::ActorHandle<#self_ty> {
                <#self_ty>::options().remote(#(#ctor_names),*)
            }

            /// Options of a new actor (name, restarts, concurrency), starting from the class
            /// defaults given in `#[rustyray::actor(..)]`; finish with `.remote(..)`.
            pub fn options() -> #options_ty {
                #options_ty(
                    <::rustyray::actor::ActorOptions as ::core::default::Default>::default()
                        #class_defaults
                )
            }
        }

        #[allow(unreachable_pub)]
        impl #options_ty {
            /// Starts the actor with these options; returns its handle at once.
            pub fn remote(self, #ctor_params) -> ::rustyray::ActorHandle<#self_ty> {
                #ctor_asserts
                let mut #builder = ::rustyray::actor::ActorBuilder::<#self_ty>::new(#class)
                    .registered(::core::concat!(::core::module_path!(), "::", #ctor_id))
                    .options(self.0)
                    #make_concurrent;
                #ctor_bind
                #builder.#ctor_spawn(move || { #ctor_body })
            }
        }

        #[allow(unreachable_pub, clippy::all)]
        impl #methods_ty {
            #(#method_fns)*
        }

        const _: () = {
            #registrations
        };
    }
}

/// The registry entries of the constructor and methods, with their by-bytes entry points.
fn registrations(model: &ImplModel) -> TokenStream {
    let ImplModel {
        self_ty,
        class,
        constructor,
        methods,
        concurrent,
        ..
    } = model;
    // A concurrent actor's state is shared by the calls that run side by side (on a Ray
    // worker too): its constructor boxes it as `Sync`, and its `&self` async methods take it
    // shared.
    let (boxed, register_ctor, state_bounds) = match concurrent {
        Some(_) => (
            quote!(boxed_shared_actor),
            quote!(concurrent_actor_constructor),
            quote!(::core::marker::Send + ::core::marker::Sync),
        ),
        None => (
            quote!(boxed_actor),
            quote!(actor_constructor),
            quote!(::core::marker::Send),
        ),
    };
    let ctor_name = &constructor.name;
    let ctor_id = format!("{class}::{ctor_name}");
    let read = constructor.read_args(None);
    let args = constructor.invoke_args();
    let call = if constructor.is_async {
        quote!(<#self_ty>::#ctor_name(#args).await)
    } else {
        quote!(<#self_ty>::#ctor_name(#args))
    };
    let wrapped = constructor.wrap_output(call);
    let mut out = quote! {
        fn __rustyray_construct<'a>(
            args: &'a [u8],
        ) -> ::rustyray::task::BoxFuture<
            'a,
            ::rustyray::Result<::std::boxed::Box<dyn ::std::any::Any + #state_bounds>>,
        > {
            ::std::boxed::Box::pin(async move {
                #read
                let output: ::rustyray::__private::anyhow::Result<#self_ty> = #wrapped;
                ::rustyray::__private::#boxed(#ctor_id, output)
            })
        }
        ::rustyray::__private::inventory::submit! {
            ::rustyray::__private::Registration::#register_ctor(
                ::core::concat!(::core::module_path!(), "::", #ctor_id),
                __rustyray_construct,
            )
        }
    };
    for m in methods {
        let name = &m.name;
        let id = format!("{class}::{name}");
        let entry = format_ident!("__rustyray_call_{}", name);
        let body = if m.streaming {
            // A stream's producer gets where its items go as its last argument.
            let feed = syn::Ident::new("__feed", Span::mixed_site());
            let read = m.read_args(Some(&feed));
            let send = m.stream_entry(quote!(this.#name), &feed, &id);
            quote! {
                #read
                #send
            }
        } else {
            let read = m.read_args(None);
            let stored = m.stored_type();
            let args = m.invoke_args();
            let call = if m.is_async {
                quote!(this.#name(#args).await)
            } else {
                quote!(this.#name(#args))
            };
            let wrapped = m.wrap_output(call);
            let encode = m.encode_fn();
            let recycle = m.recycle_args();
            quote! {
                #read
                let output: ::rustyray::__private::anyhow::Result<#stored> = #wrapped;
                #recycle
                ::rustyray::__private::#encode(#id, output)
            }
        };
        let shared = concurrent.is_some() && !m.streaming && m.receiver == Receiver::Shared;
        let (this_ty, downcast, register) = if shared {
            (
                quote!(&'a (dyn ::std::any::Any + ::core::marker::Send + ::core::marker::Sync)),
                quote!(downcast_shared_actor),
                quote!(shared_actor_method),
            )
        } else {
            (
                quote!(&'a mut (dyn ::std::any::Any + ::core::marker::Send)),
                quote!(downcast_actor),
                quote!(actor_method),
            )
        };
        out.extend(quote! {
            fn #entry<'a>(
                this: #this_ty,
                args: &'a [u8],
            ) -> ::rustyray::task::BoxFuture<'a, ::rustyray::Result<::std::vec::Vec<u8>>> {
                ::std::boxed::Box::pin(async move {
                    let this = ::rustyray::__private::#downcast::<#self_ty>(this)?;
                    #body
                })
            }
            ::rustyray::__private::inventory::submit! {
                ::rustyray::__private::Registration::#register(
                    ::core::concat!(::core::module_path!(), "::", #id),
                    #entry,
                )
            }
        });
    }
    out
}
