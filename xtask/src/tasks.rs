//! The task names manifests may use, with the `autocandle_core::Task` variant each one maps to.
//!
//! The table is `autocandle-tasks`' (the one `autocandle_core::Task` is generated from), a crate
//! without dependencies, so reading it pulls no candle into `cargo xtask` runs.

pub use autocandle_tasks::{position, TaskInfo as TaskDef, TASKS};

/// Every task name, comma-separated, for error messages.
pub fn known_names() -> String {
    TASKS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(position("base"), Some(0));
        assert_eq!(position("seq2seq-lm").map(|i| TASKS[i].variant), Some("Seq2SeqLm"));
        assert_eq!(position("masked_lm"), None);
        assert!(known_names().starts_with("base, pretraining, causal-lm"));
    }
}
