//! Code generation: the `ArchConfig` impl and config registration, or the model registration.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Data, DeriveInput, LitStr};

use crate::attr::{self, Errors, Registration};
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
    let registration = errors.finish(attr::parse(&input.attrs, &input.ident))?;

    let body = match &registration {
        Registration::Config { model_type, class } => config(&input.ident, model_type, class),
        Registration::Model { model_type, task, task_lit, class } => {
            model(&input.ident, model_type, task, task_lit, class)
        }
    };
    Ok(quote! {
        const _: () = {
            #body
        };
    })
}

/// `ArchConfig` and `RegisteredConfig` impls, and the `ConfigRegistration`.
fn config(ident: &Ident, model_type: &LitStr, class: &LitStr) -> TokenStream {
    // Spanned on the struct's name so that a missing `Debug`, `Serialize` or `Deserialize`
    // is reported there.
    let arch_config = quote_spanned!(ident.span()=> ::autocandle_core::ArchConfig);
    let registered_config = quote_spanned!(ident.span()=> ::autocandle_core::RegisteredConfig);
    let parse = quote_spanned!(ident.span()=> ::autocandle_core::__private::parse_config::<#ident>);
    // `self` keeps its call-site span: spanned like a `macro_rules!` argument, it would not
    // name the method's receiver.
    let self_ = <syn::Token![self]>::default();
    let to_json = quote_spanned!(ident.span()=> ::autocandle_core::__private::to_json(#self_, #model_type));
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
            fn to_json(&self) -> ::autocandle_core::Result<::autocandle_core::__private::serde_json::Value> {
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

        ::autocandle_core::__private::inventory::submit! {
            ::autocandle_core::registry::ConfigRegistration {
                model_type: #model_type,
                config_class: #class,
                source: #source,
                parse: #parse,
            }
        }
    }
}

/// The constructor behind the task's trait object, and the `ModelRegistration`.
fn model(ident: &Ident, model_type: &LitStr, task: &TaskSpec, task_lit: &LitStr, class: &LitStr) -> TokenStream {
    let task_variant = Ident::new(task.variant, Span::call_site());
    let task_trait = Ident::new(task.trait_name, Span::call_site());
    // A missing `LoadModel` impl is reported on the struct's name, a missing task trait impl
    // on the `task = "..."` that asks for it.
    let load_model = quote_spanned!(ident.span()=> ::autocandle_core::LoadModel);
    // The locals keep call-site spans: spanned like a `macro_rules!` argument, they would be
    // other variables to hygiene.
    let (config, vb) = (Ident::new("config", Span::call_site()), Ident::new("vb", Span::call_site()));
    let construct = quote_spanned!(ident.span()=> ::autocandle_core::__private::construct::<#ident>);
    let boxed = quote_spanned!(task_lit.span()=> ::std::boxed::Box::new(#construct(#config, #vb)?));
    let source = source(ident);
    quote! {
        fn __autocandle_construct(
            #config: &dyn ::autocandle_core::ArchConfig,
            #vb: ::autocandle_core::__private::VarBuilder<'_>,
        ) -> ::autocandle_core::Result<::std::boxed::Box<dyn ::autocandle_core::#task_trait>> {
            let model: ::std::boxed::Box<dyn ::autocandle_core::#task_trait> = #boxed;
            ::core::result::Result::Ok(model)
        }

        ::autocandle_core::__private::inventory::submit! {
            ::autocandle_core::registry::ModelRegistration {
                model_type: #model_type,
                task: ::autocandle_core::Task::#task_variant,
                class_name: #class,
                source: #source,
                base_model_prefix: <#ident as #load_model>::BASE_MODEL_PREFIX,
                config_model_type:
                    <<#ident as #load_model>::Config as ::autocandle_core::RegisteredConfig>::MODEL_TYPE,
                constructor: ::autocandle_core::registry::Constructor::#task_variant(__autocandle_construct),
            }
        }
    }
}

/// The Rust path of the registering type, for error messages.
fn source(ident: &Ident) -> TokenStream {
    let suffix = format!("::{ident}");
    quote!(::core::concat!(::core::module_path!(), #suffix))
}
