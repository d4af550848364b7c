"""The flags every RL recipe shares (train_grpo.py, train_ppo.py): sampling, rewards, the rollout backend."""
from trainer.grpo import RolloutScorer
from trainer.rollout import LocalRollout


def add_rl_args(parser, rewards: bool = True, backends: bool = True):
    """Sampling flags; with `rewards` the reward flags of evals/rewards.py, with `backends` the rollout backend."""
    a = parser.add_argument
    a("--num_generations", type=int, default=8, help="samples per prompt (GRPO's group size G)")
    a("--max_gen_len", type=int, default=256, help="most tokens a sampled reply may have")
    a("--temperature", type=float, default=1.0, help="sampling temperature; the trained policy is softmax(z / T)")
    a("--top_p", type=float, default=1.0, help="nucleus sampling for rollouts (1: the full distribution)")
    a("--beta", type=float, default=0.0, help="weight of the KL(π ‖ π_ref) penalty (k3 estimator); the KL is "
                                              "logged whatever the weight")
    if rewards:
        a("--reward_funcs", default="answer,format", help="comma-separated rewards from evals/rewards.py: answer, "
                                                          "fact, choice, format, steps, length, repetition")
        a("--reward_weights", default=None, help="comma-separated weights, one per reward (default: 1 each)")
        a("--reward_model_path", default=None,
          help="a local Hugging Face sequence-classification folder whose score (logit 0) is added to the reward")
        a("--reward_model_weight", type=float, default=1.0)
        a("--trust_remote_code", action="store_true", help="allow code shipped in --reward_model_path to run")
    if backends:
        a("--rollout_backend", choices=("local", "openai"), default="local",
          help="local: our static-KV sampler in this process; openai: an OpenAI-compatible server (--rollout_url)")
        a("--rollout_url", default=None, help="base URL of the server, e.g. http://127.0.0.1:8998/v1")
        a("--rollout_api_key", default=None, help="the server's API key (also sent with weight reloads)")
        a("--rollout_weights_dir", default=None,
          help="a folder the server reads weights from (its --weights_dir): the policy is written there and the "
               "server told to load it before every rollout batch")


def add_grpo_args(parser):
    """The group-relative policy loss's flags (train_grpo.py, train_agent.py)."""
    a = parser.add_argument
    a("--epsilon", type=float, default=0.2, help="lower clip of the importance ratio (1 − ε)")
    a("--epsilon_high", type=float, default=None,
      help="upper clip (1 + ε_high); default: --epsilon (GRPO), DAPO's clip-higher uses 0.28, CISPO's weight cap is "
           "typically large (e.g. 4)")
    a("--num_iterations", type=int, default=1, help="μ: updates per batch of rollouts")
    a("--scale_rewards", type=int, choices=(0, 1), default=1,
      help="divide advantages by the group's std (1, GRPO) or not (0, Dr. GRPO)")


def build_rollout(args, tokenizer):
    if args.num_generations < 1:
        raise SystemExit("--num_generations must be >= 1")
    if args.max_gen_len < 1:
        raise SystemExit("--max_gen_len must be >= 1")
    if not args.temperature > 0:
        raise SystemExit("--temperature must be > 0: rollouts sample from softmax(logits / T)")
    if not 0 < args.top_p <= 1:
        raise SystemExit("--top_p must be in (0, 1]")
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if getattr(args, "rollout_backend", "local") == "local":
        return LocalRollout(args.max_gen_len, args.temperature, args.top_p, eos_token_id=eos, pad_token_id=pad)
    from trainer.rollout_server import OpenAIRollout
    if not args.rollout_url:
        raise SystemExit("--rollout_backend openai needs --rollout_url (e.g. http://127.0.0.1:8998/v1)")
    if args.rollout_weights_dir and not args.rollout_api_key:
        raise SystemExit("--rollout_weights_dir needs --rollout_api_key: the server reloads weights only with its key")
    return OpenAIRollout(args.rollout_url, tokenizer, args.max_gen_len, args.temperature, args.top_p,
                         api_key=args.rollout_api_key, weights_dir=args.rollout_weights_dir)


def build_scorer(args, tokenizer, rewards) -> RolloutScorer:
    """Rollouts from --rollout_backend, decoded and scored by `rewards` (evals/rewards.py's rewards_from_args)."""
    return RolloutScorer(build_rollout(args, tokenizer), tokenizer, rewards, args.num_generations, args.temperature)


def require_positive(args, *names):
    """SystemExit naming the first flag (of `names`, attribute spelling) that is not > 0."""
    for name in names:
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise SystemExit(f"--{name} must be > 0, got {value}")
