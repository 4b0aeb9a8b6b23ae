"""Copy a Hugging Face model folder with its safetensors weights cast to another float dtype.

The device tool carries at most 64 MiB, so bench/gpu/prepare.sh narrows the base to float16 here
and bench/gpu/device.sh widens it back to float32 on the GPU machine.

    python bench/gpu/cast_weights.py SRC DST float16|float32
"""

import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

src, dst, dtype = Path(sys.argv[1]), Path(sys.argv[2]), getattr(torch, sys.argv[3])
shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.safetensors", "*.md", ".git*"))
weights = load_file(src / "model.safetensors")
save_file(
    {k: v.to(dtype).contiguous() for k, v in weights.items()}, dst / "model.safetensors", metadata={"format": "pt"}
)
