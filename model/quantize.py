"""Weight-only int8 for decoding on a CPU: every Linear (the output head too) keeps its weight as int8 rows with one
bf16 scale per row; activations stay bf16.

Why: at batch 1 each new token streams every weight from memory once, so a quarter of fp32's bytes is most of the
speed (docs/results.md has the figures). The kernel is torch's own `_weight_int8pack_mm` (what gpt-fast and torchao
call for int8 weight-only on a CPU); its fast path takes bf16 activations, not fp32. Symmetric round-to-nearest per
output row (scale = max|w|/127): the relative error of a product is ~0.8%. For inference only; the embedding lookup keeps its bf16 table (the tied head gets its own int8 copy).
"""
import torch
from torch import nn


class Int8Linear(nn.Module):
    def __init__(self, linear: nn.Linear, dtype=torch.bfloat16):
        super().__init__()
        if linear.bias is not None:
            raise ValueError("Int8Linear: MiniMind's projections have no bias")
        if linear.in_features % 16:
            # torch 2.13's AVX-512 kernel crashes on other widths (K=60, 33) or silently returns wrong products
            # (K=8, 24, 40)
            raise ValueError(f"Int8Linear: in_features {linear.in_features} is not a multiple of 16, which the "
                             f"int8 kernel needs")
        w = linear.weight.detach().float()
        scale = w.abs().amax(1).clamp(min=1e-12) / 127
        self.register_buffer("weight", (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(dtype))
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._check()

    def _check(self):
        """The kernel is a private torch op: compare it once with the dequantized product, so a torch version or CPU
        where it misbehaves fails here, loudly, instead of generating nonsense."""
        x = torch.randn(2, self.in_features, generator=torch.Generator().manual_seed(0)).to(self.scale.dtype)
        ref = x.float() @ (self.weight.float() * self.scale.float()[:, None]).T
        err = ((self(x).float() - ref).norm() / ref.norm().clamp(min=1e-12)).item()
        if not err < 2e-2:
            raise RuntimeError(f"Int8Linear: torch._weight_int8pack_mm disagrees with the reference product "
                               f"(relative error {err:.3f}) for {self.out_features}x{self.in_features}")

    def forward(self, x):
        lead = x.shape[:-1]
        y = torch._weight_int8pack_mm(x.reshape(-1, self.in_features).to(self.scale.dtype).contiguous(),
                                      self.weight, self.scale)
        return y.reshape(*lead, self.out_features)


@torch.no_grad()
def quantize_int8(model: nn.Module) -> nn.Module:
    """In place: bf16 everywhere (the RoPE frequencies stay fp32, see MiniMindModel._apply), then every nn.Linear →
    Int8Linear. Returns the model (for inference)."""
    from .model_lora import LoRALinear
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        # merging later would add a float delta to int8 codes; merge first (model_lora.load_lora_file does)
        raise ValueError("quantize_int8: the model still has LoRA adapters; merge them first (merge_lora)")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("quantize_int8 is for CPU inference (on a GPU the decode step is launch-bound, not "
                         "memory-bound); load the model on the CPU")
    model.to(torch.bfloat16)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear(child))
    return model.eval()
