//! Code generation: the `ArchConfig` impl and config registration, or the model registration.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::{Data, DeriveInput, LitStr, Path};

use crate::attr::{self, Errors, Parsed, Registration};
use crate::task::TaskSpec;

/// Expand `#[derive(AutoRegister)]` on `input`, or report every problem with it at once.
pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    match &input.data {
        Data::Struct(_) => {}
        Data::Enum(data) => errors.push(syn::Error::new_spanned(
            data.enum_token,
            "`#[derive(AutoRegister)]` supports structs only: derive it on the config or model struct",
        )),
        Data::Union(data) => errors.push(syn::Error::new_spanned(
            data.union_token,
            "`#[derive(AutoRegister)]` supports structs only: derive it on the config or model struct",
        )),
    }
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.generics,
            "`#[derive(AutoRegister)]` does not support generic parameters: a registration names one \
             concrete type, so derive it on a struct without generics",
        ));
    }
    let Parsed { krate, registration } = errors.finish(attr::parse(&input.attrs, &input.ident))?;

    let body = match &registration {
        Registration::Config { model_type, class } => config(&krate, &input.ident, model_type, class),
        Registration::Model { model_type, task, task_lit, class } => {
            model(&krate, &input.ident, model_type.as_ref(), *task, task_lit, class)
        }
    };
    Ok(quote! {
        const _: () = {
            #body
        };
    })
}

/// `path` with every token spanned at `span`, so that a trait bound that fails on a path into
/// autocandle's core is reported where `span` points.
fn respan(path: &Path, span: Span) -> TokenStream {
    fn walk(tokens: TokenStream, span: Span) -> TokenStream {
        tokens
            .into_iter()
            .map(|mut token| {
                if let TokenTree::Group(group) = &token {
                    let mut inner = Group::new(group.delimiter(), walk(group.stream(), span));
                    inner.set_span(span);
                    token = TokenTree::Group(inner);
                } else {
                    token.set_span(span);
                }
                token
            })
            .collect()
    }
    walk(path.to_token_stream(), span)
}

/// `ArchConfig` and `RegisteredConfig` impls, and the `ConfigRegistration`.
fn config(krate: &Path, ident: &Ident, model_type: &LitStr, class: &LitStr) -> TokenStream {
    // Spanned on the struct's name so that a missing `Debug`, `Serialize` or `Deserialize`
    // is reported there.
    let core = respan(krate, ident.span());
    let arch_config = quote_spanned!(ident.span()=> #core::ArchConfig);
    let registered_config = quote_spanned!(ident.span()=> #core::RegisteredConfig);
    let parse = quote_spanned!(ident.span()=> #core::__private::parse_config::<#ident>);
    // `self` keeps its call-site span: spanned like a `macro_rules!` argument, it would not
    // name the method's receiver.
    let self_ = <syn::Token![self]>::default();
    let to_json = quote_spanned!(ident.span()=> #core::__private::to_json(#self_, #model_type));
    let source = source(ident);
    quote! {
        #[automatically_derived]
        impl #arch_config for #ident {
            fn model_type(&self) -> &'static str {
                #model_type
            }
            fn config_class(&self) -> &'static str {
                #class
            }
            fn to_json(&self) -> #krate::Result<#krate::__private::serde_json::Value> {
                #to_json
            }
            fn as_any(&self) -> &dyn ::core::any::Any {
                self
            }
        }

        #[automatically_derived]
        impl #registered_config for #ident {
            const MODEL_TYPE: &'static str = #model_type;
        }

        #krate::__private::inventory::submit! {
            #krate::registry::ConfigRegistration {
                model_type: #model_type,
                config_class: #class,
                source: #source,
                parse: #parse,
            }
        }
    }
}

/// The constructor behind the task's trait object, and the `ModelRegistration`, for the model
/// type of the model's config type; with `model_type` given, a compile-time check that it is
/// that one.
fn model(
    krate: &Path,
    ident: &Ident,
    model_type: Option<&LitStr>,
    task: TaskSpec,
    task_lit: &LitStr,
    class: &LitStr,
) -> TokenStream {
    let task_variant = Ident::new(task.variant, Span::call_site());
    let task_trait = Ident::new(task.trait_name, Span::call_site());
    // A missing `LoadModel` impl is reported on the struct's name, a missing task trait impl
    // on the `task = "..."` that asks for it.
    let core = respan(krate, ident.span());
    let load_model = quote_spanned!(ident.span()=> #core::LoadModel);
    // The locals keep call-site spans: spanned like a `macro_rules!` argument, they would be
    // other variables to hygiene.
    let (config, vb) = (Ident::new("config", Span::call_site()), Ident::new("vb", Span::call_site()));
    let construct = quote_spanned!(ident.span()=> #core::__private::construct::<#ident>);
    let boxed = quote_spanned!(task_lit.span()=> ::std::boxed::Box::new(#construct(#config, #vb)?));
    let config_model_type = quote!(<<#ident as #load_model>::Config as #krate::RegisteredConfig>::MODEL_TYPE);
    let check = model_type.map(|lit| same_model_type(ident, lit, &config_model_type));
    let source = source(ident);
    quote! {
        #check

        fn __autocandle_construct(
            #config: &dyn #krate::ArchConfig,
            #vb: #krate::__private::VarBuilder<'_>,
        ) -> #krate::Result<::std::boxed::Box<dyn #krate::#task_trait>> {
            let model: ::std::boxed::Box<dyn #krate::#task_trait> = #boxed;
            ::core::result::Result::Ok(model)
        }

        #krate::__private::inventory::submit! {
            #krate::registry::ModelRegistration {
                model_type: #config_model_type,
                task: #krate::Task::#task_variant,
                class_name: #class,
                source: #source,
                base_model_prefix: <#ident as #load_model>::BASE_MODEL_PREFIX,
                config_model_type: #config_model_type,
                constructor: #krate::registry::Constructor::#task_variant(__autocandle_construct),
            }
        }
    }
}

/// A constant that fails to compile, on the `model_type = "..."` literal, when it differs from
/// the model type of the model's config type.
fn same_model_type(ident: &Ident, lit: &LitStr, config_model_type: &TokenStream) -> TokenStream {
    let message = LitStr::new(
        &format!(
            "`model_type = \"{}\"` in `#[auto(...)]` is not the model type of the config type of `{ident}` \
             (its `LoadModel::Config`): remove `model_type` from the model's `#[auto(...)]`, a model takes \
             the model type of its config",
            lit.value()
        ),
        lit.span(),
    );
    quote_spanned! {lit.span()=>
        const _: () = {
            let given = #lit.as_bytes();
            let config = #config_model_type.as_bytes();
            let mut same = given.len() == config.len();
            let mut i = 0;
            while same && i < given.len() {
                same = given[i] == config[i];
                i += 1;
            }
            if !same {
                ::core::panic!(#message);
            }
        };
    }
}

/// The Rust path of the registering type, for error messages.
fn source(ident: &Ident) -> TokenStream {
    let suffix = format!("::{ident}");
    quote!(::core::concat!(::core::module_path!(), #suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(input: TokenStream) -> String {
        expand(syn::parse2(input).unwrap()).unwrap().to_string()
    }

    #[test]
    fn crate_path_replaces_autocandle_core() {
        let config = expand_str(quote! {
            #[auto(config, model_type = "tiny", crate = "facade::core")]
            struct TinyConfig {}
        });
        let model = expand_str(quote! {
            #[auto(task = "masked-lm", crate = "facade::core")]
            struct TinyForMaskedLm {}
        });
        for out in [config, model] {
            assert!(out.contains("facade :: core :: __private :: inventory :: submit !"), "{out}");
            assert!(!out.contains("autocandle_core"), "{out}");
        }
    }

    #[test]
    fn default_crate_path_is_autocandle_core() {
        let out = expand_str(quote! {
            #[auto(task = "base")]
            struct TinyModel {}
        });
        assert!(out.contains(":: autocandle_core :: __private :: inventory :: submit !"), "{out}");
        assert!(out.contains("dyn :: autocandle_core :: Model"), "{out}");
    }

    #[test]
    fn model_type_comes_from_the_config_type() {
        let out = expand_str(quote! {
            #[auto(task = "base")]
            struct TinyModel {}
        });
        let from_config = "model_type : << TinyModel as :: autocandle_core :: LoadModel > :: Config as :: autocandle_core :: RegisteredConfig > :: MODEL_TYPE";
        assert!(out.contains(from_config), "{out}");
        assert!(!out.contains("panic"), "no check without `model_type`: {out}");

        let out = expand_str(quote! {
            #[auto(model_type = "tiny", task = "base")]
            struct TinyModel {}
        });
        assert!(out.contains(from_config), "{out}");
        assert!(out.contains(":: core :: panic !"), "a given `model_type` is checked: {out}");
    }
}
