//! Registrations collected with `inventory`, the registry built from them, and the run-time
//! registrations layered over it.
//!
//! `#[derive(AutoRegister)]` submits a [`ConfigRegistration`] for a config type and a
//! [`ModelRegistration`] for each model type; [`Registry::global`] gathers them once.
//!
//! # Two layers
//!
//! - **Compiled in**: the `inventory` submissions, checked and gathered once into
//!   [`Registry::global`] and read-only afterwards. Two of them for one key are an error that
//!   names both, never an override; like `typetag`, only that key fails: its lookups
//!   ([`Registry::try_config`], [`Registry::try_model`], and through them every load of that
//!   model type) return the error, every other key works, and [`Registry::problems`] lists
//!   every such key. A model registration that fails the checks below breaks its key the same
//!   way.
//! - **Run time**: [`Registry::register_config`] and [`Registry::register_model`]
//!   (`transformers`' `AutoConfig.register` / `AutoModel.register`, reached through the Auto
//!   classes' `register` functions) add to a `RwLock`ed layer of the same registry. Every
//!   lookup ([`Registry::config`], [`Registry::model`], [`Registry::heads`],
//!   [`Registry::models`], [`Registry::model_types`]) consults this layer first, then the
//!   compiled-in entries, so a run-time registration is visible to everything that resolves
//!   through the registry (`AutoConfig`, every `from_pretrained` / `from_config`, `TaskModel`).
//!
//! A run-time registration for a key that is already taken (compiled in or registered
//! before) is an error unless `exist_ok` is set; with `exist_ok` it replaces the earlier one
//! for every later lookup. A run-time registration passes the compile-time checks too: a model
//! must be built from the config of the model type it is registered for, and that model type
//! must have a config registration. Run-time registrations live as long as the process (they
//! are leaked to hand out `&'static` references, like the `inventory` ones); registering is
//! meant for start-up, a few calls per process, not for a loop.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard};

use candle_nn::VarBuilder;
use serde_json::Value;

use crate::config::ArchConfig;
use crate::error::{Error, Result};
use crate::Task;

/// Parses a `config.json` object into the typed config.
pub type ConfigParser = fn(Value) -> Result<Arc<dyn ArchConfig>>;

/// Builds a model of trait object type `M` from its typed config and weights.
pub type Ctor<M> = for<'a> fn(&dyn ArchConfig, VarBuilder<'a>) -> Result<Box<M>>;

/// `model_type -> config parser`, submitted by `#[derive(AutoRegister)]` on a config type.
#[derive(Debug, Clone)]
pub struct ConfigRegistration {
    /// The `model_type` of `config.json` this parser reads (`bert`).
    pub model_type: &'static str,
    /// The `transformers` config class (`BertConfig`).
    pub config_class: &'static str,
    /// Rust path of the registering type, for error messages.
    pub source: &'static str,
    /// Parses `config.json` (as JSON) into the typed config.
    pub parse: ConfigParser,
}

/// `(model_type, task) -> constructor`, submitted by `#[derive(AutoRegister)]` on a model type.
#[derive(Debug, Clone)]
pub struct ModelRegistration {
    /// The `model_type` the model is registered for (`bert`).
    pub model_type: &'static str,
    /// The task head it implements (the Auto class that finds it).
    pub task: Task,
    /// The `transformers` class name (`BertForMaskedLM`).
    pub class_name: &'static str,
    /// Rust path of the registering type, for error messages.
    pub source: &'static str,
    /// `transformers`' `base_model_prefix` (`bert`): the attribute holding the base model.
    pub base_model_prefix: &'static str,
    /// The `model_type` of the config type the model is built from.
    pub config_model_type: &'static str,
    /// Builds the model from its config and weights.
    pub constructor: Constructor,
}

/// `Constructor` and the `TaskHead` impls, over the tasks of the table that have a model trait.
macro_rules! constructors {
    ($($variant:ident => $name:literal, $auto:ident, [$($trait:ident, $doc:literal)?];)*) => {
        /// A model constructor, typed by the task's trait.
        #[derive(Clone, Copy)]
        #[non_exhaustive]
        pub enum Constructor {
            $($(
                #[doc = concat!("Builds a `dyn ", stringify!($trait), "` (", $name, ").")]
                $variant(Ctor<dyn crate::models::$trait>),
            )?)*
        }

        impl Constructor {
            /// The task this constructor builds a head for.
            pub fn task(&self) -> Task {
                match self { $($(Constructor::$variant(_) => <dyn crate::models::$trait as TaskHead>::TASK,)?)* }
            }
        }

        impl fmt::Debug for Constructor {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "Constructor::{:?}", self.task())
            }
        }

        $($(
            impl TaskHead for dyn crate::models::$trait {
                const TASK: Task = Task::$variant;
                fn constructor(c: &Constructor) -> Option<Ctor<Self>> {
                    match c {
                        Constructor::$variant(f) => Some(*f),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )?)*
    };
}

/// A task trait object type (`dyn ForMaskedLm`) with its task and constructor.
pub trait TaskHead {
    /// The task whose trait this is.
    const TASK: Task;
    /// `c` as a constructor of this trait object, if it builds one (`None` for another task).
    fn constructor(c: &Constructor) -> Option<Ctor<Self>>;
}

autocandle_tasks::for_each_task!(constructors);

inventory::collect!(ConfigRegistration);
inventory::collect!(ModelRegistration);

/// Every registration, keyed by model type and task: the compiled-in ones, built once and
/// read-only afterwards, and the run-time layer consulted before them (see the module docs).
#[derive(Debug, Default)]
pub struct Registry {
    configs: BTreeMap<&'static str, &'static ConfigRegistration>,
    models: BTreeMap<(&'static str, Task), &'static ModelRegistration>,
    /// Compiled-in config keys that cannot be used; their lookups fail.
    broken_configs: BTreeMap<&'static str, Broken>,
    /// Compiled-in model keys that cannot be used; their lookups fail.
    broken_models: BTreeMap<(&'static str, Task), Broken>,
    runtime: RwLock<Layer>,
}

/// A compiled-in key that cannot be used: only the lookups of this key fail.
#[derive(Debug, Clone)]
enum Broken {
    /// Two or more registrations of one key, each described (`ToyConfig (`crate::ToyConfig`)`).
    Duplicate { what: String, registrations: Vec<String> },
    /// A lone registration that fails the checks of [`check_model`].
    Invalid { model_type: &'static str, message: String, registration: String },
}

impl Broken {
    /// The error every lookup of the key returns.
    fn error(&self) -> Error {
        match self {
            Broken::Duplicate { what, registrations } => {
                let (first, others) = registrations.split_first().map_or(("", &[][..]), |(f, o)| (f.as_str(), o));
                Error::DuplicateRegistration {
                    what: what.clone(),
                    first: first.to_owned(),
                    second: others.join(" and by "),
                }
            }
            Broken::Invalid { model_type, message, .. } => Error::config(*model_type, message.clone()),
        }
    }

    /// The first registration of the key, described, for "already taken" errors.
    fn first(&self) -> &str {
        match self {
            Broken::Duplicate { registrations, .. } => registrations.first().map_or("", String::as_str),
            Broken::Invalid { registration, .. } => registration,
        }
    }
}

/// The registrations made at run time, consulted before the compiled-in ones.
#[derive(Debug, Default)]
struct Layer {
    configs: BTreeMap<&'static str, &'static ConfigRegistration>,
    models: BTreeMap<(&'static str, Task), &'static ModelRegistration>,
}

/// A model registration is built from the config of the model type it is registered for, and
/// its constructor builds the head of its task.
fn check_model(reg: &ModelRegistration) -> Result<()> {
    match model_problem(reg) {
        Some(message) => Err(Error::config(reg.model_type, message)),
        None => Ok(()),
    }
}

/// What is wrong with a model registration, if anything (see [`check_model`]).
fn model_problem(reg: &ModelRegistration) -> Option<String> {
    if reg.config_model_type != reg.model_type {
        return Some(format!(
            "{} (`{}`) is registered for model type `{}` but is built from the config of `{}`",
            reg.class_name, reg.source, reg.model_type, reg.config_model_type
        ));
    }
    if reg.constructor.task() != reg.task {
        return Some(format!(
            "{} registers task `{}` with a constructor for `{}`",
            reg.source,
            reg.task,
            reg.constructor.task()
        ));
    }
    None
}

/// `the masked-lm head of model type `bert``, for errors about a model key.
fn model_key(model_type: &str, task: Task) -> String {
    format!("the {task} head of model type `{model_type}`")
}

/// `ToyConfig (`crate::ToyConfig`)`, plus `origin` (`compiled in`) when given.
fn describe(class: &str, source: &str, origin: Option<&str>) -> String {
    match origin {
        Some(origin) => format!("{class} (`{source}`, {origin})"),
        None => format!("{class} (`{source}`)"),
    }
}

/// The descriptions of a duplicated key's registrations, sorted so that the error does not
/// depend on the link order.
fn sorted(descriptions: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = descriptions.collect();
    v.sort_unstable();
    v
}

/// The second registration of a taken key, registered at run time without `exist_ok`.
fn runtime_second(class: &str, source: &str) -> String {
    format!("{class} (`{source}`) at run time (without `exist_ok = true`, which would replace the first)")
}

impl Registry {
    /// Build a registry from compiled-in registrations.
    ///
    /// A key with two or more registrations, or whose lone model registration is built from the
    /// config of another model type (or with the constructor of another task), is kept aside:
    /// its lookups fail with an error that names every registration of it (or the problem),
    /// and every other key works (see [`Registry::problems`]).
    pub fn build(
        configs: impl IntoIterator<Item = &'static ConfigRegistration>,
        models: impl IntoIterator<Item = &'static ModelRegistration>,
    ) -> Self {
        let mut registry = Registry::default();
        let mut config_groups: BTreeMap<&'static str, Vec<&'static ConfigRegistration>> = BTreeMap::new();
        for reg in configs {
            config_groups.entry(reg.model_type).or_default().push(reg);
        }
        for (model_type, regs) in config_groups {
            match regs.as_slice() {
                [one] => {
                    registry.configs.insert(model_type, *one);
                }
                many => {
                    let registrations = sorted(many.iter().map(|r| describe(r.config_class, r.source, None)));
                    let what = format!("config for model type `{model_type}`");
                    registry.broken_configs.insert(model_type, Broken::Duplicate { what, registrations });
                }
            }
        }
        let mut model_groups: BTreeMap<(&'static str, Task), Vec<&'static ModelRegistration>> = BTreeMap::new();
        for reg in models {
            model_groups.entry((reg.model_type, reg.task)).or_default().push(reg);
        }
        for ((model_type, task), regs) in model_groups {
            let broken = match regs.as_slice() {
                [one] => match model_problem(one) {
                    None => {
                        registry.models.insert((model_type, task), *one);
                        continue;
                    }
                    Some(message) => Broken::Invalid {
                        model_type,
                        message,
                        registration: describe(one.class_name, one.source, None),
                    },
                },
                many => Broken::Duplicate {
                    what: model_key(model_type, task),
                    registrations: sorted(many.iter().map(|r| describe(r.class_name, r.source, None))),
                },
            };
            registry.broken_models.insert((model_type, task), broken);
        }
        registry
    }

    /// The registry of everything linked into this binary, plus what was registered at run time.
    ///
    /// Building it does not fail: a broken key fails only its own lookups (see
    /// [`Registry::build`]). The `Result` stays so that callers need not change if building
    /// ever can fail again.
    pub fn global() -> Result<&'static Registry> {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        Ok(GLOBAL.get_or_init(|| {
            let registry =
                Registry::build(inventory::iter::<ConfigRegistration>(), inventory::iter::<ModelRegistration>());
            tracing::debug!(
                configs = registry.configs.len(),
                heads = registry.models.len(),
                broken = registry.broken_configs.len() + registry.broken_models.len(),
                "registry built from the linked architecture crates"
            );
            registry
        }))
    }

    /// Every compiled-in key whose lookups fail (two registrations of it, or a registration that
    /// fails the checks), as the errors those lookups return, in key order. A key replaced at
    /// run time (`exist_ok`) is still listed: its compiled-in registrations are still wrong.
    pub fn problems(&self) -> Vec<Error> {
        self.broken_configs.values().chain(self.broken_models.values()).map(Broken::error).collect()
    }

    /// The run-time layer. A panic cannot leave it half-written (each change is one insert),
    /// so a poisoned lock is still read.
    fn layer(&self) -> RwLockReadGuard<'_, Layer> {
        self.runtime.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Register a config parser at run time (`AutoConfig.register`): `config.json` files whose
    /// `model_type` is `reg.model_type` parse with `reg.parse` from now on.
    ///
    /// Fails when the model type is empty, or already has a config registration (compiled in
    /// or registered at run time) and `exist_ok` is false; with `exist_ok`, `reg` replaces it.
    pub fn register_config(&self, reg: ConfigRegistration, exist_ok: bool) -> Result<&'static ConfigRegistration> {
        if reg.model_type.is_empty() {
            return Err(Error::config("?", format!("{} is registered for an empty model type", reg.source)));
        }
        let mut layer = self.runtime.write().unwrap_or_else(PoisonError::into_inner);
        let taken = match layer.configs.get(reg.model_type) {
            Some(first) => Some(describe(first.config_class, first.source, Some("registered at run time"))),
            None => match self.configs.get(reg.model_type) {
                Some(first) => Some(describe(first.config_class, first.source, Some("compiled in"))),
                None => self.broken_configs.get(reg.model_type).map(|b| format!("{} (compiled in)", b.first())),
            },
        };
        if let (Some(first), false) = (taken, exist_ok) {
            return Err(Error::DuplicateRegistration {
                what: format!("config for model type `{}`", reg.model_type),
                first,
                second: runtime_second(reg.config_class, reg.source),
            });
        }
        let reg: &'static ConfigRegistration = Box::leak(Box::new(reg));
        layer.configs.insert(reg.model_type, reg);
        Ok(reg)
    }

    /// Register a model constructor at run time (`AutoModelFor*.register`): the `reg.task`
    /// head of `reg.model_type` is built by `reg.constructor` from now on.
    ///
    /// Fails when the registration is inconsistent (built from the config of another model
    /// type, or a constructor of another task), when its model type has no config
    /// registration (register the config first), or when the `(model_type, task)` pair is
    /// already taken (compiled in or registered at run time) and `exist_ok` is false; with
    /// `exist_ok`, `reg` replaces it.
    pub fn register_model(&self, reg: ModelRegistration, exist_ok: bool) -> Result<&'static ModelRegistration> {
        check_model(&reg)?;
        let mut layer = self.runtime.write().unwrap_or_else(PoisonError::into_inner);
        if !layer.configs.contains_key(reg.model_type)
            && !self.configs.contains_key(reg.model_type)
            && !self.broken_configs.contains_key(reg.model_type)
        {
            return Err(Error::config(
                reg.model_type,
                format!(
                    "{} (`{}`) is registered for model type `{}`, which has no config registration: register \
                     its config first (`AutoConfig::register` or `#[derive(AutoRegister)]` with `#[auto(config, ...)]`)",
                    reg.class_name, reg.source, reg.model_type
                ),
            ));
        }
        let key = (reg.model_type, reg.task);
        let taken = match layer.models.get(&key) {
            Some(first) => Some(describe(first.class_name, first.source, Some("registered at run time"))),
            None => match self.models.get(&key) {
                Some(first) => Some(describe(first.class_name, first.source, Some("compiled in"))),
                None => self.broken_models.get(&key).map(|b| format!("{} (compiled in)", b.first())),
            },
        };
        if let (Some(first), false) = (taken, exist_ok) {
            return Err(Error::DuplicateRegistration {
                what: model_key(reg.model_type, reg.task),
                first,
                second: runtime_second(reg.class_name, reg.source),
            });
        }
        let reg: &'static ModelRegistration = Box::leak(Box::new(reg));
        layer.models.insert(key, reg);
        Ok(reg)
    }

    /// The config registration of `model_type`: the run-time one, else the compiled-in one.
    ///
    /// Fails when `model_type` has two compiled-in config registrations (and none at run
    /// time), with an error that names both.
    pub fn try_config(&self, model_type: &str) -> Result<Option<&'static ConfigRegistration>> {
        if let Some(reg) = self.layer().configs.get(model_type) {
            return Ok(Some(*reg));
        }
        match self.broken_configs.get(model_type) {
            Some(broken) => Err(broken.error()),
            None => Ok(self.configs.get(model_type).copied()),
        }
    }

    /// The model registration of `(model_type, task)`: the run-time one, else the compiled-in
    /// one.
    ///
    /// Fails when the key has two compiled-in registrations (and none at run time), with an
    /// error that names both, or when its compiled-in registration fails the checks.
    pub fn try_model(&self, model_type: &str, task: Task) -> Result<Option<&'static ModelRegistration>> {
        if let Some(reg) = self.layer().models.get(&(model_type, task)) {
            return Ok(Some(*reg));
        }
        match self.broken_models.get(&(model_type, task)) {
            Some(broken) => Err(broken.error()),
            None => Ok(self.models.get(&(model_type, task)).copied()),
        }
    }

    /// The config registration of `model_type`; `None` also for a broken key, whose error
    /// [`Registry::try_config`] returns.
    pub fn config(&self, model_type: &str) -> Option<&'static ConfigRegistration> {
        self.try_config(model_type).ok().flatten()
    }

    /// The model registration of `(model_type, task)`; `None` also for a broken key, whose
    /// error [`Registry::try_model`] returns.
    pub fn model(&self, model_type: &str, task: Task) -> Option<&'static ModelRegistration> {
        self.try_model(model_type, task).ok().flatten()
    }

    /// Every registered model type (from configs and models, of both layers, broken keys
    /// included), sorted.
    pub fn model_types(&self) -> Vec<&'static str> {
        let layer = self.layer();
        let mut v: Vec<_> = self
            .configs
            .keys()
            .chain(layer.configs.keys())
            .chain(self.broken_configs.keys())
            .copied()
            .chain(self.models.keys().chain(layer.models.keys()).chain(self.broken_models.keys()).map(|(m, _)| *m))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every model registration in effect, the run-time ones over the compiled-in ones.
    fn merged_models(&self) -> BTreeMap<(&'static str, Task), &'static ModelRegistration> {
        let mut all = self.models.clone();
        all.extend(self.layer().models.iter().map(|(k, v)| (*k, *v)));
        all
    }

    /// Every model registration of `model_type` in effect, in task order (a broken key only
    /// once replaced at run time).
    pub fn heads(&self, model_type: &str) -> Vec<&'static ModelRegistration> {
        self.merged_models().into_values().filter(|r| r.model_type == model_type).collect()
    }

    /// Every model registration, sorted by model type and task.
    pub fn models(&self) -> impl Iterator<Item = &'static ModelRegistration> + '_ {
        self.merged_models().into_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{ForMaskedLm, Model};

    fn no_parse(_: Value) -> Result<Arc<dyn ArchConfig>> {
        Err(Error::config("x", "unused"))
    }

    fn no_model(_: &dyn ArchConfig, _: VarBuilder<'_>) -> Result<Box<dyn ForMaskedLm>> {
        Err(Error::config("x", "unused"))
    }

    static CONFIG_A: ConfigRegistration = ConfigRegistration {
        model_type: "toy",
        config_class: "ToyConfig",
        source: "crate_a::ToyConfig",
        parse: no_parse,
    };
    static CONFIG_B: ConfigRegistration = ConfigRegistration {
        model_type: "toy",
        config_class: "OtherToyConfig",
        source: "crate_b::OtherToyConfig",
        parse: no_parse,
    };
    static MODEL_A: ModelRegistration = ModelRegistration {
        model_type: "toy",
        task: Task::MaskedLm,
        class_name: "ToyForMaskedLM",
        source: "crate_a::ToyForMaskedLM",
        base_model_prefix: "toy",
        config_model_type: "toy",
        constructor: Constructor::MaskedLm(no_model),
    };
    static MODEL_B: ModelRegistration = ModelRegistration {
        model_type: "toy",
        task: Task::MaskedLm,
        class_name: "OtherToyForMaskedLM",
        source: "crate_b::OtherToyForMaskedLM",
        base_model_prefix: "toy",
        config_model_type: "toy",
        constructor: Constructor::MaskedLm(no_model),
    };
    static MODEL_WRONG_CONFIG: ModelRegistration = ModelRegistration {
        model_type: "toy",
        task: Task::MaskedLm,
        class_name: "ToyForMaskedLM",
        source: "crate_a::ToyForMaskedLM",
        base_model_prefix: "toy",
        config_model_type: "other",
        constructor: Constructor::MaskedLm(no_model),
    };

    static CONFIG_OTHER: ConfigRegistration = ConfigRegistration {
        model_type: "other",
        config_class: "OtherConfig",
        source: "crate_c::OtherConfig",
        parse: no_parse,
    };
    static MODEL_A_BASE: ModelRegistration = ModelRegistration {
        model_type: "toy",
        task: Task::Base,
        class_name: "ToyModel",
        source: "crate_a::ToyModel",
        base_model_prefix: "toy",
        config_model_type: "toy",
        constructor: Constructor::Base(no_base),
    };

    #[test]
    fn duplicate_config_fails_only_its_key() {
        let r = Registry::build([&CONFIG_A, &CONFIG_B, &CONFIG_OTHER], [&MODEL_A]);
        let err = r.try_config("toy").unwrap_err();
        assert!(matches!(err, Error::DuplicateRegistration { .. }), "{err}");
        let err = err.to_string();
        assert!(err.contains("crate_a::ToyConfig") && err.contains("crate_b::OtherToyConfig"), "{err}");
        assert!(r.config("toy").is_none());
        // Every other key works.
        assert_eq!(r.try_config("other").unwrap().unwrap().config_class, "OtherConfig");
        assert!(r.try_config("missing").unwrap().is_none());
        assert_eq!(r.model("toy", Task::MaskedLm).unwrap().class_name, "ToyForMaskedLM");
        assert_eq!(r.model_types(), vec!["other", "toy"]);
        let problems: Vec<String> = r.problems().iter().map(ToString::to_string).collect();
        assert_eq!(problems, [err]);
    }

    #[test]
    fn duplicate_model_fails_only_its_key() {
        let r = Registry::build([&CONFIG_A], [&MODEL_A, &MODEL_B, &MODEL_A_BASE]);
        let err = r.try_model("toy", Task::MaskedLm).unwrap_err().to_string();
        assert!(err.contains("crate_a::ToyForMaskedLM") && err.contains("crate_b::OtherToyForMaskedLM"), "{err}");
        assert!(err.contains("masked-lm"), "{err}");
        assert!(r.model("toy", Task::MaskedLm).is_none());
        // The other head and the config of the same model type still work.
        assert_eq!(r.try_model("toy", Task::Base).unwrap().unwrap().class_name, "ToyModel");
        assert_eq!(r.config("toy").unwrap().config_class, "ToyConfig");
        let heads: Vec<_> = r.heads("toy").iter().map(|h| h.class_name).collect();
        assert_eq!(heads, ["ToyModel"]);
        assert_eq!(r.problems().len(), 1);
    }

    #[test]
    fn runtime_registration_replaces_a_duplicate() {
        let r = Registry::build([&CONFIG_A], [&MODEL_A, &MODEL_B]);
        let err = r.register_model(MODEL_A.clone(), false).unwrap_err().to_string();
        assert!(err.contains("crate_a::ToyForMaskedLM") && err.contains("compiled in"), "{err}");
        r.register_model(MODEL_B.clone(), true).unwrap();
        assert_eq!(r.try_model("toy", Task::MaskedLm).unwrap().unwrap().class_name, "OtherToyForMaskedLM");
        assert_eq!(r.heads("toy").len(), 1);
        // The compiled-in pair is still reported.
        assert_eq!(r.problems().len(), 1);

        let r = Registry::build([&CONFIG_A, &CONFIG_B], []);
        assert!(r.register_config(CONFIG_A.clone(), false).is_err());
        // A model of the duplicated config's model type may still be registered.
        r.register_model(MODEL_A.clone(), false).unwrap();
        r.register_config(CONFIG_A.clone(), true).unwrap();
        assert_eq!(r.try_config("toy").unwrap().unwrap().config_class, "ToyConfig");
    }

    #[test]
    fn model_with_foreign_config_fails_its_key() {
        let r = Registry::build([&CONFIG_A], [&MODEL_WRONG_CONFIG, &MODEL_A_BASE]);
        let err = r.try_model("toy", Task::MaskedLm).unwrap_err().to_string();
        assert!(err.contains("config of `other`"), "{err}");
        assert!(r.model("toy", Task::Base).is_some());
        assert_eq!(r.problems().len(), 1);
    }

    #[test]
    fn lookups() {
        let r = Registry::build([&CONFIG_A], [&MODEL_A]);
        assert_eq!(r.model("toy", Task::MaskedLm).unwrap().class_name, "ToyForMaskedLM");
        assert!(r.model("toy", Task::Base).is_none());
        assert_eq!(r.model_types(), vec!["toy"]);
        assert!(<dyn ForMaskedLm as TaskHead>::constructor(&MODEL_A.constructor).is_some());
        assert!(<dyn Model as TaskHead>::constructor(&MODEL_A.constructor).is_none());
    }

    fn no_base(_: &dyn ArchConfig, _: VarBuilder<'_>) -> Result<Box<dyn Model>> {
        Err(Error::config("x", "unused"))
    }

    /// A registration of `class` for `model_type`, as `register` functions make them.
    fn runtime_model(model_type: &'static str, class: &'static str) -> ModelRegistration {
        ModelRegistration {
            model_type,
            task: Task::Base,
            class_name: class,
            source: "user::Model",
            base_model_prefix: "",
            config_model_type: model_type,
            constructor: Constructor::Base(no_base),
        }
    }

    #[test]
    fn runtime_registrations_are_seen_by_every_lookup() {
        let r = Registry::build([&CONFIG_A], [&MODEL_A]);
        let config = ConfigRegistration { model_type: "new", ..CONFIG_A.clone() };
        r.register_config(config, false).unwrap();
        r.register_model(runtime_model("new", "NewModel"), false).unwrap();
        assert_eq!(r.config("new").unwrap().config_class, "ToyConfig");
        assert_eq!(r.model("new", Task::Base).unwrap().class_name, "NewModel");
        assert_eq!(r.model_types(), vec!["new", "toy"]);
        assert_eq!(r.heads("new").len(), 1);
        assert_eq!(r.models().count(), 2);
        // The compiled-in entries are still there.
        assert_eq!(r.model("toy", Task::MaskedLm).unwrap().class_name, "ToyForMaskedLM");
    }

    #[test]
    fn taken_keys_need_exist_ok() {
        let r = Registry::build([&CONFIG_A], [&MODEL_A]);
        // Over a compiled-in config.
        let err = r.register_config(CONFIG_B.clone(), false).unwrap_err();
        assert!(matches!(err, Error::DuplicateRegistration { .. }), "{err}");
        let err = err.to_string();
        assert!(err.contains("crate_a::ToyConfig") && err.contains("crate_b::OtherToyConfig"), "{err}");
        assert!(err.contains("exist_ok"), "{err}");
        r.register_config(CONFIG_B.clone(), true).unwrap();
        assert_eq!(r.config("toy").unwrap().config_class, "OtherToyConfig");
        // Over a run-time config.
        let err = r.register_config(CONFIG_A.clone(), false).unwrap_err().to_string();
        assert!(err.contains("registered at run time"), "{err}");

        // Over a compiled-in head, then over a run-time one.
        let err = r.register_model(MODEL_B.clone(), false).unwrap_err().to_string();
        assert!(err.contains("crate_a::ToyForMaskedLM") && err.contains("masked-lm"), "{err}");
        r.register_model(MODEL_B.clone(), true).unwrap();
        assert_eq!(r.model("toy", Task::MaskedLm).unwrap().class_name, "OtherToyForMaskedLM");
        assert_eq!(r.heads("toy").len(), 1);
        assert!(r.register_model(MODEL_A.clone(), false).is_err());
    }

    #[test]
    fn runtime_models_pass_the_build_checks() {
        let r = Registry::build([&CONFIG_A], []);
        let err = r.register_model(MODEL_WRONG_CONFIG.clone(), true).unwrap_err().to_string();
        assert!(err.contains("config of `other`"), "{err}");
        let wrong_task = ModelRegistration { task: Task::Base, ..MODEL_A.clone() };
        let err = r.register_model(wrong_task, true).unwrap_err().to_string();
        assert!(err.contains("constructor for `masked-lm`"), "{err}");
        let err = r.register_model(runtime_model("nothing", "NothingModel"), true).unwrap_err().to_string();
        assert!(err.contains("no config registration"), "{err}");
        let empty = ConfigRegistration { model_type: "", ..CONFIG_A.clone() };
        assert!(r.register_config(empty, true).is_err());
        assert!(r.model_types() == vec!["toy"]);
    }
}
