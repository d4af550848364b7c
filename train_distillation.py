"""Logit distillation (Hinton et al. 2015, arXiv:1503.02531): a small student learns from a larger teacher's
next-token distributions as well as from the labels, on chats ({"conversations": [...]} lines, as upstream) or on
plain text ({"text": ...} lines: pretraining a student from a teacher; every token is then supervised).

    python train_distillation.py          # teacher out/full_sft_768.pth (768×16) → student out/full_sft_512.pth
                                          # (512×8) on dataset/sft_mini_512.jsonl → out/full_dist_512.pth

loss = α·CE(student, labels) + (1−α)·T²·KL(softmax(teacher/T) ‖ softmax(student/T)), both on supervised (assistant)
tokens only and normalized by their count; T² keeps the soft-target gradients on the same scale as the hard ones
when T changes. Student and teacher must share the tokenizer. The teacher runs in eval mode without gradients.
"""
import json

import torch
import torch.nn.functional as F

from dataset.lm_dataset import PretrainDataset, SFTDataset
from model.args import SIZE_FLAGS, build_config
from model.weights import load_native, weight_path
from trainer import engine
from trainer.data import open_dataset, require_data, tokenizer_for
from trainer.losses import CausalLMLoss

def distill_loss_sum(student_logits, teacher_logits, labels, alpha, temperature):
    """(summed loss, summed CE, summed KL) over positions whose next-token label is supervised.
    Logits are [B, L, V] and labels [B, L] aligned with the inputs (the engine's convention)."""
    mask = labels[:, 1:] != -100
    s = student_logits[:, :-1][mask].float()
    t = teacher_logits[:, :-1][mask].float()
    ce = F.cross_entropy(s, labels[:, 1:][mask], reduction="sum")
    kl = F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1), log_target=True,
                  reduction="sum")
    return alpha * ce + (1 - alpha) * temperature ** 2 * kl, ce, kl


class DistillLoss(CausalLMLoss):
    def __init__(self, teacher, alpha, temperature):
        self.teacher, self.alpha, self.temperature = teacher, alpha, temperature

    def __call__(self, model, batch):
        out = model(batch["input_ids"])
        with torch.no_grad():
            teacher_logits = self.teacher(batch["input_ids"]).logits
        loss, ce, kl = distill_loss_sum(out.logits, teacher_logits, batch["labels"], self.alpha, self.temperature)
        n = self.count(batch).clamp(min=1)
        return loss, {"aux_loss": out.aux_loss, "ce": (ce / n).detach(), "kl": (kl / n).detach()}


def is_plain_text(path) -> bool:
    """Whether the data file holds {"text"} lines (else chats); the first non-empty line decides."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    return "text" in json.loads(line)
                except json.JSONDecodeError:
                    return False  # the dataset's own validation reports the bad line with its number
    return False


def teacher_config(args, vocab_size):
    return build_config(args.teacher_preset, **{f: getattr(args, f"teacher_{f}") for f in SIZE_FLAGS},
                        vocab_size=vocab_size)


def main():
    parser = engine.build_parser(__doc__, epochs=6, batch_size=32, learning_rate=5e-6, accumulation_steps=1,
                                 max_seq_len=512, data_path="dataset/sft_mini_512.jsonl", from_weight="full_sft",
                                 save_weight="full_dist", log_interval=100, save_interval=1000)
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the hard-label CE (1: no distillation)")
    parser.add_argument("--temperature", type=float, default=1.5)
    parser.add_argument("--packing", type=int, choices=(0, 1), default=0, help="plain-text data: pack documents")
    t = parser.add_argument_group("teacher (same tokenizer; default MiniMind2: 768×16)")
    t.add_argument("--teacher_weight", default="full_sft", help="out/{NAME}_{teacher_hidden}[_moe].pth")
    t.add_argument("--teacher_preset", default=None)
    t.add_argument("--teacher_hidden_size", type=int, default=None)
    t.add_argument("--teacher_num_hidden_layers", type=int, default=None)
    t.add_argument("--teacher_num_attention_heads", type=int, default=None)
    t.add_argument("--teacher_num_key_value_heads", type=int, default=None)
    t.add_argument("--teacher_intermediate_size", type=int, default=None)
    t.add_argument("--teacher_use_moe", type=int, choices=(0, 1), default=None)
    args = parser.parse_args()
    if args.teacher_preset is None and args.teacher_hidden_size is None:
        args.teacher_preset = "minimind2"
    if not 0 <= args.alpha <= 1 or args.temperature <= 0:
        parser.error("--alpha must be in [0, 1] and --temperature > 0")
    require_data(args, "sft.jsonl")

    run = engine.setup(args, stage="distill")
    tokenizer = tokenizer_for(args)
    if is_plain_text(args.data_path):
        data = open_dataset(PretrainDataset, args, tokenizer, packing=bool(args.packing))
    else:
        data = open_dataset(SFTDataset, args, tokenizer)
    config = teacher_config(args, len(tokenizer))
    path = weight_path(args.out_dir, args.teacher_weight, config.hidden_size, config.use_moe)
    try:
        teacher = load_native(path, config).to(run.device).eval().requires_grad_(False)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"teacher: {e}")
    run.print(f"teacher {path}: {sum(p.numel() for p in teacher.parameters()) / 1e6:.2f}M params")
    model = run.build_model(vocab_size=len(tokenizer))
    engine.train(run, model, data, DistillLoss(teacher, args.alpha, args.temperature))
    engine.teardown(run)


if __name__ == "__main__":
    main()
