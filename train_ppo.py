"""Proximal Policy Optimization with a learned value (critic) on rewards, the classic RLHF recipe.

    python train_ppo.py                   # from out/reason_512.pth on dataset/rlaif.jsonl → out/ppo_512.pth

Each step samples --num_generations replies per prompt, scores them (evals/rewards.py: --reward_funcs,
--reward_weights, optional --reward_model_path), spreads the score over the reply's tokens with GAE (--gamma,
--lam) against the critic's values, and makes --ppo_epochs updates of the clipped policy loss (--epsilon) plus
--vf_coef × the clipped value loss (--cliprange_value). The KL to the frozen starting model is a per-token penalty
in the reward (--kl_coef). The critic (a copy of the policy's trunk + a value head) is trained, checkpointed and
resumed with the policy; out/ppo_*.pth holds the policy alone. The math: trainer/policy_gradient.py, trainer/ppo.py.
"""
import copy
import functools

from dataset.rl_dataset import RLAIFDataset, collate_prompts
from evals.rewards import rewards_from_args
from trainer import engine
from trainer.data import open_dataset, require_data, tokenizer_for
from trainer.ppo import ActorCritic, PPOLoss
from trainer.rl_args import add_rl_args, build_scorer, require_positive


def main():
    parser = engine.build_parser(__doc__, epochs=1, batch_size=2, learning_rate=3e-7, accumulation_steps=1,
                                 max_seq_len=512, data_path="dataset/rlaif.jsonl", from_weight="reason",
                                 save_weight="ppo", log_interval=1, save_interval=10, weight_decay=0.0)
    add_rl_args(parser)
    parser.add_argument("--epsilon", type=float, default=0.2, help="policy ratio clip")
    parser.add_argument("--cliprange_value", type=float, default=0.2, help="value clip around the old values")
    parser.add_argument("--vf_coef", type=float, default=0.5, help="weight of the value loss")
    parser.add_argument("--kl_coef", type=float, default=0.02, help="per-token KL penalty in the reward")
    parser.add_argument("--gamma", type=float, default=1.0, help="discount over reply tokens")
    parser.add_argument("--lam", type=float, default=0.95, help="GAE λ")
    parser.add_argument("--ppo_epochs", type=int, default=1, help="updates per batch of rollouts")
    args = parser.parse_args()
    require_positive(args, "ppo_epochs", "epsilon", "cliprange_value", "lam", "gamma")
    require_data(args, "rlaif.jsonl")

    run = engine.setup(args, stage="ppo")
    tokenizer = tokenizer_for(args)
    data = open_dataset(RLAIFDataset, args, tokenizer)
    rewards = rewards_from_args(args, tokenizer, run.device)
    policy = run.build_model(vocab_size=len(tokenizer))
    reference = copy.deepcopy(policy).to(run.device).eval().requires_grad_(False)
    model = ActorCritic(policy)
    scorer = build_scorer(args, tokenizer, rewards)
    loss = PPOLoss(scorer, reference, args.kl_coef, args.vf_coef, args.epsilon, args.cliprange_value, args.gamma,
                   args.lam, args.ppo_epochs)
    collate = functools.partial(collate_prompts, pad_id=tokenizer.pad_token_id or 0)
    engine.train(run, model, data, loss, collate_fn=collate, weights_fn=lambda m: m.actor.state_dict())
    engine.teardown(run)


if __name__ == "__main__":
    main()
