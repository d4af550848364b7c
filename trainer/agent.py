"""Agentic RL's scorer: a batch of tool-using prompts → multi-turn rollouts (trainer/agent_rollout.py) → one scalar
per rollout from `reward_fn(trace, gt)` (evals/agent_reward.py), for GRPOLoss (trainer/grpo.py) like any other
scorer."""
import torch


class AgentScorer:
    """The RolloutScorer interface (trainer/grpo.py) over multi-turn tool rollouts."""

    def __init__(self, rollout, tokenizer, reward_fn, num_generations: int, temperature: float):
        self.rollout, self.tokenizer, self.reward_fn = rollout, tokenizer, reward_fn
        self.num_generations, self.temperature = num_generations, temperature

    def sample(self, model, batch):
        rollout, traces = self.rollout(model, batch["messages"], num_generations=self.num_generations)
        gts = [gt for gt in batch["gt"] for _ in range(self.num_generations)]
        scores, parts = [], {}
        for trace, gt in zip(traces, gts):
            score, p = self.reward_fn(trace, gt)
            scores.append(score)
            for k, v in p.items():
                parts.setdefault(k, []).append(v)
        texts = [t.final for t in traces]
        return rollout, texts, torch.tensor(scores, dtype=torch.float32, device=rollout.completion_ids.device), parts
