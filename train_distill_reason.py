"""Reasoning distillation: SFT on replies written as a trace plus an answer,

    <think>\n…steps…\n</think>\n<answer>\n…\n</answer>

as produced by a stronger reasoning model (upstream: DeepSeek-R1 traces; here: the embedded world's arithmetic).

    python train_distill_reason.py        # from out/dpo_512.pth on dataset/r1_mix_1024.jsonl → out/reason_512.pth

--tag_weight multiplies the loss on the tag tokens (upstream used 10): they are a handful of tokens in a long reply,
and a model that forgets to close </think> or open <answer> produces output nobody can parse. The loss stays a
weighted mean over supervised tokens, so the weight shifts attention without changing the loss scale.
"""
import torch
import torch.nn.functional as F

from dataset.lm_dataset import SFTDataset
from trainer import engine
from trainer.data import open_dataset, require_data, tokenizer_for
from trainer.losses import CausalLMLoss

TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def tag_token_ids(tokenizer) -> list[int]:
    """Ids of the reasoning tags; with our tokenizers each tag is one special token, others may split it."""
    ids = sorted({i for tag in TAGS for i in tokenizer.encode(tag, add_special_tokens=False)})
    if not ids:
        raise SystemExit(f"tokenizer encodes none of {TAGS}")
    return ids


class TagWeightedLoss(CausalLMLoss):
    """CausalLMLoss with weight `tag_weight` on supervised targets that are tag tokens; counts are weights."""

    def __init__(self, tag_ids, tag_weight):
        self.tag_ids, self.tag_weight = torch.tensor(tag_ids), tag_weight

    def weights(self, labels):
        targets = labels[:, 1:]
        w = (targets != -100).float()
        return torch.where(torch.isin(targets, self.tag_ids.to(targets.device)), w * self.tag_weight, w)

    def count(self, batch):
        return self.weights(batch["labels"]).sum()

    def __call__(self, model, batch):
        out = model(batch["input_ids"])
        ce = F.cross_entropy(out.logits[:, :-1].flatten(0, 1).float(), batch["labels"][:, 1:].flatten(),
                             ignore_index=-100, reduction="none")
        return (ce * self.weights(batch["labels"]).flatten()).sum(), {"aux_loss": out.aux_loss}


def main():
    parser = engine.build_parser(__doc__, epochs=1, batch_size=8, learning_rate=1e-6, accumulation_steps=1,
                                 max_seq_len=1024, data_path="dataset/r1_mix_1024.jsonl", from_weight="dpo",
                                 save_weight="reason", log_interval=100, save_interval=1000)
    parser.add_argument("--tag_weight", type=float, default=10.0, help="loss weight of <think>/<answer> tag tokens")
    args = parser.parse_args()
    require_data(args, "reason.jsonl")

    run = engine.setup(args, stage="reason")
    tokenizer = tokenizer_for(args)
    data = open_dataset(SFTDataset, args, tokenizer)
    model = run.build_model(vocab_size=len(tokenizer))
    engine.train(run, model, data, TagWeightedLoss(tag_token_ids(tokenizer), args.tag_weight))
    engine.teardown(run)


if __name__ == "__main__":
    main()
