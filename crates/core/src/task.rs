//! The `Task` enum: which head an Auto class selects, named as in the fixture format.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

macro_rules! tasks {
    ($($variant:ident => $name:literal, $auto:ident, [$($trait:ident, $doc:literal)?];)*) => {
        /// A task head, one per `transformers` Auto model class.
        ///
        /// The string form is the kebab-case of the Auto class name after `AutoModelFor`
        /// (`AutoModel` is `base`), as in the reference fixture format.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Task {
            $(#[doc = concat!("`", $name, "`: `", stringify!($auto), "`")] $variant,)*
        }

        impl Task {
            /// Every task, in declaration order.
            pub const ALL: &'static [Task] = &[$(Task::$variant,)*];

            /// The task's kebab-case name (`masked-lm`).
            pub const fn as_str(self) -> &'static str {
                match self { $(Task::$variant => $name,)* }
            }

            /// The `transformers` Auto class that selects this task (`AutoModelForMaskedLM`).
            pub const fn auto_class(self) -> &'static str {
                match self { $(Task::$variant => stringify!($auto),)* }
            }
        }
    };
}

// The table lives in `autocandle-tasks`, shared with the derive macro, xtask and the facade.
autocandle_tasks::for_each_task!(tasks);

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Task {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Task::ALL.iter().copied().find(|t| t.as_str() == s).ok_or_else(|| Error::UnknownTask {
            name: s.to_owned(),
            known: Task::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &task in Task::ALL {
            assert_eq!(task.as_str().parse::<Task>().unwrap(), task);
            assert!(task.auto_class().starts_with("AutoModel"));
        }
        let table: Vec<(&str, &str)> = autocandle_tasks::TASKS.iter().map(|t| (t.name, t.auto_class)).collect();
        let ours: Vec<(&str, &str)> = Task::ALL.iter().map(|t| (t.as_str(), t.auto_class())).collect();
        assert_eq!(ours, table);
        assert!("masked_lm".parse::<Task>().is_err());
    }
}
