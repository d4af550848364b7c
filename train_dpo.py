"""Direct Preference Optimization (Rafailov et al. 2023, arXiv:2305.18290) on {"chosen": [...], "rejected": [...]}.

    python train_dpo.py                 # from out/full_sft_512.pth on dataset/dpo.jsonl → out/dpo_512.pth

loss = −log σ(β · [(log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r))]), log-probs SUMMED over the
reply tokens only; the reference is the frozen starting model. Chosen and rejected go through the model as one
stacked batch. `--rpo_alpha a` adds a · (mean NLL of the chosen reply), the RPO term (Pang et al. 2024,
arXiv:2404.19733; trl's rpo_alpha): DPO alone can lower the chosen reply's likelihood along with the rejected one's.
"""
import copy

import torch
import torch.nn.functional as F

from dataset.lm_dataset import DPODataset
from trainer import engine
from trainer.data import open_dataset, require_data, tokenizer_for
from trainer.losses import sequence_logps


def dpo_loss(pi_c, pi_r, ref_c, ref_r, beta):
    """Per-pair losses and the implicit rewards β·(log π − log π_ref)."""
    chosen_reward, rejected_reward = beta * (pi_c - ref_c), beta * (pi_r - ref_r)
    return -F.logsigmoid(chosen_reward - rejected_reward), chosen_reward, rejected_reward


class DPOLoss:
    def __init__(self, reference, beta, rpo_alpha: float = 0.0):
        self.reference, self.beta, self.rpo_alpha = reference, beta, rpo_alpha

    def count(self, batch):
        return torch.tensor(batch["chosen_input_ids"].shape[0])

    def __call__(self, model, batch):
        ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])
        labels = torch.cat([batch["chosen_labels"], batch["rejected_labels"]])
        n = batch["chosen_input_ids"].shape[0]
        logits = model(ids).logits
        policy = sequence_logps(logits, labels)
        with torch.no_grad():
            ref = sequence_logps(self.reference(ids).logits, labels)
        losses, rc, rr = dpo_loss(policy[:n], policy[n:], ref[:n], ref[n:], self.beta)
        if self.rpo_alpha:  # per pair, so the sum over pairs stays exact under gradient accumulation
            losses = losses - self.rpo_alpha * sequence_logps(logits[:n], labels[:n], average=True)
        return losses.sum(), {"rewards/chosen": rc.mean().detach(), "rewards/rejected": rr.mean().detach(),
                              "rewards/accuracies": (rc > rr).float().mean(), "rewards/margins": (rc - rr).mean()}


def main():
    parser = engine.build_parser(__doc__, epochs=1, batch_size=4, learning_rate=4e-8, accumulation_steps=1,
                                 max_seq_len=1024, data_path="dataset/dpo.jsonl", from_weight="full_sft",
                                 save_weight="dpo", log_interval=100, save_interval=1000)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--rpo_alpha", type=float, default=0.0, help="weight of the chosen replies' NLL (0: plain DPO)")
    args = parser.parse_args()
    require_data(args, "dpo.jsonl")

    run = engine.setup(args, stage="dpo")
    tokenizer = tokenizer_for(args)
    data = open_dataset(DPODataset, args, tokenizer)
    model = run.build_model(vocab_size=len(tokenizer))
    reference = copy.deepcopy(model).to(run.device).eval().requires_grad_(False)
    engine.train(run, model, data, DPOLoss(reference, args.beta, args.rpo_alpha))
    engine.teardown(run)


if __name__ == "__main__":
    main()
