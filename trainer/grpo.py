"""GRPO / CISPO as an engine loss: prepare() samples and scores rollouts, __call__ is the per-token policy loss.

The engine calls prepare(model, batch) once per micro-batch of prompts (no gradient), then __call__ `inner_steps`
times (μ, GRPO's num_iterations) on the prepared batch, each followed by an optimizer update. So the old log-probs,
the reference log-probs and the advantages are fixed for the μ updates, while the policy's log-probs move.

The old log-probs are recomputed by a training-style forward (same autocast as the update) instead of taken from the
sampler: then the importance ratio of the first inner update is exactly 1 whatever the precision, and the sampler's
own log-probs are kept only to check the two agree (`sampler_logp_gap`, logged; 0 up to rounding in fp32).
"""
import torch

from trainer.policy_gradient import group_advantages, masked_mean, policy_loss
from trainer.rollout import completion_logps


class RolloutScorer:
    """Shared by GRPO, PPO and agentic RL: turn a prompt batch into rollouts, decoded texts and rewards."""

    def __init__(self, rollout, tokenizer, reward_fn, num_generations: int, temperature: float):
        self.rollout, self.tokenizer, self.reward_fn = rollout, tokenizer, reward_fn
        self.num_generations, self.temperature = num_generations, temperature

    def sample(self, model, batch):
        rollout = self.rollout(model, batch["prompt_ids"], batch["prompt_mask"], num_generations=self.num_generations)
        texts = [self.tokenizer.decode(ids[m.bool()].tolist(), skip_special_tokens=True)
                 for ids, m in zip(rollout.completion_ids.cpu(), rollout.loss_mask.cpu())]
        g = self.num_generations
        prompts = [p for p in batch["prompt"] for _ in range(g)]
        references = [r for r in batch["reference"] for _ in range(g)]
        replies = [r for r in batch.get("reference_reply", [""] * len(batch["reference"])) for _ in range(g)]
        lengths = rollout.loss_mask.sum(1).tolist()
        scores, parts = self.reward_fn(prompts, texts, references, finished=rollout.finished.tolist(),
                                       lengths=lengths, reference_replies=replies)
        return rollout, texts, torch.as_tensor(scores, dtype=torch.float32, device=rollout.completion_ids.device), \
            parts


def rollout_stats(rollout, rewards, parts, group_size, old_logps):
    """Scalars every RL recipe logs about what it sampled; old_logps: the trainer's log-probs of the samples."""
    lengths = rollout.loss_mask.sum(1).float()  # tokens the policy wrote
    cm = rollout.loss_mask.float()
    stats = {"reward": rewards.mean(), "reward_std": rewards.std() if rewards.numel() > 1 else rewards.new_zeros(()),
             "completion_len": lengths.mean(), "finished": rollout.finished.float().mean(),
             # share of groups whose samples all scored the same: they carry no GRPO signal
             "groups_uniform": (rewards.view(-1, group_size).std(1) < 1e-6).float().mean() if group_size > 1
             else rewards.new_ones(()),
             # the sampler's log-probs against the trainer's (0 up to rounding when they are the same forward)
             "sampler_logp_gap": masked_mean((old_logps - rollout.logps).abs(), cm),
             "entropy_proxy": masked_mean(-old_logps, cm)}  # mean −log p of the sampled tokens
    for name, values in parts.items():
        stats[f"reward/{name}"] = torch.as_tensor(values, dtype=torch.float32).mean()
    return {k: float(v) for k, v in stats.items()}


class GRPOLoss:
    def __init__(self, scorer: RolloutScorer, reference, loss_type="grpo", beta=0.0, epsilon=0.2,
                 epsilon_high=None, num_iterations=1, scale_rewards=True):
        self.scorer, self.reference, self.loss_type, self.beta = scorer, reference, loss_type, beta
        self.eps_low, self.eps_high = epsilon, epsilon if epsilon_high is None else epsilon_high
        self.inner_steps, self.scale_rewards = num_iterations, scale_rewards

    def count(self, batch):
        return batch["loss_mask"].sum()

    @torch.no_grad()
    def prepare(self, model, batch):
        s = self.scorer
        rollout, _texts, rewards, parts = s.sample(model, batch)
        adv = group_advantages(rewards, s.num_generations, scale=self.scale_rewards)
        ids, mask = rollout.sequences()
        n_c = rollout.completion_ids.shape[1]
        # under the engine's autocast, like the update: same forward, same numbers
        old = completion_logps(model, ids, mask, n_c, s.temperature)
        ref = completion_logps(self.reference, ids, mask, n_c, s.temperature) if self.reference is not None else None
        stats = rollout_stats(rollout, rewards, parts, s.num_generations, old)
        stats.update(adv_mean=float(adv.mean()), adv_abs=float(adv.abs().mean()))
        return {"input_ids": ids, "attention_mask": mask, "loss_mask": rollout.loss_mask,
                "old_logps": old, "ref_logps": ref, "advantages": adv, "stats": stats}

    def __call__(self, model, batch):
        n_c = batch["loss_mask"].shape[1]
        logps = completion_logps(model, batch["input_ids"], batch["attention_mask"], n_c, self.scorer.temperature)
        per_token, stats = policy_loss(logps, batch["old_logps"], batch["advantages"], batch["loss_mask"],
                                       self.loss_type, self.eps_low, self.eps_high, self.beta, batch["ref_logps"])
        return per_token.sum(), {**batch["stats"], **{k: float(v) for k, v in stats.items()}}
