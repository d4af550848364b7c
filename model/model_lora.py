"""LoRA (Hu et al. 2021, arXiv:2106.09685): y = W x + (α/r) · B A dropout(x), with W frozen.

A starts kaiming-uniform(a=√5) and B at zero (as in peft), so an adapter starts as an exact no-op. Any nn.Linear can
be a target; by default every attention and MLP projection (upstream adapted only the square q/o matrices).
Adapters save alone (a few hundred KB) and can be merged into W for inference and unmerged again.
"""
import math

import torch
from torch import nn

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_KEYS = ("lora_A", "lora_B", "lora_scaling")


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16, dropout: float = 0.0):
        super().__init__()
        self.base, self.rank = base, rank
        # α/r as a buffer: it travels in the adapter file, so loading needs no --lora_alpha to match training
        self.register_buffer("lora_scaling", torch.tensor(alpha / rank, device=base.weight.device))
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        base.weight.requires_grad_(False)

    def delta(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.lora_scaling

    def forward(self, x):
        out = self.base(x)
        if self.merged:
            return out
        update = (self.dropout(x) @ self.lora_A.t().to(x.dtype)) @ self.lora_B.t().to(x.dtype)
        return out + update * self.lora_scaling.to(x.dtype)

    @torch.no_grad()
    def merge(self):
        if not self.merged:  # merging twice would add the update twice
            self.base.weight += self.delta().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self):
        if self.merged:
            self.base.weight -= self.delta().to(self.base.weight.dtype)
            self.merged = False


def apply_lora(model: nn.Module, rank=8, alpha=16, dropout=0.0, targets=DEFAULT_TARGETS) -> nn.Module:
    """Wrap every nn.Linear whose name ends with a target; freeze everything but the adapters."""
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = 0
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child_name in targets:
                setattr(module, child_name, LoRALinear(child, rank, alpha, dropout))
                wrapped += 1
    if not wrapped:
        raise ValueError(f"no nn.Linear named any of {targets} in the model")
    return model


def lora_modules(model):
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def lora_state_dict(model) -> dict:
    """Only the adapter tensors (A, B and the α/r scaling), keyed by module path."""
    return {k: v for k, v in model.state_dict().items() if k.rsplit(".", 1)[-1] in ADAPTER_KEYS}


def load_lora(model, state_dict: dict):
    own = lora_state_dict(model)
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"adapter does not fit this model (rank/targets/size differ): missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}, shape differs {shapes[:3]}")
    model.load_state_dict(state_dict, strict=False)
    return model


def merge_lora(model, unwrap: bool = False):
    """Fold every adapter into its base weight; unwrap=True also removes the wrappers (a plain model to export)."""
    for m in lora_modules(model):
        m.merge()
    if unwrap:
        for module in list(model.modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, LoRALinear):
                    setattr(module, child_name, child.base)
    return model


def unmerge_lora(model):
    for m in lora_modules(model):
        m.unmerge()
    return model


def load_lora_file(model, path: str, merge: bool = True):
    """Attach the adapter saved at `path` (rank and targets read from it) and, by default, merge it and drop the
    wrappers, leaving a plain model as fast as the base."""
    from .weights import load_state_dict
    adapter = {k: v.float() for k, v in load_state_dict(path).items()}
    ranks = {v.shape[0] for k, v in adapter.items() if k.endswith("lora_A")}
    if len(ranks) != 1:
        raise ValueError(f"{path}: not a LoRA adapter file (found {len(ranks)} ranks among lora_A tensors)")
    targets = tuple(sorted({k.split(".")[-2] for k in adapter}))
    model = load_lora(apply_lora(model, rank=ranks.pop(), targets=targets), adapter)
    return merge_lora(model, unwrap=True) if merge else model
