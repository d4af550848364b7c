"""The RL arithmetic against hand computations (trainer/policy_gradient.py)."""
import math

import pytest
import torch

from trainer.policy_gradient import (clipped_value_loss, gae, group_advantages, k3_kl, policy_loss, whiten)


def test_group_advantages_by_hand():
    # two groups of 2: rewards (1, 0) and (0.5, 0.5)
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.5, 0.5]), group_size=2, eps=0.0 + 1e-4)
    std = math.sqrt(0.5)  # unbiased std of (1, 0)
    assert adv[0].item() == pytest.approx(0.5 / (std + 1e-4))
    assert adv[1].item() == pytest.approx(-0.5 / (std + 1e-4))
    assert adv[2].item() == 0.0 and adv[3].item() == 0.0  # identical rewards: no signal
    unscaled = group_advantages(torch.tensor([1.0, 0.0, 3.0, 1.0]), 2, scale=False)
    assert unscaled.tolist() == [0.5, -0.5, 1.0, -1.0]
    with pytest.raises(ValueError):
        group_advantages(torch.zeros(5), 2)


def test_k3_kl_nonnegative_and_zero_at_reference():
    logps = torch.log(torch.rand(1000) * 0.99 + 0.01)
    ref = torch.log(torch.rand(1000) * 0.99 + 0.01)
    assert bool((k3_kl(logps, ref) >= 0).all())
    assert k3_kl(logps, logps).abs().max().item() == 0.0
    # by hand: q = log(0.5) − log(0.25) = log 2 → 2 − log 2 − 1
    assert k3_kl(torch.log(torch.tensor([0.25])), torch.log(torch.tensor([0.5]))).item() == \
        pytest.approx(1 - math.log(2))


def _two_group_batch():
    # 2 groups × 2 samples, 3 completion tokens each; the 2nd sample stops after 2 tokens
    old = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.4, 0.2, 1.0], [0.3, 0.3, 0.3], [0.6, 0.6, 0.6]]))
    new = torch.log(torch.tensor([[0.7, 0.5, 0.55], [0.4, 0.1, 1.0], [0.3, 0.45, 0.2], [0.6, 0.9, 0.6]]))
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 1, 1]])
    adv = torch.tensor([1.0, -1.0, 2.0, -2.0])
    return new.requires_grad_(), old, mask, adv


def test_grpo_per_token_loss_by_hand():
    new, old, mask, adv = _two_group_batch()
    loss, stats = policy_loss(new, old, adv, mask, "grpo", eps_low=0.2, eps_high=0.2)
    ratio = (new.detach() - old).exp()
    expected = torch.zeros(4, 3)
    clipped_count = 0
    for i in range(4):
        for t in range(3):
            if not mask[i, t]:
                continue
            r, a = ratio[i, t].item(), adv[i].item()
            # −min(r·A, clip(r, 0.8, 1.2)·A), written out
            c = min(max(r, 0.8), 1.2)
            expected[i, t] = -min(r * a, c * a)
            clipped_count += (r > 1.2 and a > 0) or (r < 0.8 and a < 0)
    assert torch.allclose(loss.detach(), expected, atol=1e-6)
    assert stats["clip_frac"].item() == pytest.approx(clipped_count / int(mask.sum()))
    # token (0,0): ratio 1.4 > 1.2 with A > 0 → clipped → no gradient; token (0,1): ratio 1 → gradient −A·ratio
    loss.sum().backward()
    assert new.grad[0, 0].item() == 0.0
    assert new.grad[0, 1].item() == pytest.approx(-1.0)
    assert new.grad[1, 2].item() == 0.0  # masked


def test_cispo_per_token_loss_by_hand():
    new, old, mask, adv = _two_group_batch()
    loss, _ = policy_loss(new, old, adv, mask, "cispo", eps_high=0.2)
    ratio = (new.detach() - old).exp()
    weight = ratio.clamp(max=1.2)
    expected = -weight * adv[:, None] * new.detach() * mask
    assert torch.allclose(loss.detach(), expected, atol=1e-6)
    loss.sum().backward()
    # unlike GRPO the clipped token (0,0) keeps a gradient: −sg(w)·A
    assert new.grad[0, 0].item() == pytest.approx(-1.2 * 1.0)
    assert torch.allclose(new.grad, -weight * adv[:, None] * mask)


def test_identical_rewards_give_zero_gradient():
    rewards = torch.tensor([0.7, 0.7, 0.7, 0.7])
    adv = group_advantages(rewards, 4)
    new, old, mask, _ = _two_group_batch()
    for kind in ("grpo", "cispo"):
        new.grad = None
        loss, _ = policy_loss(new, old, adv, mask, kind)
        loss.sum().backward()
        assert new.grad.abs().max().item() == 0.0


def test_kl_term_added_with_beta():
    new, old, mask, adv = _two_group_batch()
    ref = old + 0.1
    plain, _ = policy_loss(new, old, adv, mask, "grpo")
    with_kl, stats = policy_loss(new, old, adv, mask, "grpo", beta=0.5, ref_logps=ref)
    assert torch.allclose(with_kl - plain, 0.5 * k3_kl(new, ref) * mask, atol=1e-6)
    assert stats["kl"].item() > 0
    with pytest.raises(ValueError):
        policy_loss(new, old, adv, mask, "ppo2")


def test_gae_by_hand():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.7], [0.1, 0.2, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    gamma, lam = 0.9, 0.8
    adv, ret = gae(rewards, values, mask, gamma, lam)
    # row 0: δ2 = 1 − 0.7; δ1 = 0 + 0.9·0.7 − 0.6; δ0 = 0 + 0.9·0.6 − 0.5
    d2, d1, d0 = 1 - 0.7, 0.9 * 0.7 - 0.6, 0.9 * 0.6 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    assert adv[0].tolist() == pytest.approx([a0, a1, a2])
    # row 1 ends after 2 tokens: the value 9.0 of the padded position is never used
    e1 = 2.0 - 0.2
    e0 = 0 + 0.9 * 0.2 - 0.1 + gamma * lam * e1
    assert adv[1].tolist() == pytest.approx([e0, e1, 0.0])
    assert ret[0].tolist() == pytest.approx([a0 + 0.5, a1 + 0.6, a2 + 0.7])
    assert ret[1, 2].item() == 0.0


def test_clipped_value_loss_by_hand():
    old = torch.tensor([[1.0, 1.0]])
    new = torch.tensor([[1.5, 0.9]])
    ret = torch.tensor([[2.0, 0.0]])
    loss = clipped_value_loss(new, old, ret, torch.tensor([[1, 1]]), clip=0.2)
    # token 0: unclipped (1.5−2)² = 0.25, clipped (1.2−2)² = 0.64 → max 0.64; token 1: 0.81 vs (0.9−0)²=0.81
    assert loss.tolist()[0] == pytest.approx([0.5 * 0.64, 0.5 * 0.81])


def test_whiten():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    m = torch.tensor([[1, 1, 1, 0]])
    w = whiten(x, m)
    assert w[0, 3].item() == 0.0
    assert w[0, :3].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert (w[0, :3] ** 2).mean().item() == pytest.approx(1.0, rel=1e-4)
