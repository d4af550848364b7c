"""Rollouts: sample completions for a batch of prompts and keep what a policy-gradient update needs.

    rollout = LocalRollout(max_new_tokens=96, temperature=1.0)(model, prompt_ids, num_generations=8)
    rollout.completion_ids, rollout.completion_mask, rollout.logps     # [B·G, C] each

Every prompt is repeated `num_generations` times in a row, so rows g·G … g·G+G−1 are one prompt's group. Prompts
are left-padded (every row's last prompt token in the same column, so one step of the static-KV decoder serves the
batch); completions are right-padded with the pad id after each row's EOS. `completion_mask` is 1 for every sampled
token up to and including the EOS: the EOS is an action the policy took, and its log-prob is trained like the rest.

`logps` are log-probabilities of the sampled tokens under the sampling distribution, log softmax(logits / T), in
float32 — the same quantity `token_logps` computes from a training forward, so a trainer can compare the two (the
importance ratio of an update on the data it just sampled is exactly 1). Two backends produce a Rollout:
LocalRollout (our model, in process) and OpenAIRollout (any OpenAI-compatible server: scripts/serve_openai_api.py,
vLLM, SGLang; see trainer/rollout_server.py).
"""
from dataclasses import dataclass

import torch

from model.generate import stream_generate


@dataclass
class Rollout:
    prompt_ids: torch.Tensor  # [N, P] left-padded
    prompt_mask: torch.Tensor  # [N, P] 1 = real token
    completion_ids: torch.Tensor  # [N, C] right-padded
    completion_mask: torch.Tensor  # [N, C] 1 = sampled token (EOS included)
    logps: torch.Tensor  # [N, C] float32 log-prob of each sampled token at sampling time, 0 where masked
    finished: torch.Tensor  # [N] bool: the row ended with EOS (else it hit max_new_tokens)
    # [N, C] 1 = a token the policy wrote, which the loss trains; None: every completion token. Multi-turn agent
    # rollouts interleave tool results (read, never written, by the policy) with the policy's own tokens.
    action_mask: torch.Tensor | None = None

    @property
    def loss_mask(self) -> torch.Tensor:
        return self.completion_mask if self.action_mask is None else self.action_mask

    def sequences(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask) of prompt + completion, for a training forward."""
        return (torch.cat([self.prompt_ids, self.completion_ids], 1),
                torch.cat([self.prompt_mask, self.completion_mask], 1))


def left_pad_ids(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(prompts):
        if not seq:
            raise ValueError(f"prompt {row} is empty")
        ids[row, width - len(seq):] = torch.as_tensor(seq)
        mask[row, width - len(seq):] = 1
    return ids, mask


def token_logps(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / T)[token] per position, in float32: logits [..., V], tokens [...]."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)


def completion_logps(model, rollout_or_ids, attention_mask=None, n_completion=None, temperature=1.0,
                     return_hidden=False):
    """Log-probs of the completion tokens under `model` from one full forward (the training side).
    Accepts a Rollout, or (input_ids, attention_mask, n_completion). Returns [N, C] (and the hidden states at the
    positions that predict each completion token, [N, C, d], with return_hidden — a value head reads them)."""
    if isinstance(rollout_or_ids, Rollout):
        ids, attention_mask = rollout_or_ids.sequences()
        n_completion = rollout_or_ids.completion_ids.shape[1]
    else:
        ids = rollout_or_ids
    # the logits at position t predict token t+1: the C completion tokens are predicted by positions [-C-1, -1)
    out = model(ids, attention_mask=attention_mask, logits_to_keep=n_completion + 1)
    logits = out.logits[:, :-1]
    return token_logps(logits, ids[:, -n_completion:], temperature)


class LocalRollout:
    """Batched sampling with our static-KV decoder (model/generate.py's sampling rule), recording log-probs.
    temperature 0 decodes greedily (evaluation, benchmarks); RL samples at T > 0."""

    def __init__(self, max_new_tokens: int = 128, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 eos_token_id: int = 2, pad_token_id: int = 0):
        if temperature < 0:
            raise ValueError("temperature must be >= 0 (0: greedy, for evaluation and benchmarks)")
        self.max_new_tokens, self.temperature, self.top_p, self.top_k = max_new_tokens, temperature, top_p, top_k
        self.eos_token_id, self.pad_token_id = eos_token_id, pad_token_id

    @torch.no_grad()
    def __call__(self, model, prompt_ids, prompt_mask=None, num_generations: int = 1) -> Rollout:
        """prompt_ids: [B, P] left-padded tensor (with prompt_mask) or a list of id lists. Each prompt is read once
        and continued num_generations times (model/generate.py's stream_generate)."""
        if isinstance(prompt_ids, list):
            prompt_ids, prompt_mask = left_pad_ids(prompt_ids, self.pad_token_id)
        device = next(model.parameters()).device
        prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
        was_training = model.training
        logps = []
        try:
            tokens = list(stream_generate(
                model, prompt_ids, prompt_mask, self.max_new_tokens, self.temperature, self.top_p, self.top_k,
                eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id, num_generations=num_generations,
                # greedy (T 0) records the model's own log-probs
                on_step=lambda logits, token: logps.append(token_logps(logits, token, self.temperature or 1.0))))
        finally:
            model.train(was_training)
        tokens = torch.stack(tokens, 1)
        eos = tokens == self.eos_token_id
        live = (eos.long().cumsum(1) - eos.long()) == 0  # up to and including each row's first EOS
        return Rollout(prompt_ids.repeat_interleave(num_generations, 0),
                       prompt_mask.repeat_interleave(num_generations, 0), tokens, live.long(),
                       torch.stack(logps, 1).masked_fill(~live, 0.0), eos.any(1))
