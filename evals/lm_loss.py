"""Held-out loss, perplexity and bits-per-byte of a model on a {"text"} jsonl.

Bits-per-byte divides the summed negative log-likelihood (in bits) by the UTF-8 bytes of the text, so models with
different tokenizers compare; per-token loss does not (a bigger vocabulary makes tokens longer and rarer).
"""
import json
import math

import torch
import torch.nn.functional as F


@torch.inference_mode()
def heldout_loss(model, tokenizer, path: str, max_seq_len: int = 512, batch_size: int = 16, device="cpu",
                 max_lines: int | None = None) -> dict:
    texts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
            if max_lines and len(texts) >= max_lines:
                break
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id or 0
    nll, n_tokens, n_bytes = 0.0, 0, 0
    model.eval()
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        seqs = [([bos] + tokenizer.encode(t, add_special_tokens=False) + [eos])[:max_seq_len] for t in chunk]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        labels = torch.full_like(ids, -100)
        for row, s in enumerate(seqs):
            ids[row, :len(s)] = torch.tensor(s)
            labels[row, :len(s)] = torch.tensor(s)
        ids, labels = ids.to(device), labels.to(device)
        logits = model(ids).logits.float()
        nll += float(F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100,
                                     reduction="sum"))
        n_tokens += int((labels[:, 1:] != -100).sum())
        # bytes of exactly the text that was scored (truncation included), eos counted as one byte
        n_bytes += sum(len(tokenizer.decode(s[1:], skip_special_tokens=True).encode()) + 1 for s in seqs)
    loss = nll / max(n_tokens, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50)), "bpb": nll / math.log(2) / max(n_bytes, 1),
            "tokens": n_tokens, "bytes": n_bytes, "docs": len(texts)}
