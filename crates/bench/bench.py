"""The PyTorch `transformers` side of the autocandle benchmark: one scenario per process.

    python crates/bench/bench.py SCENARIO --model DIR [--threads N] [--warmup W] [--iters K]

prints one JSON line with the scenario's measurements, the same keys the Rust side
(`autocandle-bench`, crates/bench/src/main.rs) prints. `cargo xtask bench` runs both and
alternates them; run by hand to look at one number. Inputs are deterministic and the same
as the Rust side's (`ids` and `pixels` below); timings are medians over `--iters` timed
iterations after `--warmup` untimed ones, in milliseconds.

Scenarios: encoder-1x16, encoder-32x128 (AutoModel, MiniLM), decoder (SmolLM2 shape: prefill
128 tokens, then 128 greedy tokens), seq2seq (t5-small shape: 64 in, 32 out, greedy), vit
(vit-base shape, batch 8), convnext-tiny (ConvNeXT-tiny shape, batch 8 of 224 x 224), dinov2-base (AutoModel, DINOv2-base shape, batch 8 at 224 px), modernbert-32x128 (AutoModel, ModernBERT-base shape), deberta-32x128 (AutoModel,
DeBERTa-v3-base shape), whisper-base-30s (Whisper-base shape: the encoder on 3000 frames,
then 32 greedy tokens), wav2vec2-ctc (wav2vec2-base shape with its CTC head, 10 s of 16 kHz
audio), load-minilm / load-smollm2 (from_pretrained to the first output on
a warm page cache, and the peak RSS of the load), smolvlm-256m / qwen2_5_vl-scaled (vision-language
models, random weights with the real processors: one 512 x 512 image and a short prompt, the
time from the raw inputs through the processor to the first token, then 32 greedy tokens). encoder-32x128-bf16, modernbert-32x128-bf16, deberta-32x128-bf16 and decoder-bf16 are
their f32 namesakes with the model loaded in bf16; after the timed part, the f32 model is
loaded too and its outputs compared (`max_abs_dev`, `mean_abs_dev`, `max_abs_f32`; for the
decoder the logits of the prompt, and `greedy_agree` / `first_divergence` of the tokens).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def ids(batch: int, seq: int) -> list:
    """Token ids every side of the benchmark uses: away from special tokens, below every vocab."""
    return [[1000 + (b * 1009 + t * 7919) % 20000 for t in range(seq)] for b in range(batch)]


def pixels(batch: int, size: int) -> list:
    """Pixel values in [-1, 1), as a ViT processor would give them; the same on every side."""
    n = batch * 3 * size * size
    return [((i * 7) % 251) / 125.0 - 1.0 for i in range(n)]


def mel_features(mel: int, frames: int) -> list:
    """Log-mel features in [-1, 1), the Whisper scenario's input; the same on every side."""
    return [((i * 7) % 251) / 125.0 - 1.0 for i in range(mel * frames)]


def audio(samples: int) -> list:
    """Raw audio in [-1, 1), as a wav2vec2 feature extractor would give it; the same on every side."""
    return [((i * 7919) % 2003) / 1001.5 - 1.0 for i in range(samples)]


def status_kib(field: str) -> int:
    """A `kB` field of /proc/self/status (VmHWM: peak RSS, VmRSS, RssAnon, RssFile)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def mib(kib: int) -> float:
    return round(kib / 1024.0, 1)


def weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def timed(fn, warmup: int, iters: int) -> list:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def scenario_dtype(name: str):
    """A scenario name without its `-bf16` suffix, and the torch dtype that suffix names."""
    import torch

    if name.endswith("-bf16"):
        return name.removesuffix("-bf16"), torch.bfloat16
    return name, torch.float32


def deviation(approx, reference) -> dict:
    """max and mean |approx - reference| (in float64) and max |reference|, for scale."""
    if approx.shape != reference.shape:
        raise SystemExit(f"the outputs to compare differ in shape: {tuple(approx.shape)} against {tuple(reference.shape)}")
    reference = reference.double()
    diff = (approx.double() - reference).abs()
    return {
        "max_abs_dev": float(diff.max()),
        "mean_abs_dev": float(diff.mean()),
        "max_abs_f32": float(reference.abs().max()),
    }


class FirstTokenTimer:
    """A `generate` streamer that notes when the first new token arrives (end of prefill)."""

    def __init__(self):
        self.calls = 0
        self.first = None

    def put(self, value):
        self.calls += 1
        # The first call carries the prompt, the second the first generated token.
        if self.calls == 2:
            self.first = time.perf_counter()

    def end(self):
        pass


def greedy(model, x, mask, new: int, streamer=None):
    """The prompt `x` and `new` greedy tokens, EOS or not."""
    seqs = model.generate(
        input_ids=x,
        attention_mask=mask,
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=False,
        num_beams=1,
        streamer=streamer,
    )
    generated = seqs.shape[1] - x.shape[1]
    if generated != new:
        raise SystemExit(f"generate made {generated} tokens instead of {new}")
    return seqs


def timed_greedy(model, x, mask, new: int, warmup: int, iters: int):
    """`greedy` `warmup` times untimed, then `iters` times: the prefill times (ms, to the first
    new token), the decode rates (tokens/s of the other new tokens) and the last sequences."""
    prefill, decode, seqs = [], [], None
    for i in range(warmup + iters):
        timer = FirstTokenTimer()
        start = time.perf_counter()
        seqs = greedy(model, x, mask, new, timer)
        end = time.perf_counter()
        if i >= warmup:
            prefill.append((timer.first - start) * 1000.0)
            decode.append((new - 1) / (end - timer.first))
    return prefill, decode, seqs


# The vision-language scenarios: a model folder from prepare.py with its processor files, the
# 512 x 512 `bench-image.png` and the prompt `bench-prompt.txt` (one image placeholder).
VLM_SCENARIOS = ("smolvlm-256m", "qwen2_5_vl-scaled")
VLM_NEW = 32


def vlm(args, model_dir: Path, out: dict) -> None:
    """One image and the prompt through the processor, then `VLM_NEW` greedy tokens.
    `first_token_ms` runs from the raw image and text (decoded PIL image, prompt string) to
    the first new token: processor, vision encoder and prefill; `processor_ms` is the
    processor alone (timed apart, same inputs), `decode_tok_s` the rate of the other tokens."""
    import torch
    import transformers
    from PIL import Image

    processor = transformers.AutoProcessor.from_pretrained(model_dir)
    model = transformers.AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    out["attn_implementation"] = model.config._attn_implementation
    image = Image.open(model_dir / "bench-image.png").convert("RGB")
    image.load()
    prompt = (model_dir / "bench-prompt.txt").read_text()

    def process():
        return processor(text=[prompt], images=[[image]], return_tensors="pt")

    first_token, decode, seqs, inputs = [], [], None, None
    for i in range(args.warmup + args.iters):
        timer = FirstTokenTimer()
        start = time.perf_counter()
        inputs = process()
        seqs = model.generate(
            **inputs, max_new_tokens=VLM_NEW, min_new_tokens=VLM_NEW, do_sample=False, num_beams=1, streamer=timer
        )
        end = time.perf_counter()
        if i >= args.warmup:
            first_token.append((timer.first - start) * 1000.0)
            decode.append((VLM_NEW - 1) / (end - timer.first))
    prompt_len = inputs["input_ids"].shape[1]
    tokens = seqs[0, prompt_len:].tolist()
    if len(tokens) != VLM_NEW:
        raise SystemExit(f"generate made {len(tokens)} tokens instead of {VLM_NEW}")
    out["processor_ms"] = statistics.median(timed(process, 1, args.iters))
    out["first_token_ms"] = statistics.median(first_token)
    out["first_token_times_ms"] = first_token
    out["decode_tok_s"] = statistics.median(decode)
    out["prompt_tokens"] = prompt_len
    out["image_tokens"] = int((inputs["input_ids"] == model.config.image_token_id).sum())
    out["pixel_values_shape"] = list(inputs["pixel_values"].shape)
    out["tokens"] = tokens


def run(args) -> dict:
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    model_dir = Path(args.model)
    out = {
        "scenario": args.scenario,
        "impl": "pytorch",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    scenario, dtype = scenario_dtype(args.scenario)
    out["dtype"] = {torch.float32: "f32", torch.bfloat16: "bf16"}[dtype]
    if dtype != torch.float32 and hasattr(torch.backends, "cpu"):
        # The kernels torch picked for this CPU (AVX512, AVX2, ...).
        out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    with torch.inference_mode():
        if scenario.startswith(("encoder-", "modernbert-", "deberta-")):
            shape = scenario.split("-", 1)[1]
            batch, seq = (int(x) for x in shape.split("x"))
            model = transformers.AutoModel.from_pretrained(model_dir, dtype=dtype).eval()
            x = torch.tensor(ids(batch, seq))
            mask = torch.ones_like(x)
            out["attn_implementation"] = model.config._attn_implementation
            result = {}

            def step():
                result["h"] = model(input_ids=x, attention_mask=mask).last_hidden_state

            out["times_ms"] = timed(step, args.warmup, args.iters)
            out["ms"] = statistics.median(out["times_ms"])
            out["checksum"] = float(result["h"].double().abs().mean())
            if dtype != torch.float32:
                # Outside the timed part: the f32 model's output on the same ids.
                del model
                reference = transformers.AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
                out.update(deviation(result["h"], reference(input_ids=x, attention_mask=mask).last_hidden_state))
        elif scenario == "decoder" or scenario.startswith("moe"):
            model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
            x = torch.tensor(ids(1, 128))
            mask = torch.ones_like(x)
            new = 128

            def new_tokens(seqs) -> list:
                return seqs[0, x.shape[1] :].tolist()

            prefill, decode, seqs = timed_greedy(model, x, mask, new, args.warmup, args.iters)
            tokens = new_tokens(seqs)
            out["prefill_ms"] = statistics.median(prefill)
            out["decode_tok_s"] = statistics.median(decode)
            out["tokens"] = tokens[:16]
            if dtype != torch.float32:
                # Outside the timed part: the logits of the prompt (every position) and the
                # greedy tokens of the f32 model against this model's.
                logits = model(input_ids=x, attention_mask=mask).logits
                del model
                reference = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
                out.update(deviation(logits, reference(input_ids=x, attention_mask=mask).logits))
                f32_tokens = new_tokens(greedy(reference, x, mask, new))
                pairs = list(zip(tokens, f32_tokens))
                out["greedy_agree"] = sum(a == b for a, b in pairs)
                out["greedy_total"] = len(tokens)
                out["first_divergence"] = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
                out["f32_tokens"] = f32_tokens[:16]
        elif scenario.startswith("gguf-"):
            # The GGUF file dequantized to f32, as transformers loads it without GGUF kernels.
            if not args.gguf:
                raise SystemExit("the gguf scenarios need --gguf FILE")
            x = torch.tensor(ids(1, 128))
            mask = torch.ones_like(x)
            new = 128
            out["rss_before_mib"] = mib(status_kib("VmRSS"))
            start = time.perf_counter()
            model = transformers.AutoModelForCausalLM.from_pretrained(
                model_dir, gguf_file=args.gguf, dtype=torch.float32
            ).eval()
            out["load_ms"] = (time.perf_counter() - start) * 1000.0
            model(input_ids=x, attention_mask=mask).logits[0, -1].argmax()
            out["first_token_ms"] = (time.perf_counter() - start) * 1000.0
            out["peak_rss_first_token_mib"] = mib(status_kib("VmHWM"))
            prefill, decode, seqs = timed_greedy(model, x, mask, new, args.warmup, args.iters)
            tokens = seqs[0, x.shape[1] :].tolist()
            out["prefill_ms"] = statistics.median(prefill)
            out["decode_tok_s"] = statistics.median(decode)
            out["tokens"] = tokens[:16]
            out["file_mib"] = round((model_dir / args.gguf).stat().st_size / 2**20, 1)
        elif args.scenario == "seq2seq":
            model = transformers.AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
            x = torch.tensor(ids(1, 64))
            mask = torch.ones_like(x)
            new = 32
            result = {}

            def step():
                result["seqs"] = model.generate(
                    input_ids=x, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False, num_beams=1
                )

            out["times_ms"] = timed(step, args.warmup, args.iters)
            out["ms"] = statistics.median(out["times_ms"])
            seqs = result["seqs"]
            if seqs.shape[1] - 1 != new:
                raise SystemExit(f"generate made {seqs.shape[1] - 1} tokens instead of {new}")
            out["tokens"] = seqs[0, 1:].tolist()[:16]
        elif args.scenario == "whisper-base-30s":
            model = transformers.AutoModelForSpeechSeq2Seq.from_pretrained(model_dir).eval()
            x = torch.tensor(mel_features(80, 3000)).reshape(1, 80, 3000)
            new = 32
            result = {}
            model.generation_config.eos_token_id = None

            def step():
                result["seqs"] = model.generate(x, max_new_tokens=new, do_sample=False, num_beams=1)

            def encode():
                model.model.encoder(x)

            out["times_ms"] = timed(step, args.warmup, args.iters)
            out["ms"] = statistics.median(out["times_ms"])
            out["encoder_ms"] = statistics.median(timed(encode, 0, args.iters))
            seqs = result["seqs"]
            # Whisper's generate returns the new tokens without the start token.
            if seqs.shape[1] != new:
                raise SystemExit(f"generate made {seqs.shape[1]} tokens instead of {new}")
            out["tokens"] = seqs[0].tolist()[:16]
        elif args.scenario in ("vit", "convnext-tiny"):
            model = transformers.AutoModelForImageClassification.from_pretrained(model_dir).eval()
            x = torch.tensor(pixels(8, 224)).reshape(8, 3, 224, 224)
            result = {}

            def step():
                result["logits"] = model(pixel_values=x).logits

            out["times_ms"] = timed(step, args.warmup, args.iters)
            out["ms"] = statistics.median(out["times_ms"])
            out["checksum"] = float(result["logits"].double().abs().mean())
        elif args.scenario == "dinov2-base":
            model = transformers.AutoModel.from_pretrained(model_dir).eval()
            x = torch.tensor(pixels(8, 224)).reshape(8, 3, 224, 224)
            result = {}

            def step():
                result["hidden"] = model(pixel_values=x).last_hidden_state

            out["times_ms"] = timed(step, args.warmup, args.iters)
            out["ms"] = statistics.median(out["times_ms"])
            out["checksum"] = float(result["hidden"].double().abs().mean())
        elif args.scenario == "wav2vec2-ctc":
            model = transformers.AutoModelForCTC.from_pretrained(model_dir).eval()
            x = torch.tensor(audio(160_000)).reshape(1, 160_000)
            result = {}

            def step():
                result["logits"] = model(input_values=x).logits

            out["times_ms"] = timed(step, args.warmup, args.iters)
            out["ms"] = statistics.median(out["times_ms"])
            out["checksum"] = float(result["logits"].double().abs().mean())
        elif args.scenario in ("load-minilm", "load-smollm2"):
            auto = transformers.AutoModel if args.scenario == "load-minilm" else transformers.AutoModelForCausalLM
            x = torch.tensor(ids(1, 16))
            out["rss_before_mib"] = mib(status_kib("VmRSS"))
            start = time.perf_counter()
            model = auto.from_pretrained(model_dir)
            loaded = time.perf_counter()
            out["peak_rss_load_mib"] = mib(status_kib("VmHWM"))
            out["rss_anon_mib"] = mib(status_kib("RssAnon"))
            out["rss_file_mib"] = mib(status_kib("RssFile"))
            model(input_ids=x)
            first = time.perf_counter()
            # transformers maps the safetensors files and touches the weights only when they
            # are used: the peak up to the first output is the comparable one.
            out["peak_rss_first_output_mib"] = mib(status_kib("VmHWM"))
            out["load_ms"] = (loaded - start) * 1000.0
            out["first_output_ms"] = (first - start) * 1000.0
            out["weights_mib"] = round(weights_bytes(model_dir) / 2**20, 1)
        elif args.scenario in VLM_SCENARIOS:
            vlm(args, model_dir, out)
        elif args.scenario.startswith("whisper-features"):
            import numpy as np
            import transformers.models.whisper.feature_extraction_whisper as whisper_fe

            batch = 8 if args.scenario.endswith("8x30s") else 1
            t = np.arange(480_000, dtype=np.float64) / 16_000.0
            tau = 2 * np.pi
            signal = (0.5 * np.sin(tau * 440.0 * t) + 0.25 * np.sin(tau * 1234.5 * t)
                      + 0.1 * np.sin(tau * (200.0 * t + 50.0 * t * t))).astype(np.float32)
            extractor = transformers.WhisperFeatureExtractor.from_pretrained(model_dir)
            clips = [signal] * batch
            result = {}

            def step():
                result["f"] = extractor(clips, sampling_rate=16_000, return_tensors="np")["input_features"]

            # The numpy extractor (transformers' path without torch) is the reference of the row.
            whisper_fe.is_torch_available = lambda: False
            out["times_ms"] = timed(step, args.warmup, args.iters)
            out["ms"] = statistics.median(out["times_ms"])
            out["checksum"] = float(np.abs(result["f"].astype(np.float64)).mean())
            whisper_fe.is_torch_available = lambda: True
            out["torch_ms"] = statistics.median(timed(step, 1, args.iters))
            out["batch"] = batch
        else:
            raise SystemExit(f"unknown scenario `{args.scenario}` for the PyTorch side")
    out["peak_rss_mib"] = mib(status_kib("VmHWM"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario")
    parser.add_argument("--model", required=True, help="model folder (config.json + model.safetensors)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--gguf", default=None, help="GGUF file inside --model (the gguf-* scenarios)")
    args = parser.parse_args()
    # Before torch is imported, so that its OpenMP pool is sized from the start.
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    start = time.perf_counter()
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import_ms = (time.perf_counter() - start) * 1000.0
    out = run(args)
    out["import_ms"] = import_ms
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
