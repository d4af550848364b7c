"""Agentic RL: GRPO / CISPO over multi-turn tool rollouts (generate → call tools → read results → continue).

    python train_agent.py                                   # from out/tool_sft_512.pth on dataset/agent_rl.jsonl
    python train_agent.py --loss_type cispo --epsilon_high 4.0 --max_turns 4

Each row (upstream's agent_rl jsonl) is a chat whose system message carries the tools, and `gt`, the values the
final answer must state. For every prompt --num_generations rollouts run up to --max_turns turns against the tools
(the embedded world's calculator, weekday, days_after and lookup_person; --world_dir names the world whose people the lookup
reads), and each is scored: 1 if the final answer states the gt values, plus --format_weight if it finished with
every call well-formed (evals/agent_reward.py). The loss is GRPO's (train_grpo.py) on the tokens the policy wrote; tool
results stay in context but out of the loss.
"""
import copy
import functools

from dataset.rl_dataset import AgentRLDataset, collate_agent
from dataset.tool_messages import require_tool_tokens
from evals.agent_reward import agent_reward
from toolcall.world import read_world_people, world_toolbox
from trainer import engine
from trainer.agent import AgentScorer
from trainer.agent_rollout import AgentRollout
from trainer.data import open_dataset, require_data, tokenizer_for
from trainer.grpo import GRPOLoss
from trainer.rl_args import add_grpo_args, add_rl_args, build_rollout, require_positive


def load_world_people(world_dir: str) -> list[dict]:
    try:
        return read_world_people(world_dir)
    except FileNotFoundError:
        raise SystemExit(f"error: no {world_dir}/world.json: generate the world (python -m dataset.world --out_dir "
                         f"{world_dir}) or pass --world_dir") from None
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None


def main():
    parser = engine.build_parser(__doc__, epochs=1, batch_size=2, learning_rate=3e-7, accumulation_steps=1,
                                 max_seq_len=1024, data_path="dataset/agent_rl.jsonl", from_weight="tool_sft",
                                 save_weight="agent", log_interval=1, save_interval=10, weight_decay=0.0)
    add_rl_args(parser, rewards=False, backends=False)
    parser.add_argument("--loss_type", choices=("grpo", "cispo"), default="cispo")
    add_grpo_args(parser)
    parser.add_argument("--max_turns", type=int, default=3, help="most model turns per rollout (tool calls + answer)")
    parser.add_argument("--max_total_len", type=int, default=2048, help="most tokens of prompt + all turns")
    parser.add_argument("--format_weight", type=float, default=0.2,
                        help="reward for a finished rollout whose calls all parsed and fit their schemas")
    parser.add_argument("--world_dir", default="out/world", help="the embedded world whose people lookup_person reads")
    parser.add_argument("--tool_timeout", type=float, default=2.0, help="seconds a tool call may run")
    args = parser.parse_args()
    require_positive(args, "num_iterations", "epsilon", "epsilon_high", "max_turns", "max_total_len", "tool_timeout")
    if args.format_weight < 0:
        raise SystemExit(f"--format_weight must be >= 0, got {args.format_weight}")
    require_data(args, "agent_rl.jsonl")
    people = load_world_people(args.world_dir)

    run = engine.setup(args, stage="agent")
    tokenizer = tokenizer_for(args)
    try:
        require_tool_tokens(tokenizer, "agentic RL")
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    data = open_dataset(AgentRLDataset, args, tokenizer)
    model = run.build_model(vocab_size=len(tokenizer))
    reference = copy.deepcopy(model).to(run.device).eval().requires_grad_(False)  # KL logged even at β 0
    rollout = AgentRollout(build_rollout(args, tokenizer), tokenizer, world_toolbox(people, args.tool_timeout),
                           args.max_turns, args.max_total_len)
    reward = functools.partial(agent_reward, format_weight=args.format_weight)
    scorer = AgentScorer(rollout, tokenizer, reward, args.num_generations, args.temperature)
    loss = GRPOLoss(scorer, reference, args.loss_type, args.beta, args.epsilon, args.epsilon_high,
                    args.num_iterations, bool(args.scale_rewards))
    engine.train(run, model, data, loss, collate_fn=collate_agent)
    engine.teardown(run)


if __name__ == "__main__":
    main()
