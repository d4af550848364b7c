"""PPO with a learned value (Schulman et al. 2017; the RLHF recipe of Ouyang et al. 2022) as an engine loss.

The trained module is an ActorCritic: the policy (a MiniMindForCausalLM, what the inference file holds) and a critic
— its own copy of the policy's trunk with a linear value head — so the value loss never pulls on the policy's
features. One optimizer and one resume checkpoint carry both; the reference (the starting policy) is frozen.

Per step: sample replies (trainer/rollout.py), score each (evals/rewards.py), and turn the score into per-token
rewards r_t = −kl_coef·(log π_old − log π_ref)_t plus the score on the reply's last token; GAE over the critic's
values gives advantages (whitened over the batch) and returns; then --ppo_epochs updates of the clipped policy loss
plus vf_coef × the clipped value loss.
"""
import copy

import torch
from torch import nn

from trainer.grpo import RolloutScorer, rollout_stats
from trainer.policy_gradient import clipped_surrogate, clipped_value_loss, gae, k3_kl, masked_mean, whiten
from trainer.rollout import completion_logps, token_logps


class ActorCritic(nn.Module):
    def __init__(self, actor):
        super().__init__()
        self.actor = actor
        self.critic = copy.deepcopy(actor.model)  # the trunk, without the LM head
        self.value_head = nn.Linear(actor.config.hidden_size, 1)
        nn.init.zeros_(self.value_head.weight)  # values start at 0: the first advantages are the rewards
        nn.init.zeros_(self.value_head.bias)

    @property
    def config(self):
        return self.actor.config

    def forward(self, input_ids, attention_mask, n_completion: int, temperature: float = 1.0):
        """(log-probs [N, C] of the last n_completion tokens under the actor, values [N, C] of the states before
        each of them, the actor's MoE aux loss)."""
        out = self.actor(input_ids, attention_mask=attention_mask, logits_to_keep=n_completion + 1)
        logps = token_logps(out.logits[:, :-1], input_ids[:, -n_completion:], temperature)
        h = self.critic(input_ids, attention_mask)[:, -n_completion - 1:-1]
        return logps, self.value_head(h).squeeze(-1).float(), out.aux_loss


class PPOLoss:
    def __init__(self, scorer: RolloutScorer, reference, kl_coef=0.02, vf_coef=0.5, epsilon=0.2,
                 cliprange_value=0.2, gamma=1.0, lam=0.95, ppo_epochs=1):
        self.scorer, self.reference, self.kl_coef, self.vf_coef = scorer, reference, kl_coef, vf_coef
        self.epsilon, self.cliprange_value, self.gamma, self.lam = epsilon, cliprange_value, gamma, lam
        self.inner_steps = ppo_epochs

    def count(self, batch):
        return batch["completion_mask"].sum()

    @torch.no_grad()
    def prepare(self, model, batch):
        s = self.scorer
        rollout, _texts, scores, parts = s.sample(model.actor, batch)
        ids, mask = rollout.sequences()
        n_c = rollout.completion_ids.shape[1]
        old, values, _ = model(ids, mask, n_c, s.temperature)
        ref = completion_logps(self.reference, ids, mask, n_c, s.temperature)
        cm = rollout.completion_mask.float()
        rewards = -self.kl_coef * (old - ref) * cm
        last = (cm.sum(1).long() - 1).clamp(min=0)  # the reply's last sampled token carries its score
        rewards[torch.arange(len(last)), last] += scores
        adv, returns = gae(rewards, values, cm, self.gamma, self.lam)
        adv = whiten(adv, cm)
        stats = rollout_stats(rollout, scores, parts, s.num_generations, old)
        stats.update(kl=float(masked_mean(k3_kl(old, ref), cm)), value_mean=float(masked_mean(values, cm)),
                     return_mean=float(masked_mean(returns, cm)))
        return {"input_ids": ids, "attention_mask": mask, "completion_mask": rollout.completion_mask,
                "old_logps": old, "old_values": values, "advantages": adv, "returns": returns, "stats": stats}

    def __call__(self, model, batch):
        n_c = batch["completion_mask"].shape[1]
        logps, values, aux = model(batch["input_ids"], batch["attention_mask"], n_c, self.scorer.temperature)
        cm = batch["completion_mask"].float()
        pg, clipped = clipped_surrogate(logps, batch["old_logps"], batch["advantages"], self.epsilon, self.epsilon)
        vf = clipped_value_loss(values, batch["old_values"], batch["returns"], cm, self.cliprange_value)
        stats = {"clip_frac": float(masked_mean(clipped.float(), cm)),
                 "value_loss": float(masked_mean(vf.detach(), cm)), "policy_loss": float(masked_mean(pg.detach(), cm))}
        return (pg * cm + self.vf_coef * vf).sum(), {**batch["stats"], **stats, "aux_loss": aux}
