"""Held-out loss, perplexity and bits-per-byte of a model on a {"text"} jsonl.

Bits-per-byte divides the summed negative log-likelihood (in bits) by the UTF-8 bytes of the text, so models with
different tokenizers compare; per-token loss does not (a bigger vocabulary makes tokens longer and rarer).
"""
import itertools
import math

import torch
import torch.nn.functional as F

from dataset.jsonl_files import iter_texts
from evals.batching import right_pad


@torch.inference_mode()
def heldout_loss(model, tokenizer, path: str, max_seq_len: int = 512, batch_size: int = 16, device="cpu",
                 max_lines: int | None = None) -> dict:
    texts = list(itertools.islice(iter_texts(path), max_lines or None))
    if not texts:
        raise ValueError(f"{path}: no documents (every line is blank)")
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id or 0
    nll, n_tokens, n_bytes = 0.0, 0, 0
    model.eval()
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        full = [[bos] + tokenizer.encode(t, add_special_tokens=False) + [eos] for t in chunk]
        seqs = [s[:max_seq_len] for s in full]
        ids, labels = right_pad(seqs, pad).to(device), right_pad(seqs, -100).to(device)
        logits = model(ids).logits.float()
        nll += float(F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100,
                                     reduction="sum"))
        n_tokens += int((labels[:, 1:] != -100).sum())
        # Bytes of exactly the text that was scored, eos counted as one byte. A whole document is its raw UTF-8
        # (decoding would drop special-token strings the text itself contains); a truncated one is the decoded
        # kept part, with no eos.
        n_bytes += sum(len(t.encode()) + 1 if len(f) <= max_seq_len else len(tokenizer.decode(s[1:]).encode())
                       for t, f, s in zip(chunk, full, seqs))
    loss = nll / max(n_tokens, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50)), "bpb": nll / math.log(2) / max(n_bytes, 1),
            "tokens": n_tokens, "bytes": n_bytes, "docs": len(texts)}
