//! The `AutoModel*` classes: `config.json` -> `model_type` -> the registered head -> weights.

use std::sync::Arc;

use autocandle_core::hub::ModelSource;
use autocandle_core::load::{build_fresh, build_from_checkpoint, resolve_dtype};
use autocandle_core::registry::TaskHead;
use autocandle_core::weights::{find_weight_files, Checkpoint};
use autocandle_core::{
    DTypeChoice, ForCausalLm, ForImageClassification, ForMaskedImageModeling, ForMaskedLm, ForMultipleChoice,
    ForNextSentencePrediction, ForPreTraining, ForQuestionAnswering, ForSeq2SeqLm, ForSequenceClassification,
    ForTextEncoding, ForTokenClassification, ForZeroShotImageClassification, LoadOptions, Loaded, Model, ModelInputs,
    ModelOutput, PretrainedConfig, Result, Task,
};
use candle_core::Device;

use crate::catalog::{check_known, resolve_head};

/// Load the `M` head of the model at `id_or_path`.
pub fn load_head<M: TaskHead + ?Sized>(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<Box<M>>> {
    let source = ModelSource::resolve(id_or_path, opts)?;
    let mut config = PretrainedConfig::from_file(&source.file("config.json")?)?;
    check_known(config.model_type())?;
    let unused_kwargs = config.apply_overrides(&opts.config_overrides)?;
    let registration = resolve_head(config.model_type(), M::TASK)?;
    let checkpoint = Arc::new(Checkpoint::open(find_weight_files(&source)?)?);
    let dtype = resolve_dtype(opts.dtype, &config);
    let model = build_from_checkpoint::<M>(&config, registration, checkpoint, dtype, &opts.device)?;
    Ok(Loaded { value: model, unused_kwargs })
}

/// Build the `M` head for `config` with freshly initialised weights.
pub fn head_from_config<M: TaskHead + ?Sized>(config: &PretrainedConfig, device: &Device) -> Result<Box<M>> {
    let registration = resolve_head(config.model_type(), M::TASK)?;
    build_fresh::<M>(config, registration, resolve_dtype(DTypeChoice::Auto, config), device)
}

macro_rules! auto_model_classes {
    ($($(#[$doc:meta])* $name:ident => $variant:ident($trait:ident),)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;

            impl $name {
                /// The task this class selects.
                pub const TASK: Task = <dyn $trait as TaskHead>::TASK;

                /// Load from a Hub repo id or a local folder, with default options.
                pub fn from_pretrained(id_or_path: &str) -> Result<Box<dyn $trait>> {
                    load_head::<dyn $trait>(id_or_path, &LoadOptions::default()).map(|l| l.value)
                }

                /// Load with options (revision, cache, device, dtype, config overrides, ...);
                /// overrides that match no config field come back in `unused_kwargs`.
                pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<Box<dyn $trait>>> {
                    load_head::<dyn $trait>(id_or_path, opts)
                }

                /// The architecture of `config` with freshly initialised weights.
                pub fn from_config(config: &PretrainedConfig, device: &Device) -> Result<Box<dyn $trait>> {
                    head_from_config::<dyn $trait>(config, device)
                }
            }
        )*

        /// A model of any task, for code that picks the task at run time.
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum TaskModel {
            $($variant(Box<dyn $trait>),)*
        }

        impl TaskModel {
            /// Load the head for `task` (an `AutoModelFor*` chosen at run time).
            pub fn from_pretrained_with(task: Task, id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<TaskModel>> {
                match task {
                    $(Task::$variant => load_head::<dyn $trait>(id_or_path, opts).map(|l| Loaded {
                        value: TaskModel::$variant(l.value),
                        unused_kwargs: l.unused_kwargs,
                    }),)*
                    other => Err(autocandle_core::Error::Unsupported(format!(
                        "task `{other}` ({}) has no model trait in autocandle yet",
                        other.auto_class()
                    ))),
                }
            }

            /// The task of the loaded head.
            pub fn task(&self) -> Task {
                match self { $(TaskModel::$variant(_) => Task::$variant,)* }
            }

            /// Run the model; the output's fields are reachable by name.
            pub fn forward(&self, inputs: &ModelInputs) -> Result<Box<dyn ModelOutput>> {
                match self { $(TaskModel::$variant(m) => Ok(Box::new(m.forward(inputs)?)),)* }
            }
        }
    };
}

auto_model_classes! {
    /// The base model of an architecture, without a head (`transformers.AutoModel`).
    AutoModel => Base(Model),
    /// A model with its pretraining heads (`transformers.AutoModelForPreTraining`).
    AutoModelForPreTraining => PreTraining(ForPreTraining),
    /// A causal language model (`transformers.AutoModelForCausalLM`).
    AutoModelForCausalLM => CausalLm(ForCausalLm),
    /// A masked language model (`transformers.AutoModelForMaskedLM`).
    AutoModelForMaskedLM => MaskedLm(ForMaskedLm),
    /// A sequence-to-sequence language model (`transformers.AutoModelForSeq2SeqLM`).
    AutoModelForSeq2SeqLM => Seq2SeqLm(ForSeq2SeqLm),
    /// A sequence classifier (`transformers.AutoModelForSequenceClassification`).
    AutoModelForSequenceClassification => SequenceClassification(ForSequenceClassification),
    /// A multiple choice model (`transformers.AutoModelForMultipleChoice`).
    AutoModelForMultipleChoice => MultipleChoice(ForMultipleChoice),
    /// A next sentence predictor (`transformers.AutoModelForNextSentencePrediction`).
    AutoModelForNextSentencePrediction => NextSentencePrediction(ForNextSentencePrediction),
    /// A token classifier (`transformers.AutoModelForTokenClassification`).
    AutoModelForTokenClassification => TokenClassification(ForTokenClassification),
    /// An extractive question answering model (`transformers.AutoModelForQuestionAnswering`).
    AutoModelForQuestionAnswering => QuestionAnswering(ForQuestionAnswering),
    /// A text encoder (`transformers.AutoModelForTextEncoding`, e.g. `T5EncoderModel`).
    AutoModelForTextEncoding => TextEncoding(ForTextEncoding),
    /// An image classifier (`transformers.AutoModelForImageClassification`).
    AutoModelForImageClassification => ImageClassification(ForImageClassification),
    /// A contrastive image-text model (`transformers.AutoModelForZeroShotImageClassification`).
    AutoModelForZeroShotImageClassification => ZeroShotImageClassification(ForZeroShotImageClassification),
    /// A masked image model (`transformers.AutoModelForMaskedImageModeling`).
    AutoModelForMaskedImageModeling => MaskedImageModeling(ForMaskedImageModeling),
}
