//! The attribute arguments: `#[remote(num_cpus = 2, max_retries = 3)]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, Meta, Token};

use crate::args::{did_you_mean, Errors};

/// One option and the value it sets, already checked.
pub(crate) enum OptionValue {
    Number(f64),
    Count(u32),
    Flag(bool),
    Text(String),
    Resources(Vec<(String, f64)>),
}

/// The kind of value each option takes.
#[derive(Clone, Copy)]
pub(crate) enum Takes {
    Number,
    Count,
    Flag,
    Text,
    Resources,
}

/// Parses `key = value` arguments against the options `allowed`, collecting errors.
pub(crate) fn parse(
    attr: TokenStream,
    allowed: &[(&str, Takes)],
    what: &str,
    errors: &mut Errors,
) -> Vec<(syn::Ident, OptionValue)> {
    if attr.is_empty() {
        return Vec::new();
    }
    let metas =
        match syn::parse::Parser::parse2(Punctuated::<Meta, Token![,]>::parse_terminated, attr) {
            Ok(metas) => metas,
            Err(error) => {
                errors.push(error);
                return Vec::new();
            }
        };
    let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for meta in metas {
        let Some(key) = meta.path().get_ident().cloned() else {
            errors.add(
                meta.path(),
                format!("expected an option name ({})", names.join(", ")),
            );
            continue;
        };
        let Some((_, takes)) = allowed.iter().find(|(n, _)| key == n) else {
            let hint = did_you_mean(&key.to_string(), &names)
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            errors.add(
                &key,
                format!(
                    "unknown option `{key}`; {hint}{what} accept: {}",
                    names.join(", ")
                ),
            );
            continue;
        };
        match value(&meta, *takes, &key) {
            Ok(v) => out.push((key, v)),
            Err(e) => errors.push(e),
        }
    }
    out
}

fn value(meta: &Meta, takes: Takes, key: &syn::Ident) -> syn::Result<OptionValue> {
    if let Takes::Resources = takes {
        let Meta::List(list) = meta else {
            return Err(syn::Error::new_spanned(
                meta,
                format!("write `{key}(name = amount, ...)`, for example `{key}(disk = 1.0)`"),
            ));
        };
        let pairs = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
        let mut resources = Vec::new();
        for pair in pairs {
            let Meta::NameValue(nv) = &pair else {
                return Err(syn::Error::new_spanned(pair, "expected `name = amount`"));
            };
            let name = nv
                .path
                .get_ident()
                .ok_or_else(|| syn::Error::new_spanned(&nv.path, "expected a resource name"))?;
            resources.push((name.to_string(), number(&nv.value)?));
        }
        return Ok(OptionValue::Resources(resources));
    }
    let nv = match meta {
        Meta::NameValue(nv) => nv,
        // A switch named alone is on: `#[remote(streaming)]`.
        Meta::Path(_) if matches!(takes, Takes::Flag) => return Ok(OptionValue::Flag(true)),
        _ => {
            return Err(syn::Error::new_spanned(
                meta,
                format!("write `{key} = value`"),
            ))
        }
    };
    let expr = &nv.value;
    Ok(match takes {
        Takes::Number => OptionValue::Number(number(expr)?),
        Takes::Count => match literal(expr) {
            Some(Lit::Int(i)) => OptionValue::Count(i.base10_parse()?),
            _ => {
                return Err(syn::Error::new_spanned(
                    expr,
                    format!("`{key}` takes a whole number"),
                ))
            }
        },
        Takes::Flag => match literal(expr) {
            Some(Lit::Bool(b)) => OptionValue::Flag(b.value),
            _ => {
                return Err(syn::Error::new_spanned(
                    expr,
                    format!("`{key}` takes `true` or `false`"),
                ))
            }
        },
        Takes::Text => match literal(expr) {
            Some(Lit::Str(s)) => OptionValue::Text(s.value()),
            _ => {
                return Err(syn::Error::new_spanned(
                    expr,
                    format!("`{key}` takes a string literal"),
                ))
            }
        },
        Takes::Resources => unreachable!("handled above"),
    })
}

fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        _ => None,
    }
}

fn number(expr: &Expr) -> syn::Result<f64> {
    let parsed = match literal(expr) {
        Some(Lit::Int(i)) => i.base10_parse::<f64>(),
        Some(Lit::Float(f)) => f.base10_parse::<f64>(),
        _ => {
            return Err(syn::Error::new_spanned(
                expr,
                "expected a number, such as `2` or `0.5`",
            ))
        }
    }?;
    if !(parsed.is_finite() && parsed >= 0.0) {
        return Err(syn::Error::new_spanned(expr, "expected a number >= 0"));
    }
    Ok(parsed)
}

/// `.key(value)` calls that apply the options to a builder.
pub(crate) fn setters(options: &[(syn::Ident, OptionValue)]) -> TokenStream {
    let calls = options.iter().map(|(key, value)| match value {
        OptionValue::Number(n) => quote!(.#key(#n)),
        OptionValue::Count(n) => {
            let n = proc_macro2::Literal::u32_unsuffixed(*n);
            quote!(.#key(#n))
        }
        OptionValue::Flag(b) => quote!(.#key(#b)),
        OptionValue::Text(s) => quote!(.#key(#s)),
        OptionValue::Resources(list) => {
            let calls = list
                .iter()
                .map(|(name, amount)| quote!(.resource(#name, #amount)));
            quote!(#(#calls)*)
        }
    });
    quote!(#(#calls)*)
}
