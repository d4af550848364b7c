"""Padding token sequences into one batch tensor.

left_pad for batched inference: every row's last token sits in the last column, so one `logits[:, -1]` (or one
generation step) serves the whole batch. right_pad for scoring whole sequences (positions line up with labels)."""
import torch


def left_pad(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    width = max(map(len, encoded))
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(encoded):
        ids[row, width - len(seq):] = torch.tensor(seq)
        mask[row, width - len(seq):] = 1
    return ids, mask


def right_pad(seqs: list, value: int) -> torch.Tensor:
    """[len(seqs), longest] long tensor, each row a sequence followed by `value`."""
    out = torch.full((len(seqs), max(map(len, seqs))), value, dtype=torch.long)
    for row, seq in enumerate(seqs):
        out[row, :len(seq)] = torch.as_tensor(seq)
    return out
