//! Unit tests: rope of every scaling type, RMSNorm and the ALiBi slopes against numbers from `transformers`
//! 5.23, config parsing, masks, the KV cache against whole-sequence runs, left padding, and
//! input errors.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{Activation, Error, KvCache, LabelConfig, ModelInputs};

use crate::*;

fn ctx(partial_rotary: bool) -> RopeContext {
    RopeContext {
        model_type: "llama",
        head_dim: 16,
        max_position_embeddings: 32,
        original_max_position_embeddings: None,
        partial_rotary,
    }
}

fn rope(json: &str) -> RopeConfig {
    serde_json::from_str(json).unwrap()
}

fn assert_close(got: &[f32], want: &[f64], rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-7 + rtol * w.abs();
        assert!((f64::from(g) - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
    }
}

// Reference values: `ROPE_INIT_FUNCTIONS[type](LlamaConfig(hidden_size=64,
// num_attention_heads=4, head_dim=16, max_position_embeddings=32, rope_parameters=...))`.
#[test]
fn rope_frequencies_match_transformers() {
    let cases: &[(&str, &str, usize, f64, &[f64])] = &[
        (
            "default",
            r#"{"rope_theta": 10000.0}"#,
            0,
            1.0,
            &[1.0, 0.31622776, 0.1, 0.031622779, 0.0099999998, 0.0031622779, 0.001, 0.00031622779],
        ),
        (
            "linear (legacy spelling)",
            r#"{"rope_scaling": {"type": "linear", "factor": 2.0}}"#,
            0,
            1.0,
            &[0.5, 0.15811388, 0.05, 0.015811389, 0.0049999999, 0.0015811389, 0.0005, 0.00015811389],
        ),
        (
            "dynamic, 48 positions",
            r#"{"rope_parameters": {"rope_type": "dynamic", "factor": 2.0}}"#,
            47,
            1.0,
            &[1.0, 0.28641495, 0.082033537, 0.023495633, 0.006729501299, 0.0019274298, 0.00055204477, 0.00015811389],
        ),
        (
            "dynamic, within max_position_embeddings",
            r#"{"rope_parameters": {"rope_type": "dynamic", "factor": 2.0}}"#,
            31,
            1.0,
            &[1.0, 0.31622776, 0.1, 0.031622779, 0.0099999998, 0.0031622779, 0.001, 0.00031622779],
        ),
        (
            "yarn",
            r#"{"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}}"#,
            0,
            1.138629436111989,
            &[1.0, 0.079056941, 0.025, 0.0079056947, 0.0024999999, 0.00079056947, 0.00025000001, 7.9056947e-05],
        ),
        (
            "yarn with mscale, betas, no truncation",
            r#"{"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                "mscale": 0.7, "mscale_all_dim": 1.0, "beta_fast": 16.0, "beta_slow": 2.0, "truncate": false,
                "rope_theta": 500.0}}"#,
            0,
            0.9634746568860826,
            &[1.0, 0.11496582, 0.05286856, 0.024312312, 0.01118034, 0.0051414282, 0.002364354, 0.0010872796],
        ),
        (
            "longrope, short",
            r#"{"rope_parameters": {"rope_type": "longrope", "short_factor": [1.0,1.1,1.2,1.3,1.5,2.0,3.0,4.0],
                "long_factor": [2.0,2.5,3.0,4.0,5.0,6.0,7.0,8.0], "original_max_position_embeddings": 16}}"#,
            15,
            1.118033988749895,
            &[1.0, 0.28747976, 0.083333336, 0.024325214, 0.0066666668, 0.0015811389, 0.00033333333, 7.9056947e-05],
        ),
        (
            "longrope, long",
            r#"{"rope_parameters": {"rope_type": "longrope", "short_factor": [1.0,1.1,1.2,1.3,1.5,2.0,3.0,4.0],
                "long_factor": [2.0,2.5,3.0,4.0,5.0,6.0,7.0,8.0], "original_max_position_embeddings": 16}}"#,
            16,
            1.118033988749895,
            &[0.5, 0.12649111, 0.033333335, 0.0079056947, 0.0020000001, 0.00052704633, 0.00014285714, 3.9528473e-05],
        ),
        (
            "llama3",
            r#"{"rope_parameters": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}"#,
            0,
            1.0,
            &[1.0, 0.24438459, 0.013042256, 0.0039528473, 0.00125, 0.00039528473, 0.000125, 3.9528473e-05],
        ),
    ];
    for (name, json, max_position, scaling, want) in cases {
        let spec = rope(json).resolve(&ctx(false)).unwrap();
        assert_eq!(spec.rotary_dim, 16, "{name}");
        assert_close(&spec.inv_freq(*max_position), want, 2e-6, name);
        assert!((spec.attention_scaling() - scaling).abs() < 1e-12, "{name}: {}", spec.attention_scaling());
    }
}

#[test]
fn rope_cos_sin_match_transformers() {
    // `LlamaRotaryEmbedding(config)(x, position_ids=[[0, 3, 31]])` for the yarn case above:
    // cos/sin carry the attention factor; first half of the last dim.
    let spec =
        rope(r#"{"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}}"#)
            .resolve(&ctx(false))
            .unwrap();
    let rotary = RotaryEmbedding::new(spec, 16, &Device::Cpu).unwrap();
    let positions = Tensor::new(&[[0u32, 3, 31]], &Device::Cpu).unwrap();
    let cs = rotary.cos_sin(&positions, 31, DType::F32).unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    #[rustfmt::skip]
    let cos = [1.13862943649292, 1.13862943649292, 1.13862943649292, 1.13862943649292, 1.13862943649292,
        1.13862943649292, 1.13862943649292, 1.13862943649292, -1.1272345781326294, 1.1067553758621216,
        1.135428547859192, 1.1383092403411865, 1.1385973691940308, 1.138626217842102, 1.1386290788650513,
        1.13862943649292, 1.0415525436401367, -0.8775633573532104, 0.8134608268737793, 1.104605793952942,
        1.135211706161499, 1.1382875442504883, 1.1385952234268188, 1.1386260986328125];
    #[rustfmt::skip]
    let sin = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.16068339347839355, 0.2675250768661499,
        0.08531717211008072, 0.02700243704020977, 0.008539640344679356, 0.0027004943694919348,
        0.0008539720438420773, 0.0002700496988836676, -0.4600491523742676, 0.7255064249038696,
        0.7967173457145691, 0.27626630663871765, 0.08815547078847885, 0.02790234237909317, 0.00882428977638483,
        0.002790510654449463];
    assert_close(&flat(&cs.cos), &cos, 1e-5, "cos");
    assert_close(&flat(&cs.sin), &sin, 1e-5, "sin");
}

#[test]
fn partial_rotary_follows_phi3() {
    // `Phi3RotaryEmbedding.compute_default_rope_parameters` with `partial_rotary_factor=0.5`.
    let config = rope(r#"{"rope_theta": 10000.0, "partial_rotary_factor": 0.5}"#);
    let spec = config.resolve(&ctx(true)).unwrap();
    assert_eq!(spec.rotary_dim, 8);
    assert_close(&spec.inv_freq(0), &[1.0, 0.1, 0.0099999998, 0.001], 2e-6, "partial");
    // Llama's default rope rotates the whole head and ignores the factor ...
    assert_eq!(config.resolve(&ctx(false)).unwrap().rotary_dim, 16);
    // ... and transformers fails on the other types with it.
    let linear = rope(r#"{"rope_scaling": {"type": "linear", "factor": 2.0}, "partial_rotary_factor": 0.5}"#);
    let err = linear.resolve(&ctx(false)).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");

    // Only the first `rotary_dim` dimensions move.
    let rotary = RotaryEmbedding::new(spec, 16, &Device::Cpu).unwrap();
    let x = Tensor::arange(0f32, 32.0, &Device::Cpu).unwrap().reshape((1, 1, 2, 16)).unwrap();
    let positions = Tensor::new(&[[0u32, 1]], &Device::Cpu).unwrap();
    let cs = rotary.cos_sin(&positions, 1, DType::F32).unwrap();
    let y = rotary.apply(&x, &cs).unwrap();
    let (x1, y1) =
        (x.i((0, 0, 1)).unwrap().to_vec1::<f32>().unwrap(), y.i((0, 0, 1)).unwrap().to_vec1::<f32>().unwrap());
    assert_eq!(&x1[8..], &y1[8..]);
    assert_ne!(&x1[..8], &y1[..8]);
    // Position 0 is the identity.
    assert_eq!(x.i((0, 0, 0)).unwrap().to_vec1::<f32>().unwrap(), y.i((0, 0, 0)).unwrap().to_vec1::<f32>().unwrap());
}

#[test]
fn rope_config_reads_both_spellings() {
    let old = rope(r#"{"rope_theta": 5000.0, "rope_scaling": {"type": "linear", "factor": 2.0}}"#);
    assert_eq!(old.parameters.rope_type(), "linear");
    assert_eq!(old.parameters.theta(), 5000.0);
    let new = rope(r#"{"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 5000.0}}"#);
    assert_eq!(old.resolve(&ctx(false)).unwrap(), new.resolve(&ctx(false)).unwrap());

    // A non-empty `rope_scaling` wins; `rope_theta` only fills in; `{}` counts as absent.
    let both = rope(
        r#"{"rope_theta": 1.5e6, "rope_scaling": {"rope_type": "dynamic", "factor": 3.0},
            "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 20.0}}"#,
    );
    assert_eq!(both.parameters.rope_type(), "dynamic");
    assert_eq!(both.parameters.theta(), 1.5e6);
    let empty = rope(r#"{"rope_scaling": {}, "rope_parameters": {"rope_type": "linear", "factor": 2.0}}"#);
    assert_eq!(empty.parameters.rope_type(), "linear");
    let default = rope("{}");
    assert_eq!(default, RopeConfig::default());
    assert_eq!((default.parameters.rope_type(), default.parameters.theta()), ("default", DEFAULT_ROPE_THETA));

    // Written back as one standardised `rope_parameters`, keeping unknown keys.
    let odd =
        rope(r#"{"rope_theta": 7.0e4, "rope_scaling": {"type": "yarn", "factor": 2.0, "mrope_section": [1, 2]}}"#);
    let json = serde_json::to_value(&odd).unwrap();
    assert_eq!(json["rope_parameters"]["rope_type"], "yarn");
    assert_eq!(json["rope_parameters"]["rope_theta"], 7.0e4);
    assert_eq!(json["rope_parameters"]["mrope_section"], serde_json::json!([1, 2]));
    assert!(json.get("rope_scaling").is_none() && json.get("rope_theta").is_none());
    assert_eq!(serde_json::from_value::<RopeConfig>(json).unwrap(), odd);
}

#[test]
fn rope_config_errors() {
    let err = rope(r#"{"rope_parameters": {"rope_type": "su"}}"#).resolve(&ctx(false)).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("`su`") && msg.contains("llama3") && msg.contains("longrope"), "{msg}");

    let err = rope(r#"{"rope_parameters": {"rope_type": "linear"}}"#).resolve(&ctx(false)).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("`factor`"), "{err}");
    let err = rope(r#"{"rope_parameters": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0}}"#)
        .resolve(&ctx(false))
        .unwrap_err();
    assert!(err.to_string().contains("`high_freq_factor`"), "{err}");
    let err = rope(r#"{"rope_parameters": {"rope_type": "longrope", "short_factor": [1.0], "long_factor": [1.0]}}"#)
        .resolve(&ctx(false))
        .unwrap_err();
    assert!(err.to_string().contains("8 entries"), "{err}");
    let err = rope(r#"{"rope_theta": 0.0}"#).resolve(&ctx(false)).unwrap_err();
    assert!(err.to_string().contains("rope_theta"), "{err}");
}

#[test]
fn rms_norm_matches_transformers() {
    let x = Tensor::new(&[[0.5f32, -1.25, 2.0, 0.125], [3.0, 0.0, -0.75, 1.5]], &Device::Cpu).unwrap();
    let w = Tensor::new(&[1.1f32, 0.9, -0.2, 0.05], &Device::Cpu).unwrap();
    let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let llama = RmsNorm::new(w.clone(), 1e-5, NormStyle::Weight).unwrap().forward(&x).unwrap();
    #[rustfmt::skip]
    let want = [0.4556451737880707, -0.9320014119148254, -0.331378310918808, 0.005177786108106375,
        1.9203141927719116, 0.0, 0.08728700876235962, 0.04364350438117981];
    assert_close(&flat(llama), &want, 1e-6, "LlamaRMSNorm");
    let gemma = RmsNorm::new(w, 1e-6, NormStyle::OnePlusWeight).unwrap().forward(&x).unwrap();
    #[rustfmt::skip]
    let want = [0.8698707222938538, -1.9675649404525757, 1.3255174160003662, 0.10873384028673172,
        3.666059970855713, 0.0, -0.34914860129356384, 0.9165149927139282];
    assert_close(&flat(gemma), &want, 1e-6, "GemmaRMSNorm");
}

// Reference values: `torch.nn.functional.layer_norm(x, (4,), w, b, 1e-5)` and
// `CohereLayerNorm(4, eps=1e-5)` with weight `w`, transformers 5.25.
#[test]
fn layer_norms_match_transformers() {
    let x = Tensor::new(&[[0.5f32, -1.25, 2.0, 0.125], [3.0, 0.0, -0.75, 1.5]], &Device::Cpu).unwrap();
    let w = Tensor::new(&[1.1f32, 0.9, -0.2, 0.05], &Device::Cpu).unwrap();
    let b = Tensor::new(&[0.1f32, -0.2, 0.3, 0.0], &Device::Cpu).unwrap();
    let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let with_bias = LayerNorm::new(w.clone(), Some(b), 1e-5).unwrap().forward(&x).unwrap();
    #[rustfmt::skip]
    let want = [0.24853962659835815, -1.4396307468414307, 0.013723619282245636, -0.009452521800994873,
        1.6752820014953613, -0.7858486771583557, 0.5343394875526428, 0.019528290256857872];
    assert_close(&flat(with_bias), &want, 1e-5, "nn.LayerNorm");
    let cohere = LayerNorm::new(w.clone(), None, 1e-5).unwrap().forward(&x).unwrap();
    #[rustfmt::skip]
    let want = [0.14853963255882263, -1.2396306991577148, -0.2862764000892639, -0.009452521800994873,
        1.5752819776535034, -0.5858486890792847, 0.23433947563171387, 0.019528290256857872];
    assert_close(&flat(cohere), &want, 1e-5, "CohereLayerNorm");
    // One weight row per head: `[2 heads, 4]` on `[2 rows, 2 heads, 4]`.
    let per_head = LayerNorm::new(Tensor::stack(&[&w, &w.affine(2.0, 0.0).unwrap()], 0).unwrap(), None, 1e-5).unwrap();
    let x2 = Tensor::stack(&[&x, &x], 1).unwrap();
    let got = per_head.forward(&x2).unwrap();
    assert_close(&flat(got.i((.., 0)).unwrap()), &want, 1e-5, "per-head LayerNorm, head 0");
    let doubled: Vec<f64> = want.iter().map(|v| 2.0 * v).collect();
    assert_close(&flat(got.i((.., 1)).unwrap()), &doubled, 1e-5, "per-head LayerNorm, head 1");
}

// Reference values: Cohere's `apply_rotary_pos_emb` on `x` as `[1, 1, 2, 4]` at positions 1, 2
// with `rope_theta` 100 (`repeat_interleave`d cos and sin), transformers 5.25.
#[test]
fn interleaved_rope_matches_cohere() {
    let spec = RopeConfig::with_theta(100.0).resolve(&RopeContext { head_dim: 4, ..ctx(false) }).unwrap();
    let rotary = RotaryEmbedding::new(spec, 4, &Device::Cpu).unwrap().with_interleaved(true);
    let positions = Tensor::new(&[[1u32, 2]], &Device::Cpu).unwrap();
    let cs = rotary.cos_sin(&positions, 2, DType::F32).unwrap();
    let x = Tensor::new(&[[0.5f32, -1.25, 2.0, 0.125], [3.0, 0.0, -0.75, 1.5]], &Device::Cpu).unwrap();
    let got = rotary.apply(&x.reshape((1, 1, 2, 4)).unwrap(), &cs).unwrap();
    #[rustfmt::skip]
    let want = [1.3219897747039795, -0.25464242696762085, 1.9775291681289673, 0.3240423798561096,
        -1.2484405040740967, 2.7278921604156494, -1.033053994178772, 1.32109797000885];
    assert_close(&got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), &want, 1e-5, "interleaved rope");
}

/// The allowed pattern of a mask as rows of 0/1, batch row `b`.
fn pattern(mask: &MaskBuilder, b: usize, window: Option<usize>, q_len: usize, past: usize) -> Vec<Vec<u8>> {
    (0..q_len).map(|i| (0..past + q_len).map(|kv| u8::from(mask.allowed(b, past + i, kv, window))).collect()).collect()
}

#[test]
fn masks_follow_masking_utils() {
    // The sliding window example of `sdpa_mask`'s docstring (`sliding_window=3`).
    let m = MaskBuilder::new(1, 5, 0, None, None);
    let want = [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1]];
    assert_eq!(pattern(&m, 0, Some(3), 5, 0), want.map(|r| r.to_vec()).to_vec());
    let causal = pattern(&m, 0, None, 5, 0);
    assert_eq!(causal[4], vec![1; 5]);
    assert_eq!(causal[0], vec![1, 0, 0, 0, 0]);

    // With 3 cached positions: queries are indices 3 and 4 of the whole sequence, and
    // padding (the first position of row 1) masks keys.
    let padding = vec![true, true, true, true, true, false, true, true, true, true];
    let m = MaskBuilder::new(2, 2, 3, Some(padding), None);
    assert_eq!(pattern(&m, 0, Some(3), 2, 3), vec![vec![0, 1, 1, 1, 0], vec![0, 0, 1, 1, 1]]);
    assert_eq!(pattern(&m, 1, None, 2, 3), vec![vec![0, 1, 1, 1, 0], vec![0, 1, 1, 1, 1]]);

    // The additive form: 0 and the dtype's minimum, `[batch, 1, q, kv]`.
    let t = m.build(None, DType::F32, &Device::Cpu).unwrap().unwrap();
    assert_eq!(t.dims(), [2, 1, 2, 5]);
    assert_eq!(t.i((1, 0, 0)).unwrap().to_vec1::<f32>().unwrap(), vec![f32::MIN, 0.0, 0.0, 0.0, f32::MIN]);
    let bf16 = m.build(None, DType::BF16, &Device::Cpu).unwrap().unwrap().to_dtype(DType::F32).unwrap();
    let min = bf16.min_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(min.is_finite() && min < -3e38, "{min}");
    // Nothing masked: no mask at all.
    assert!(MaskBuilder::new(1, 1, 4, None, None).build(None, DType::F32, &Device::Cpu).unwrap().is_none());

    // Packed sequences: positions restarting in a row split it into independent sequences.
    let packed = PackedSequences::detect(&[0, 1, 2, 0, 1, 0, 1, 2, 3, 4], 2, 5).unwrap();
    assert_eq!(packed.sequence, vec![0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    let m = MaskBuilder::new(2, 5, 0, None, Some(packed));
    assert_eq!(pattern(&m, 0, None, 5, 0)[4], vec![0, 0, 0, 1, 1]);
    assert_eq!(pattern(&m, 1, None, 5, 0)[4], vec![1, 1, 1, 1, 1]);
    assert!(PackedSequences::detect(&[0, 1, 2, 5, 6, 7], 2, 3).is_none());

    // A bidirectional block over the first 4 of 5 tokens, with a window of 2: Gemma 3 keeps the
    // block inside the window, PaliGemma 2 lets it reach past it.
    let blocks = vec![0, 0, 0, 0, -1];
    let m = MaskBuilder::new(1, 5, 0, None, None).with_block_sequence_ids(blocks.clone());
    assert_eq!(pattern(&m, 0, Some(2), 5, 0)[0], vec![1, 1, 1, 1, 0]);
    assert_eq!(pattern(&m, 0, Some(2), 5, 0)[3], vec![0, 0, 1, 1, 0]);
    let m = m.with_blocks_past_window(true);
    assert_eq!(pattern(&m, 0, Some(2), 5, 0)[0], vec![1, 1, 1, 1, 0]);
    assert_eq!(pattern(&m, 0, Some(2), 5, 0)[3], vec![1, 1, 1, 1, 0]);
    assert_eq!(pattern(&m, 0, Some(2), 5, 0)[4], vec![0, 0, 0, 1, 1]);
}

/// A tiny spec: GQA (4 heads, 2 key/value heads), head_dim 8 != 24 / 4.
fn tiny_spec() -> DecoderSpec {
    let rope = RopeConfig::with_theta(500.0);
    let labels = LabelConfig { num_labels: Some(3), ..LabelConfig::default() };
    CommonConfig {
        model_type: "llama",
        vocab_size: 40,
        hidden_size: 24,
        intermediate_size: 48,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        head_dim: Some(8),
        max_position_embeddings: 16,
        rms_norm_eps: 1e-6,
        hidden_act: Activation::Silu,
        rope: &rope,
        partial_rotary: false,
        original_max_position_embeddings: None,
        tie_word_embeddings: false,
        pad_token_id: Some(0),
        labels: &labels,
        use_cache: true,
    }
    .spec()
    .unwrap()
}

/// Every option that differs from Llama, at once, with a sliding layer between full ones.
fn variant_specs() -> Vec<(&'static str, DecoderSpec)> {
    let llama = tiny_spec();
    let mut qwen = tiny_spec();
    qwen.options.qkv_bias = true;
    qwen.options.qk_norm = true;
    qwen.set_layers(None, Some(3), |i| i == 1).unwrap();
    let mut gemma2 = tiny_spec();
    gemma2.options = DecoderOptions {
        norm_style: NormStyle::OnePlusWeight,
        sandwich_norms: true,
        attention_scale: Some(0.3),
        attn_logit_softcapping: Some(5.0),
        final_logit_softcapping: Some(3.0),
        scale_embeddings: true,
        ..DecoderOptions::default()
    };
    gemma2.hidden_act = Activation::GeluTanh;
    gemma2.set_layers(None, Some(2), |i| i % 2 == 0).unwrap();
    let mut phi3 = tiny_spec();
    phi3.options.fused_qkv = true;
    phi3.options.fused_gate_up = true;
    phi3.options.mlp_bias = true;
    phi3.rope = rope(r#"{"rope_theta": 500.0, "partial_rotary_factor": 0.5}"#)
        .resolve(&RopeContext {
            model_type: "phi3",
            head_dim: 8,
            max_position_embeddings: 16,
            original_max_position_embeddings: None,
            partial_rotary: true,
        })
        .unwrap();
    let mut variants = vec![("llama", llama), ("qwen", qwen), ("gemma2", gemma2), ("phi3", phi3)];
    variants.extend(llama_variant_specs());
    variants.extend(layer_norm_variant_specs());
    variants
}

/// Gemma-3 (a rope of its own on the sliding layers), SmolLM3 (a NoPE layer), OLMo-2
/// (post-norms, whole-projection q/k norms) and Granite (the multipliers).
fn llama_variant_specs() -> Vec<(&'static str, DecoderSpec)> {
    let mut gemma3 = tiny_spec();
    gemma3.options = DecoderOptions {
        norm_style: NormStyle::OnePlusWeight,
        sandwich_norms: true,
        qk_norm: true,
        scale_embeddings: true,
        attention_scale: Some(0.3),
        sliding_rope: Some(rope(r#"{"rope_theta": 20.0}"#).resolve(&rope_context(8)).unwrap()),
        ..DecoderOptions::default()
    };
    gemma3.set_layers(None, Some(2), |i| i != 1).unwrap();
    let mut smollm3 = tiny_spec();
    smollm3.options.skip_rope = vec![false, true, false];
    let mut olmo2 = tiny_spec();
    olmo2.options.norm_style = NormStyle::WeightInF32;
    olmo2.options.post_norms = true;
    olmo2.options.qk_norm_full = true;
    let mut granite = tiny_spec();
    granite.options.embedding_multiplier = Some(3.0);
    granite.options.residual_multiplier = Some(0.5);
    granite.options.attention_scale = Some(0.2);
    granite.options.logits_scaling = Some(2.5);
    vec![("gemma3", gemma3), ("smollm3", smollm3), ("olmo2", olmo2), ("granite", granite)]
}

fn rope_context(head_dim: usize) -> RopeContext {
    RopeContext {
        model_type: "gemma3_text",
        head_dim,
        max_position_embeddings: 16,
        original_max_position_embeddings: None,
        partial_rotary: false,
    }
}

#[test]
fn new_options_are_checked() {
    let mut spec = tiny_spec();
    spec.options.skip_rope = vec![true; 2];
    let err = spec.validate().unwrap_err().to_string();
    assert!(err.contains("the per-layer rope switches have 2 entries but the model has 3 layers"), "{err}");
    let mut spec = tiny_spec();
    spec.options.post_norms = true;
    spec.options.sandwich_norms = true;
    assert!(spec.validate().unwrap_err().to_string().contains("cannot both be on"));
    let mut spec = tiny_spec();
    spec.options.embedding_multiplier = Some(f64::NAN);
    assert!(spec.validate().unwrap_err().to_string().contains("`embedding_multiplier`"));
    let mut spec = tiny_spec();
    spec.options.sliding_rope = Some(rope("{}").resolve(&rope_context(16)).unwrap());
    assert!(spec.validate().unwrap_err().to_string().contains("rotary dimension of the sliding layers"));
}

/// The LayerNorm / parallel-block switches: Phi's, StableLM's and Cohere's sets.
fn layer_norm_variant_specs() -> Vec<(&'static str, DecoderSpec)> {
    let mut phi = tiny_spec();
    phi.options = DecoderOptions {
        norm_kind: NormKind::LayerNorm { bias: true },
        qkv_bias: true,
        o_bias: true,
        mlp_bias: true,
        o_proj_name: "dense",
        mlp_kind: MlpKind::Plain { up: "fc1", down: "fc2" },
        parallel_block: true,
        final_norm_name: "final_layernorm",
        lm_head_bias: true,
        qk_layernorm: Some(QkLayerNorm::Shared),
        ..DecoderOptions::default()
    };
    phi.hidden_act = Activation::GeluTanh;
    phi.set_layers(None, Some(3), |_| true).unwrap();
    let mut stablelm = tiny_spec();
    stablelm.options.norm_kind = NormKind::LayerNorm { bias: true };
    stablelm.options.qk_layernorm = Some(QkLayerNorm::PerHeadList);
    let mut cohere = tiny_spec();
    cohere.options = DecoderOptions {
        norm_kind: NormKind::LayerNorm { bias: false },
        qk_layernorm: Some(QkLayerNorm::PerHead),
        parallel_block: true,
        logit_scale: Some(0.25),
        interleaved_rope: true,
        ..DecoderOptions::default()
    };
    vec![("phi", phi), ("stablelm", stablelm), ("cohere", cohere)]
}

fn fresh_lm(spec: &DecoderSpec) -> CausalLm {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    CausalLm::load(vb, spec, "model").unwrap()
}

fn ids(rows: &[&[u32]]) -> Tensor {
    let t = rows[0].len();
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn cache_steps_equal_the_whole_sequence() {
    let tokens: &[u32] = &[3, 17, 5, 9, 22, 1, 38, 11, 4];
    for (name, spec) in variant_specs() {
        let lm = fresh_lm(&spec);
        let whole = lm.forward(&ModelInputs::new(ids(&[tokens]))).unwrap();
        let mut cache = KvCache::new();
        let mut steps = vec![lm.forward_with_cache(&ModelInputs::new(ids(&[&tokens[..4]])), &mut cache).unwrap()];
        for &t in &tokens[4..] {
            steps.push(lm.forward_with_cache(&ModelInputs::new(ids(&[&[t]])), &mut cache).unwrap());
        }
        assert_eq!(cache.seq_len(), tokens.len());
        let stepped = Tensor::cat(&steps, 1).unwrap();
        let diff = max_abs_diff(&whole, &stepped);
        assert!(diff < 1e-5, "{name}: whole vs cached steps differ by {diff}");
    }
}

#[test]
fn a_left_padded_row_equals_the_row_alone() {
    let row: &[u32] = &[7, 3, 29, 14, 8];
    let other: &[u32] = &[5, 6, 7, 8, 9, 10, 11, 12];
    for (name, spec) in variant_specs() {
        let lm = fresh_lm(&spec);
        let alone = lm.forward(&ModelInputs::new(ids(&[row]))).unwrap();

        // Row 0 left-padded with 3 pads; positions as generation computes them.
        let padded: Vec<u32> = [0, 0, 0].iter().chain(row).copied().collect();
        let mask = Tensor::new(&[[0i64, 0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
        let positions = Tensor::new(&[[1i64, 1, 1, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6, 7]], &Device::Cpu).unwrap();
        let inputs = ModelInputs::new(ids(&[&padded, other])).with_attention_mask(mask).with_position_ids(positions);
        let batched = lm.forward(&inputs).unwrap();
        let diff = max_abs_diff(&alone.i(0).unwrap(), &batched.i((0, 3..)).unwrap());
        assert!(diff < 1e-5, "{name}: padded row differs from the row alone by {diff}");

        // The same through the cache: prefill the padded batch, then one token per step.
        let mut cache = KvCache::new();
        let mut alone_cache = KvCache::new();
        let pre = ModelInputs::new(ids(&[&padded[..5], &other[..5]]))
            .with_attention_mask(Tensor::new(&[[0i64, 0, 0, 1, 1], [1, 1, 1, 1, 1]], &Device::Cpu).unwrap())
            .with_position_ids(Tensor::new(&[[1i64, 1, 1, 0, 1], [0, 1, 2, 3, 4]], &Device::Cpu).unwrap());
        lm.forward_with_cache(&pre, &mut cache).unwrap();
        lm.forward_with_cache(&ModelInputs::new(ids(&[&row[..2]])), &mut alone_cache).unwrap();
        for step in 0..3 {
            let total = 6 + step;
            let mut mask = vec![1i64; 2 * total];
            mask[..3].fill(0);
            let inputs = ModelInputs::new(ids(&[&[row[2 + step]], &[other[5 + step]]]))
                .with_attention_mask(Tensor::from_vec(mask, (2, total), &Device::Cpu).unwrap())
                .with_position_ids(Tensor::new(&[[2 + step as i64], [5 + step as i64]], &Device::Cpu).unwrap());
            let got = lm.forward_with_cache(&inputs, &mut cache).unwrap();
            let want = lm.forward_with_cache(&ModelInputs::new(ids(&[&[row[2 + step]]])), &mut alone_cache).unwrap();
            let diff = max_abs_diff(&want.i(0).unwrap(), &got.i(0).unwrap());
            assert!(diff < 1e-5, "{name}: cached padded step {step} differs by {diff}");
        }
    }
}

#[test]
fn sliding_window_limits_what_a_token_sees() {
    // With a window of 3 on every layer, the last position depends on the last 3 tokens
    // only when there is one layer; changing the first token leaves it unchanged.
    let mut spec = tiny_spec();
    spec.num_hidden_layers = 1;
    spec.set_layers(None, Some(3), |_| true).unwrap();
    let lm = fresh_lm(&spec);
    let a = lm.forward(&ModelInputs::new(ids(&[&[1, 2, 3, 4, 5, 6]]))).unwrap();
    let b = lm.forward(&ModelInputs::new(ids(&[&[9, 2, 3, 4, 5, 6]]))).unwrap();
    assert_eq!(max_abs_diff(&a.i((0, 5)).unwrap(), &b.i((0, 5)).unwrap()), 0.0);
    assert!(max_abs_diff(&a.i((0, 2)).unwrap(), &b.i((0, 2)).unwrap()) > 1e-4);
}

#[test]
fn invalid_inputs_are_typed_errors() {
    let spec = tiny_spec();
    let lm = fresh_lm(&spec);
    let run = |inputs: ModelInputs| lm.forward(&inputs).unwrap_err();

    let long: Vec<u32> = (0..17).collect();
    let err = run(ModelInputs::new(ids(&[&long])));
    assert!(matches!(err, Error::SequenceTooLong { len: 17, max: 16 }), "{err}");
    let err = run(ModelInputs::new(ids(&[&[1, 40]])));
    assert!(matches!(err, Error::TokenIdOutOfRange { id: 40, vocab_size: 40, .. }), "{err}");
    let err = run(ModelInputs::new(Tensor::new(&[[1i64, -2]], &Device::Cpu).unwrap()));
    assert!(matches!(err, Error::TokenIdOutOfRange { id: -2, .. }), "{err}");
    let err = run(ModelInputs::new(Tensor::zeros((1, 0), DType::U32, &Device::Cpu).unwrap()));
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("empty"), "{err}");
    let err = run(ModelInputs::new(Tensor::new(&[1u32, 2], &Device::Cpu).unwrap()));
    assert!(err.to_string().contains("[batch, seq]"), "{err}");
    let err = run(ModelInputs::default());
    assert!(err.to_string().contains("input_ids"), "{err}");
    let err = run(ModelInputs::new(ids(&[&[1, 2]])).with_attention_mask(Tensor::new(&[[1u32]], &Device::Cpu).unwrap()));
    assert!(err.to_string().contains("`attention_mask` has shape [1, 1]"), "{err}");
    let err =
        run(ModelInputs::new(ids(&[&[1, 2]])).with_position_ids(Tensor::new(&[[0u32, 16]], &Device::Cpu).unwrap()));
    assert!(err.to_string().contains("position 16"), "{err}");

    // The cache counts: 10 cached + 7 new is too long; its batch must match.
    let mut cache = KvCache::new();
    let ten: Vec<u32> = (0..10).collect();
    lm.forward_with_cache(&ModelInputs::new(ids(&[&ten])), &mut cache).unwrap();
    let seven: Vec<u32> = (0..7).collect();
    let err = lm.forward_with_cache(&ModelInputs::new(ids(&[&seven])), &mut cache).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 17, max: 16 }), "{err}");
    let err = lm.forward_with_cache(&ModelInputs::new(ids(&[&[1], &[2]])), &mut cache).unwrap_err();
    assert!(err.to_string().contains("the cache holds 1"), "{err}");
    let err = lm
        .forward_with_cache(
            &ModelInputs::new(ids(&[&[1]])).with_attention_mask(Tensor::new(&[[1u32]], &Device::Cpu).unwrap()),
            &mut cache,
        )
        .unwrap_err();
    assert!(err.to_string().contains("cached + new"), "{err}");
}

#[test]
fn invalid_specs_are_config_errors() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let load = |spec: DecoderSpec| DecoderModel::load(vb.clone(), &spec).unwrap_err();

    let err = load(DecoderSpec { num_key_value_heads: 3, ..tiny_spec() });
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("multiple of"), "{err}");
    let err = load(DecoderSpec { layer_types: vec![LayerType::Sliding; 3], ..tiny_spec() });
    assert!(err.to_string().contains("sliding_window"), "{err}");
    let err = load(DecoderSpec { vocab_size: 0, ..tiny_spec() });
    assert!(err.to_string().contains("`vocab_size`"), "{err}");
    let err = load(DecoderSpec { layer_types: vec![LayerType::Full], ..tiny_spec() });
    assert!(err.to_string().contains("3 layers"), "{err}");
    let mut both = tiny_spec();
    both.options.qk_norm = true;
    both.options.qk_layernorm = Some(QkLayerNorm::Shared);
    assert!(load(both).to_string().contains("cannot both be set"));
    let mut nan = tiny_spec();
    nan.options.logit_scale = Some(f64::NAN);
    assert!(load(nan).to_string().contains("`logit_scale` must be a finite number"));

    let rope = RopeConfig::default();
    let labels = LabelConfig::default();
    let common = CommonConfig { hidden_size: 30, head_dim: None, ..tiny_common(&rope, &labels) };
    let err = common.require_heads_divide_hidden().unwrap_err();
    assert!(err.to_string().contains("multiple of `num_attention_heads`"), "{err}");
    let err = CommonConfig { num_attention_heads: 0, ..tiny_common(&rope, &labels) }.spec().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    let err = LayerType::from_name("chunked_attention", "llama").unwrap_err();
    assert!(err.to_string().contains("chunked_attention"), "{err}");
}

fn tiny_common<'a>(rope: &'a RopeConfig, labels: &'a LabelConfig) -> CommonConfig<'a> {
    CommonConfig {
        model_type: "llama",
        vocab_size: 40,
        hidden_size: 24,
        intermediate_size: 48,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: None,
        head_dim: None,
        max_position_embeddings: 16,
        rms_norm_eps: 1e-6,
        hidden_act: Activation::Silu,
        rope,
        partial_rotary: false,
        original_max_position_embeddings: None,
        tie_word_embeddings: true,
        pad_token_id: None,
        labels,
        use_cache: true,
    }
}

#[test]
fn heads_follow_transformers() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let spec = tiny_spec();
    let x = ModelInputs::new(ids(&[&[0, 4, 5, 0], &[3, 0, 0, 0]]));

    let classifier = SequenceClassifier::load(vb.clone(), &spec, "model").unwrap();
    // The rightmost non-pad token; 0 when every token is padding.
    let pooled = |c: &SequenceClassifier, x: &Tensor| c.pooling().last_non_pad_indices(x).unwrap().unwrap();
    assert_eq!(pooled(&classifier, &ids(&[&[0, 4, 5, 0], &[3, 0, 0, 0], &[0, 0, 0, 0]])), vec![2, 0, 0]);
    assert_eq!(classifier.logits(&x).unwrap().dims(), [2, 3]);
    let no_pad =
        SequenceClassifier::load(vb.clone(), &DecoderSpec { pad_token_id: None, ..spec.clone() }, "model").unwrap();
    assert!(no_pad.logits(&x).unwrap_err().to_string().contains("without a padding token"));
    assert_eq!(pooled(&no_pad, &ids(&[&[0, 4, 5, 0]])), vec![3]);

    assert_eq!(TokenClassifier::load(vb.clone(), &spec, "model").unwrap().logits(&x).unwrap().dims(), [2, 4, 3]);
    let qa = <QuestionAnswerer as DecoderHead>::load(vb.clone(), &spec, "transformer").unwrap();
    let (start, end) = qa.logits(&x).unwrap();
    assert_eq!((start.dims(), end.dims()), (&[2usize, 4][..], &[2usize, 4][..]));
    assert!(varmap.data().lock().unwrap().contains_key("transformer.embed_tokens.weight"));

    // Tied: the LM head is the embedding matrix.
    let tied = CausalLm::load(vb.clone(), &DecoderSpec { tie_word_embeddings: true, ..spec.clone() }, "model").unwrap();
    let logits = tied.forward(&x).unwrap();
    assert_eq!(logits.dims(), [2, 4, 40]);
    assert!(!varmap.data().lock().unwrap().contains_key("lm_head.weight"));
    let hidden = tied.model().forward(&x).unwrap();
    let by_hand = hidden.broadcast_matmul(&tied.model().embed_weight().unwrap().t().unwrap()).unwrap();
    assert!(max_abs_diff(&logits, &by_hand) < 1e-5);
}

#[test]
fn longrope_cache_reset_is_phi3_only() {
    let mut spec = tiny_spec();
    spec.rope = rope(
        r#"{"rope_parameters": {"rope_type": "longrope", "short_factor": [1.0, 1.0, 1.0, 1.0],
            "long_factor": [2.0, 2.0, 2.0, 2.0], "original_max_position_embeddings": 8}}"#,
    )
    .resolve(&RopeContext {
        model_type: "llama",
        head_dim: 8,
        max_position_embeddings: 16,
        original_max_position_embeddings: None,
        partial_rotary: false,
    })
    .unwrap();
    assert_eq!(spec.rope.long_context_threshold(), Some(8));
    assert!(!fresh_lm(&spec).reset_cache_at(8, 9), "Llama keeps its cache");
    spec.options.longrope_cache_reset = true;
    let lm = fresh_lm(&spec);
    assert!(lm.reset_cache_at(8, 9) && lm.reset_cache_at(0, 9) && lm.reset_cache_at(5, 12));
    assert!(!lm.reset_cache_at(7, 8) && !lm.reset_cache_at(9, 10));
}

#[test]
fn dynamic_rope_extends_the_context() {
    let mut spec = tiny_spec();
    spec.rope = rope(r#"{"rope_parameters": {"rope_type": "dynamic", "factor": 2.0}}"#)
        .resolve(&RopeContext {
            model_type: "llama",
            head_dim: 8,
            max_position_embeddings: 16,
            original_max_position_embeddings: None,
            partial_rotary: false,
        })
        .unwrap();
    assert_eq!(spec.max_positions(), None);
    let lm = fresh_lm(&spec);
    let long: Vec<u32> = (0..20).map(|i| i % 40).collect();
    assert_eq!(lm.forward(&ModelInputs::new(ids(&[&long]))).unwrap().dims(), [1, 20, 40]);
    assert_eq!(tiny_spec().max_positions(), Some(16));
}

/// A tensor shaped as `like`, with values spread as `like`'s (same standard deviation and
/// mean), drawn from a fixed sequence seeded by `seed`.
fn deterministic_like(like: &Tensor, seed: f32) -> Tensor {
    let values: Vec<f32> = like.flatten_all().unwrap().to_vec1().unwrap();
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    let std = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt();
    let data: Vec<f32> = (0..values.len())
        .map(|i| {
            let u = ((i as f32 * 12.9898 + seed * 78.233).sin() * 43758.547).fract();
            mean + std * 3f32.sqrt() * (2.0 * u.abs() - 1.0)
        })
        .collect();
    Tensor::from_vec(data, like.dims(), like.device()).unwrap()
}

#[test]
fn half_precision_runs_close_to_f32() {
    for (name, spec) in variant_specs() {
        let varmap = VarMap::new();
        // Loading through the varmap creates every weight the model reads.
        CausalLm::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), &spec, "model").unwrap();
        // Deterministic weights (the varmap's are drawn unseeded), of the same shapes and spread;
        // numbered in name order, not in the varmap's (random) hash order.
        let data = varmap.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        let weights: std::collections::HashMap<String, Tensor> = names
            .into_iter()
            .enumerate()
            .map(|(n, k)| (k.clone(), deterministic_like(data[k].as_tensor(), n as f32)))
            .collect();
        drop(data);
        let lm = CausalLm::load(VarBuilder::from_tensors(weights.clone(), DType::F32, &Device::Cpu), &spec, "model")
            .unwrap();
        let mask = Tensor::new(&[[0u32, 1, 1, 1, 1], [1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
        let x = ModelInputs::new(ids(&[&[0, 4, 5, 6, 7], &[3, 9, 12, 1, 2]])).with_attention_mask(mask);
        let want = lm.forward(&x).unwrap();
        for dtype in [DType::BF16, DType::F16] {
            let vb = VarBuilder::from_tensors(weights.clone(), dtype, &Device::Cpu);
            let half = CausalLm::load(vb, &spec, "model").unwrap();
            let got = half.forward(&x).unwrap();
            assert_eq!(got.dtype(), dtype, "{name}");
            let got = got.to_dtype(DType::F32).unwrap();
            let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let diff = max_abs_diff(&want.i((.., 1..)).unwrap(), &got.i((.., 1..)).unwrap());
            assert!(diff.is_finite() && diff < 0.05 * scale.max(1.0), "{name} {dtype:?}: {diff} (scale {scale})");
        }
    }
}

/// `_get_alibi_slopes` (BLOOM) / `build_alibi_tensor` (Falcon).
#[test]
fn alibi_slopes_match_transformers() {
    // torch: _get_alibi_slopes(n, "cpu").tolist()
    assert_eq!(alibi_slopes(4), [0.25, 0.0625, 0.015625, 0.00390625]);
    assert_eq!(alibi_slopes(8), (1..=8).map(|p| 0.5f32.powi(p)).collect::<Vec<_>>());
    // 6 heads: the 4-head series, then the odd powers of the 8-head base.
    assert_eq!(alibi_slopes(6), [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]);
    // 12 heads: 8, then 4 of the 16-head series (odd powers of 2^-0.5).
    let s12 = alibi_slopes(12);
    assert_eq!(s12.len(), 12);
    for (got, p) in s12[8..].iter().zip([1, 3, 5, 7]) {
        assert!((got - 2f32.powf(-0.5 * p as f32)).abs() < 1e-7, "{s12:?}");
    }
    assert_eq!(alibi_slopes(1), [0.00390625]);
    assert!(alibi_slopes(0).is_empty());
}
