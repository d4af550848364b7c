"""Losses shared by stages and evaluations.

A training loss is an object with two methods (the engine's contract):
    count(batch) -> int tensor       how many units (supervised tokens, pairs) the batch contributes
    __call__(model, batch) -> (loss_sum, metrics)   the loss SUMMED over those units, and extra scalars to log
and optionally
    trim(batch) -> batch             the same batch without columns no loss term depends on (run on the host)
"""
import torch

IGNORE_INDEX = -100


def supervised_width(labels) -> int:
    """Columns up to and including the last supervised target in `labels` (one row or a batch); 0 when none."""
    cols = (labels != IGNORE_INDEX).reshape(-1, labels.shape[-1]).any(0).nonzero()
    return int(cols[-1]) + 1 if len(cols) else 0


class CausalLMLoss:
    """Next-token cross-entropy over supervised positions (labels != -100), summed; pretrain and SFT."""

    def count(self, batch):
        return (batch["labels"][:, 1:] != IGNORE_INDEX).sum()

    def trim(self, batch, multiple: int = 16):
        """Cut the columns after the batch's last supervised target (rounded up to `multiple`, so a compiled model
        or a GPU kernel sees few distinct lengths). Under causal attention no earlier position sees them and no
        target lies in them, so the token loss and its gradients are unchanged (an MoE's load-balancing term just
        stops counting padding): rows padded to --max_seq_len cost only as much as the batch's longest reply."""
        width = batch["labels"].shape[1]
        used = supervised_width(batch["labels"])
        keep = min(width, -(-used // multiple) * multiple) if used else width
        if keep == width:
            return batch
        return {k: v[:, :keep] if torch.is_tensor(v) and v.dim() >= 2 and v.shape[1] == width else v
                for k, v in batch.items()}

    def __call__(self, model, batch):
        # through the model's forward (so DDP/DeepSpeed hooks run), without materializing the logits
        out = model(batch["input_ids"], labels=batch["labels"], loss_reduction="sum", return_logits=False)
        return out.loss, {"aux_loss": out.aux_loss}


def sequence_logps(logits, labels, average: bool = False):
    """Sum (or mean) of log p(token) over supervised positions (labels != -100), per row; labels aligned with
    inputs. DPO's policy and reference scores, and the preference evaluation's."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = labels != IGNORE_INDEX
    token_logps = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0)[..., None]).squeeze(-1)
    total = (token_logps * mask).sum(-1)
    return total / mask.sum(-1).clamp(min=1) if average else total
