"""The llama.cpp side of the autocandle benchmark's GGUF scenarios (through llama-cpp-python).

`python bench_llama_cpp.py gguf-q4_1 --model DIR --gguf FILE --threads 2 --warmup 1 --iters 2`
prints one JSON line with the keys the other sides print: load to first token, peak RSS,
prefill (to the first token) and decode tokens/s for a 128-token prompt and 128 greedy tokens.
`pip install llama-cpp-python` builds llama.cpp from source for this machine.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def ids(batch: int, seq: int) -> list:
    """The token ids every side uses (crates/bench/src/main.rs `ids`)."""
    return [[1000 + ((b * 1009 + t * 7919) % 20000) for t in range(seq)] for b in range(batch)]


def status_kib(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mib(kib: int) -> float:
    return round(kib / 1024.0, 1)


def last_argmax(llm) -> int:
    """The greedy token after the last evaluated position (llama.cpp computes only its logits)."""
    import numpy as np
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return int(np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).argmax())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario")
    parser.add_argument("--model", required=True)
    parser.add_argument("--gguf", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    import llama_cpp

    import_ms = (time.perf_counter() - start) * 1000.0
    path = Path(args.model) / args.gguf
    prompt = ids(1, 128)[0]
    new = 128
    out = {
        "scenario": args.scenario,
        "impl": "llama.cpp",
        "threads": args.threads,
        "llama_cpp_python": llama_cpp.__version__,
        "import_ms": import_ms,
        "rss_before_mib": mib(status_kib("VmRSS")),
    }
    start = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=512,
        n_batch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        use_mmap=True,
        verbose=False,
    )
    out["load_ms"] = (time.perf_counter() - start) * 1000.0
    llm.eval(prompt)
    last_argmax(llm)
    out["first_token_ms"] = (time.perf_counter() - start) * 1000.0
    out["peak_rss_first_token_mib"] = mib(status_kib("VmHWM"))
    prefill, decode, tokens = [], [], []
    for i in range(args.warmup + args.iters):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        nxt = last_argmax(llm)
        first = time.perf_counter()
        generated = [nxt]
        for _ in range(new - 1):
            llm.eval([nxt])
            nxt = last_argmax(llm)
            generated.append(nxt)
        end = time.perf_counter()
        if i >= args.warmup:
            prefill.append((first - t0) * 1000.0)
            decode.append((new - 1) / (end - first))
        tokens = generated
    out["prefill_ms"] = statistics.median(prefill)
    out["decode_tok_s"] = statistics.median(decode)
    out["tokens"] = tokens[:16]
    out["file_mib"] = round(path.stat().st_size / 2**20, 1)
    out["peak_rss_mib"] = mib(status_kib("VmHWM"))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
