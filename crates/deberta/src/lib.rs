//! DeBERTa for autocandle, after `transformers`' `modeling_deberta` (5.25): [`DebertaConfig`]
//! with [`DebertaModel`], [`DebertaForMaskedLM`], [`DebertaForSequenceClassification`],
//! [`DebertaForTokenClassification`] and [`DebertaForQuestionAnswering`].
//!
//! The network is DeBERTa-v2's (`autocandle-deberta-v2`'s
//! [`DebertaModel`](autocandle_deberta_v2::DebertaModel), not a copy), built from a
//! [`DebertaSpec`](autocandle_deberta_v2::DebertaSpec) with [`Version::V1`](autocandle_deberta_v2::Version):
//! `modeling_deberta` differs from `modeling_deberta_v2` in
//!
//! - the attention weights: one `in_proj` (no bias; per head the query, key and value rows
//!   in turn) with `q_bias` and `v_bias`, split into three projections at load; `pos_proj`
//!   (no bias) for c2p and `pos_q_proj` for p2c;
//! - `talking_head`: the heads' scores are mixed by `head_logits_proj` before the mask and
//!   softmax, and the probabilities by `head_weights_proj` after it;
//! - the relative span: `min(seq, max_relative_positions)` rows either side of the centre of
//!   `rel_embeddings`, which selects the same rows as v2's fixed span; no log buckets, no
//!   `share_att_key`, no `norm_rel_ebd`, no convolution;
//! - the score scale counts every `pos_att_type` entry (`1 + len(pos_att_type)`);
//! - no multiple choice head (`transformers` has none for DeBERTa).
//!
//! `transformers` maps `AutoModelForPreTraining` to the masked LM class, whose output is not a
//! pretraining output, so autocandle registers it under `AutoModelForMaskedLM` only, as for
//! RoBERTa.

#![warn(missing_docs)]

mod config;
mod deberta;

pub use config::{DebertaConfig, TokenIds};
pub use deberta::{
    DebertaForMaskedLM, DebertaForQuestionAnswering, DebertaForSequenceClassification, DebertaForTokenClassification,
    DebertaModel, DebertaTextEncoding,
};

/// The heads `autocandle_core::register_heads!` builds the DeBERTa registered types from:
/// DeBERTa-v2's, loaded from a [`DebertaConfig`]. Not public API.
#[doc(hidden)]
pub mod __heads {
    use autocandle_core::Result;
    use autocandle_deberta_v2::DebertaHead;
    use candle_nn::VarBuilder;

    pub use autocandle_deberta_v2::__heads::{
        Base, MaskedLm, QuestionAnswering, SequenceClassification, TextEncoding, TokenClassification,
    };

    /// Check `config` and load the head `H` as `class`.
    pub fn load<H: DebertaHead>(
        vb: VarBuilder<'_>,
        config: &crate::DebertaConfig,
        _prefix: &str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, &config.spec()?, class)
    }
}

#[cfg(test)]
mod tests;
