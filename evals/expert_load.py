"""How evenly an MoE model's router spreads tokens over its experts: tokens per expert, per layer, on a text file."""
import json

import torch

from model.model_minimind import MoEGate


@torch.inference_mode()
def expert_load(model, tokenizer, path: str, max_lines: int = 64, max_seq_len: int = 256) -> dict:
    gates = [m for m in model.modules() if isinstance(m, MoEGate)]
    if not gates:
        raise ValueError("expert_load: the model has no MoE layers")
    counts = [torch.zeros(g.n_experts, dtype=torch.long) for g in gates]
    def counter(c):
        def hook(_module, _inputs, out):  # out = (topk_idx, topk_w, aux); returning None keeps it unchanged
            c.add_(torch.bincount(out[0].flatten().cpu(), minlength=len(c)))
        return hook

    hooks = [g.register_forward_hook(counter(c)) for g, c in zip(gates, counts)]
    try:
        model.eval()
        with open(path, encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line, _ in zip(f, range(max_lines))]
        for t in texts:
            ids = [tokenizer.bos_token_id] + tokenizer.encode(t, add_special_tokens=False)[:max_seq_len - 1]
            model(torch.tensor([ids]))
    finally:
        for h in hooks:
            h.remove()
    shares = [(c.float() / c.sum()).tolist() for c in counts]
    # max/mean load: 1.0 is perfectly even; E would mean one expert takes everything
    imbalance = [max(s) * len(s) for s in shares]
    return {"tokens_per_expert": [c.tolist() for c in counts], "share_per_expert": shares,
            "max_over_mean": imbalance, "max_over_mean_worst_layer": max(imbalance)}
