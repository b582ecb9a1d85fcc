//! `#[derive(AutoRegister)]`: registers architecture configs and models with autocandle (stub).
use proc_macro::TokenStream;

#[proc_macro_derive(AutoRegister, attributes(auto))]
pub fn derive_auto_register(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
