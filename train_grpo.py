"""Group Relative Policy Optimization (GRPO; Shao et al. 2024, arXiv:2402.03300) and CISPO on verifiable rewards.

    python train_grpo.py                  # from out/reason_512.pth on dataset/rlaif.jsonl → out/grpo_512.pth
    python train_grpo.py --loss_type cispo --epsilon_high 4.0

Each step samples --num_generations replies per prompt with the current policy, scores them (evals/rewards.py:
--reward_funcs, --reward_weights, optional --reward_model_path), and compares each reply with its group:
advantage (r − mean) / (std + ε). The update is the clipped surrogate of PPO per completion token (--epsilon,
--epsilon_high) or CISPO's clipped, detached importance weight on log π (--loss_type cispo), plus β·KL to the frozen
starting model (k3 estimator, --beta), normalised by completion tokens. --num_iterations μ > 1 makes μ updates on
each batch of rollouts. The math: trainer/policy_gradient.py; rollouts: trainer/rollout.py (--rollout_backend).
"""
import copy
import functools

from dataset.rl_dataset import RLAIFDataset, collate_prompts
from evals.rewards import rewards_from_args
from trainer import engine
from trainer.data import open_dataset, require_data, tokenizer_for
from trainer.grpo import GRPOLoss
from trainer.rl_args import add_grpo_args, add_rl_args, build_scorer, require_positive


def main():
    parser = engine.build_parser(__doc__, epochs=1, batch_size=2, learning_rate=3e-7, accumulation_steps=1,
                                 max_seq_len=512, data_path="dataset/rlaif.jsonl", from_weight="reason",
                                 save_weight="grpo", log_interval=1, save_interval=10, weight_decay=0.0)
    add_rl_args(parser)
    parser.add_argument("--loss_type", choices=("grpo", "cispo"), default="grpo")
    add_grpo_args(parser)
    args = parser.parse_args()
    require_positive(args, "num_iterations", "epsilon", "epsilon_high")
    require_data(args, "rlaif.jsonl")

    run = engine.setup(args, stage="grpo")
    tokenizer = tokenizer_for(args)
    data = open_dataset(RLAIFDataset, args, tokenizer)
    rewards = rewards_from_args(args, tokenizer, run.device)
    model = run.build_model(vocab_size=len(tokenizer))
    reference = copy.deepcopy(model).to(run.device).eval().requires_grad_(False)  # KL logged even at β 0
    scorer = build_scorer(args, tokenizer, rewards)
    loss = GRPOLoss(scorer, reference, args.loss_type, args.beta, args.epsilon, args.epsilon_high,
                    args.num_iterations, bool(args.scale_rewards))
    collate = functools.partial(collate_prompts, pad_id=tokenizer.pad_token_id or 0)
    engine.train(run, model, data, loss, collate_fn=collate)
    engine.teardown(run)


if __name__ == "__main__":
    main()
