//! `use autocandle::*;` must leave the standard library's names usable: nothing the facade
//! exports at its root may be called `core`, `std` or `alloc`.

#[allow(unused_imports)]
use autocandle::*;

#[test]
fn glob_import_keeps_the_standard_core_crate() {
    // With a facade item named `core`, the glob import would shadow the extern prelude's
    // `core` and this path would not resolve.
    assert_eq!(core::mem::size_of::<u8>(), 1);
    assert_eq!(std::mem::size_of::<u16>(), 2);
    let _device: Device = Device::Cpu;
}
