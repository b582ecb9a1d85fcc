//! Panics of dependencies caught at our boundary and turned into errors, without the panic
//! hook's report on stderr for the panics caught here.
//!
//! The `tokenizers` crate can panic on a hostile `tokenizer.json`: Oniguruma gives up on a
//! pre-tokenizer regex that backtracks catastrophically (`retry-limit-in-match`) and the
//! crate's wrapper unwraps that error. The call is made through [`catch`], which returns the
//! panic's message instead. The process's panic hook is wrapped once (keeping the one that was
//! installed before) so that a panic caught here prints nothing; every other panic is reported
//! by the previous hook as before.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many [`catch`] calls are running on this thread.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

static QUIET_HOOK: Once = Once::new();

/// Run `call`; a panic inside it comes back as `Err` with the panic's message.
///
/// Whatever `call` borrows must not be left half-changed by a panic: callers pass read-only
/// calls (a tokenizer is never changed once built).
pub(crate) fn catch<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(c.get().saturating_add(1)));
    let result = catch_unwind(AssertUnwindSafe(call));
    CATCHING.with(|c| c.set(c.get().saturating_sub(1)));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_next_call_works() {
        let caught = catch(|| -> u32 { panic!("retry-limit-in-match") });
        assert_eq!(caught, Err("retry-limit-in-match".to_owned()));
        let caught = catch(|| -> u32 { panic!("{} bytes", 3) });
        assert_eq!(caught, Err("3 bytes".to_owned()));
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(CATCHING.with(Cell::get), 0);
    }
}
