"""The arithmetic of policy-gradient RL, as plain tensor functions (tested against hand computations).

Shapes: per-token tensors are [N, C] over completion tokens with a 0/1 `mask`; per-sequence ones are [N].

GRPO (Shao et al. 2024, arXiv:2402.03300): no critic; a prompt's G samples are compared with each other,
    A_i = (r_i − mean(r_group)) / (std(r_group) + ε),
and every token of sample i gets A_i in the clipped surrogate of PPO,
    ℓ_t = −min(ρ_t A, clip(ρ_t, 1 − ε_low, 1 + ε_high) A),  ρ_t = π(y_t) / π_old(y_t),
plus β · KL_t(π ‖ π_ref) with the k3 estimator (Schulman 2020): KL_t ≈ exp(q) − q − 1, q = log π_ref − log π,
which is ≥ 0 for every sample and 0 exactly where the two agree. Separate ε_low / ε_high is DAPO's clip-higher
(Yu et al. 2025, arXiv:2503.14476): a larger upper bound lets unlikely good tokens gain probability faster.

CISPO (MiniMax-M1, arXiv:2506.13585): the clipped ratio becomes a detached weight on a REINFORCE term,
    ℓ_t = −sg(min(ρ_t, 1 + ε_high)) · A · log π(y_t),
so no token's gradient is dropped by the clip (PPO/GRPO zero the gradient of clipped tokens, often the rare
"reflective" ones); only the weight's size is bounded.

PPO (Schulman et al. 2017) with a learned value: per-token rewards r_t = −kl_coef·(log π_old − log π_ref)_t, plus the
sequence's score on its last token; GAE (Schulman et al. 2016) gives advantages, and the value loss is clipped like
the policy's.

Losses are returned per token; the trainer sums them over completion tokens of the whole (global) batch and divides
by the number of such tokens ("token-level" normalization, DAPO): long and short replies weigh per token alike.
"""
import torch


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4, scale: bool = True):
    """(r − group mean) / (group std + eps) per sample; groups are consecutive runs of `group_size` rows.
    A group whose rewards are all equal gets advantage 0 (it says nothing about which sample was better).
    scale=False keeps only the mean baseline (Dr. GRPO, Liu et al. 2025: dividing by the std up-weights groups
    that are almost all right or all wrong)."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    r = rewards.float().view(-1, group_size)
    adv = r - r.mean(1, keepdim=True)
    if scale:
        adv = adv / (r.std(1, keepdim=True, unbiased=True if group_size > 1 else False).nan_to_num(0.0) + eps)
    return adv.view(-1)


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(π ‖ π_ref) from the sampled tokens: exp(q) − q − 1 with q = log π_ref − log π."""
    q = ref_logps - logps
    return torch.exp(q) - q - 1


def clipped_surrogate(logps, old_logps, advantages, eps_low: float, eps_high: float):
    """PPO/GRPO per-token loss −min(ρA, clip(ρ)A), and whether each token's ratio was clipped (for logging)."""
    ratio = torch.exp(logps - old_logps)
    adv = advantages if advantages.dim() == logps.dim() else advantages[:, None]
    unclipped, clipped = ratio * adv, ratio.clamp(1 - eps_low, 1 + eps_high) * adv
    was_clipped = ((ratio < 1 - eps_low) & (adv < 0)) | ((ratio > 1 + eps_high) & (adv > 0))
    return -torch.min(unclipped, clipped), was_clipped


def cispo_loss(logps, old_logps, advantages, eps_high: float):
    """CISPO per-token loss −sg(min(ρ, 1 + ε_high)) · A · log π, and where the weight was capped."""
    ratio = torch.exp(logps - old_logps).detach()
    adv = advantages if advantages.dim() == logps.dim() else advantages[:, None]
    return -ratio.clamp(max=1 + eps_high) * adv * logps, ratio > 1 + eps_high


def policy_loss(logps, old_logps, advantages, mask, loss_type="grpo", eps_low=0.2, eps_high=0.2, beta=0.0,
                ref_logps=None):
    """Per-token loss (masked) of GRPO or CISPO with the optional β·k3 KL term, and the statistics to log."""
    if loss_type == "grpo":
        loss, clipped = clipped_surrogate(logps, old_logps, advantages, eps_low, eps_high)
    elif loss_type == "cispo":
        loss, clipped = cispo_loss(logps, old_logps, advantages, eps_high)
    else:
        raise ValueError(f"loss_type must be grpo or cispo, not {loss_type!r}")
    mask = mask.float()
    stats = {"clip_frac": masked_mean(clipped.float(), mask)}
    if ref_logps is not None:
        kl = k3_kl(logps, ref_logps)
        stats["kl"] = masked_mean(kl.detach(), mask)
        if beta:
            loss = loss + beta * kl
    return loss * mask, stats


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95):
    """Generalized advantage estimation over each row's valid tokens (mask 1, a prefix of the row).
    rewards, values: [N, C]; the value after a row's last token is 0 (the episode ends there).
    Returns (advantages, returns = advantages + values), both 0 where mask is 0."""
    mask = mask.float()
    values = values * mask
    adv = torch.zeros_like(values)
    running = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        # the next state exists only where the row goes on (mask 1 at t+1): past the end, its value is 0
        next_valid = mask[:, t + 1] if t + 1 < values.shape[1] else torch.zeros_like(running)
        next_value = values[:, t + 1] if t + 1 < values.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value * next_valid - values[:, t]
        running = (delta + gamma * lam * running * next_valid) * mask[:, t]
        adv[:, t] = running
    return adv, (adv + values) * mask


def clipped_value_loss(values, old_values, returns, mask, clip: float = 0.2):
    """½·max((V − R)², (clip(V, V_old ± clip) − R)²) per token (PPO's value clipping), masked."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2) * mask.float()


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8):
    """(x − mean) / std over the masked entries (PPO's advantage whitening)."""
    mask = mask.float()
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    return (out if shift_mean else out + mean) * mask


def masked_mean(x, mask):
    """Mean of x over the entries where mask is 1 (0 for an empty mask)."""
    return (x * mask).sum() / mask.sum().clamp(min=1)
