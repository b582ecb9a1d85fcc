//! HuBERT for autocandle, after `transformers`' `modeling_hubert` (5.25): [`HubertConfig`],
//! [`HubertModel`] and the heads [`HubertForCtc`] and [`HubertForSequenceClassification`]
//! (the ones `transformers` maps).
//!
//! HuBERT is wav2vec2's network with two switches: the feature projection without its layer
//! norm (`feat_proj_layer_norm = false`) and a batch-normed positional convolution
//! (`conv_pos_batch_norm`); it is built from `autocandle-wav2vec2`'s building blocks and
//! heads. Weight names read as the `transformers` state dict (`hubert.encoder.layers.N...`,
//! `lm_head.weight`).

#![warn(missing_docs)]

mod config;
mod model;

pub use config::HubertConfig;
pub use model::HubertModel;

autocandle_wav2vec2::audio_heads! {
    backbone: HubertModel, config: HubertConfig, prefix: "hubert";
    ctc: HubertForCtc as "HubertForCTC";
    audio_classification: HubertForSequenceClassification as "HubertForSequenceClassification";
}

#[cfg(test)]
mod tests;
