"""Worker for the GRPO engine tests, launched as `torchrun --nproc_per_node N tests/trainer/grpo_check.py --result R
[engine flags]` (or plain python for one process).

Trains a tiny model with GRPOLoss through the shared engine on fixed rollouts: each prompt's G completions are a
function of the prompt alone, so 2 ranks × B prompts and 1 process × 2B prompts see the same global batch and must
make the same update. Plain SGD (the update is the gradient, so its scale is checked too). Rank 0 writes the final
flattened parameters to R.params.pt and the metrics summary to R.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main():
    import torch

    from dataset.rl_dataset import RLAIFDataset, collate_prompts
    from model.tokenizer import load_tokenizer
    from trainer import engine
    from trainer.grpo import GRPOLoss, RolloutScorer
    from trainer.rollout import Rollout, left_pad_ids

    parser = engine.build_parser("grpo check", device="cpu", dtype="float32")
    parser.add_argument("--result", required=True)
    parser.add_argument("--num_generations", type=int, default=4)
    args = parser.parse_args()
    engine.build_optimizer = lambda model, lr, weight_decay, device: torch.optim.SGD(model.parameters(), lr=lr)

    class FixedRollout:
        """G completions per prompt, a function of the prompt only (lengths 1-3 plus EOS)."""

        def __call__(self, model, prompt_ids, prompt_mask, num_generations):
            rows, completions = [], []
            for ids, mask in zip(prompt_ids, prompt_mask):
                p = ids[mask.bool()].tolist()
                for g in range(num_generations):
                    rows.append(p)
                    completions.append([(p[-1] * 7 + g * 13 + k * 5) % 200 + 10 for k in range(1 + (g + p[-2]) % 3)]
                                       + [2])
            pids, pmask = left_pad_ids(rows, 0)
            width = max(map(len, completions))
            cids = torch.zeros(len(rows), width, dtype=torch.long)
            cmask = torch.zeros_like(cids)
            for i, c in enumerate(completions):
                cids[i, :len(c)] = torch.tensor(c)
                cmask[i, :len(c)] = 1
            return Rollout(pids, pmask, cids, cmask, torch.zeros(cids.shape), torch.ones(len(rows), dtype=torch.bool))

    class Tok:
        def decode(self, ids, skip_special_tokens=True):
            return " ".join(map(str, ids))

    def reward(prompts, texts, refs, finished, lengths, reference_replies):
        scores = [float(len(t) % 5) for t in texts]
        return scores, {"r": scores}

    run = engine.setup(args, stage="grpo")
    tok = load_tokenizer(args.tokenizer_dir)
    data = RLAIFDataset(args.data_path, tok, args.max_seq_len)
    model = run.build_model(vocab_size=len(tok))
    reference = run.build_model(vocab_size=len(tok)).eval().requires_grad_(False)
    scorer = RolloutScorer(FixedRollout(), Tok(), reward, args.num_generations, 1.0)
    loss = GRPOLoss(scorer, reference, "grpo", beta=0.05, num_iterations=2)
    summary = engine.train(run, model, data, loss, collate_fn=collate_prompts)
    if run.is_main:
        flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
        torch.save(flat, args.result + ".params.pt")
        with open(args.result, "w") as f:
            json.dump({k: v for k, v in summary.items() if isinstance(v, (int, float, str, type(None)))}, f)
    engine.teardown(run)


if __name__ == "__main__":
    from worker_exit import run_and_exit  # the folder of this script is on sys.path
    run_and_exit(main)
