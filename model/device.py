"""Where a model runs and in which precision: one rule for training and inference."""
import sys

import torch

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def pick_device(name: str | None = None, allow_mps: bool = True) -> torch.device:
    """An explicit name wins; else CUDA, then (if allowed) Apple's MPS, then the CPU. Inference passes
    allow_mps=False: its decoding paths are tested on CUDA and the CPU only, so MPS is opt-in there (`--device mps`)."""
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if allow_mps and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_native_bf16() -> bool:
    # Without AVX512-BF16/AMX, oneDNN emulates bf16 matmuls, far slower than fp32 (see docs/results.md).
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """'auto' → bf16 on CUDA (fp16 where bf16 is unsupported) and on CPUs with native bf16, else fp32."""
    if name != "auto":
        if name == "bfloat16" and device.type == "cpu" and not cpu_has_native_bf16():
            print("warning: this CPU has no native bfloat16; bf16 autocast will be far slower than float32",
                  file=sys.stderr)
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32
