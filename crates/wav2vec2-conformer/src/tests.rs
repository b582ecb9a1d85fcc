//! Unit tests: config validation, the position embeddings.

use autocandle_core::Error;
use candle_core::Device;

use crate::{relative_position_embeddings, rotary_embeddings, PositionEmbeddingsType, Wav2Vec2ConformerConfig};

fn invalid(config: &Wav2Vec2ConformerConfig) -> String {
    match config.validate() {
        Err(Error::InvalidConfig { model_type, message }) => {
            assert_eq!(model_type, "wav2vec2-conformer");
            message
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn defaults_are_valid() {
    let config = Wav2Vec2ConformerConfig::default();
    config.validate().unwrap();
    assert_eq!(config.position_embeddings().unwrap(), PositionEmbeddingsType::Relative);
    let parsed: Wav2Vec2ConformerConfig =
        serde_json::from_str(r#"{"model_type": "wav2vec2-conformer", "position_embeddings_type": null}"#).unwrap();
    assert_eq!(parsed.position_embeddings().unwrap(), PositionEmbeddingsType::None);
    let parsed: Wav2Vec2ConformerConfig =
        serde_json::from_str(r#"{"position_embeddings_type": "rotary", "rotary_embedding_base": 10000}"#).unwrap();
    assert_eq!(parsed.position_embeddings().unwrap(), PositionEmbeddingsType::Rotary);
}

#[test]
fn bad_configs_are_rejected_with_a_reason() {
    let base = Wav2Vec2ConformerConfig::default();
    let msg =
        invalid(&Wav2Vec2ConformerConfig { position_embeddings_type: Some("absolute".to_owned()), ..base.clone() });
    assert!(msg.contains("`relative`, `rotary` or null"), "{msg}");
    let msg = invalid(&Wav2Vec2ConformerConfig { conv_depthwise_kernel_size: 4, ..base.clone() });
    assert!(msg.contains("must be odd"), "{msg}");
    let mut odd_heads = base.clone();
    odd_heads.position_embeddings_type = Some("rotary".to_owned());
    odd_heads.wav2vec2.hidden_size = 15;
    odd_heads.wav2vec2.num_attention_heads = 5;
    odd_heads.wav2vec2.num_conv_pos_embedding_groups = 5;
    let msg = invalid(&odd_heads);
    assert!(msg.contains("even head size"), "{msg}");
    let mut bad_conv = base;
    bad_conv.wav2vec2.conv_kernel = vec![3];
    let msg = invalid(&bad_conv);
    assert!(msg.contains("`conv_kernel`"), "{msg}");
}

#[test]
fn relative_embeddings_run_from_t_minus_1_to_minus_t_plus_1() {
    let pe = relative_position_embeddings(3, 4, &Device::Cpu).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(pe.len(), 5);
    // Row 2 is position 0: sin 0, cos 0 for each frequency.
    assert_eq!(pe[2], vec![0.0, 1.0, 0.0, 1.0]);
    // Row 0 is position 2, row 4 position -2: sines opposite, cosines equal.
    assert!((pe[0][0] - 2f32.sin()).abs() < 1e-6 && (pe[4][0] + 2f32.sin()).abs() < 1e-6);
    assert!((pe[0][3] - pe[4][3]).abs() < 1e-6);
}

#[test]
fn rotary_embeddings_repeat_the_frequencies() {
    let (cos, sin) = rotary_embeddings(2, 4, 10000.0, &Device::Cpu).unwrap();
    let (cos, sin) = (cos.to_vec2::<f32>().unwrap(), sin.to_vec2::<f32>().unwrap());
    assert_eq!(cos[0], vec![1.0; 4]);
    assert_eq!(sin[0], vec![0.0; 4]);
    assert!((sin[1][0] - 1f32.sin()).abs() < 1e-6 && (sin[1][2] - 1f32.sin()).abs() < 1e-6);
    assert!((sin[1][1] - 0.01f32.sin()).abs() < 1e-6);
}

/// `Wav2Vec2ConformerConfig().to_json_string()` of `transformers` 5.25 reads as the defaults
/// (but `vocab_size`, which `transformers` leaves null).
#[test]
fn transformers_default_config_json_reads_as_the_defaults() {
    let config: Wav2Vec2ConformerConfig =
        serde_json::from_str(include_str!("../tests/data/default-config.json")).unwrap();
    config.validate().unwrap();
    assert_eq!(config.wav2vec2.vocab_size, None);
    let mut expected = Wav2Vec2ConformerConfig::default();
    expected.wav2vec2.vocab_size = None;
    // `transformers` saves the `output_hidden_size` it derived (`hidden_size`).
    expected.wav2vec2.output_hidden_size = Some(768);
    expected.wav2vec2.labels = config.wav2vec2.labels.clone();
    assert_eq!(config, expected);
}
