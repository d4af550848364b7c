"""Preference accuracy of a DPO policy on held-out pairs: does it raise chosen over rejected more than the
reference does?  That is the sign of DPO's implicit reward margin, the quantity the loss pushes up."""
import torch

from dataset.chat_tokens import chat_ids_and_labels
from evals.batching import right_pad
from trainer.losses import sequence_logps


@torch.inference_mode()
def preference_accuracy(policy, reference, tokenizer, pairs: list[dict], batch_size: int = 16) -> dict:
    """pairs: {"chosen": [messages], "rejected": [messages]}; the last assistant reply of each side is scored."""
    margins = []
    pad = tokenizer.pad_token_id or 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        encoded = [chat_ids_and_labels(tokenizer, p[side], only_last=True) for side in ("chosen", "rejected")
                   for p in chunk]
        ids = right_pad([e[0] for e in encoded], pad)
        labels = right_pad([e[1] for e in encoded], -100)  # padding is never a supervised label
        n = len(chunk)
        pi, ref = sequence_logps(policy(ids).logits, labels), sequence_logps(reference(ids).logits, labels)
        margins += ((pi[:n] - ref[:n]) - (pi[n:] - ref[n:])).tolist()
    return {"pref_acc": sum(m > 0 for m in margins) / len(margins), "mean_margin": sum(margins) / len(margins),
            "n": len(margins)}
