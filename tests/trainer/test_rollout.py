"""Rollouts (trainer/rollout.py): masks, EOS, and log-probs that equal the training forward's."""
import pytest
import torch

from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from trainer.grpo import GRPOLoss, RolloutScorer
from trainer.rollout import LocalRollout, completion_logps, left_pad_ids

EOS, PAD = 2, 0


def tiny(vocab=12, seed=0):
    torch.manual_seed(seed)
    cfg = MiniMindConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=64, vocab_size=vocab, max_position_embeddings=128)
    return MiniMindForCausalLM(cfg).eval()


PROMPTS = [[1, 5, 6, 7, 8, 9], [1, 4], [1, 3, 9, 10]]  # different lengths: left padding in play


def test_rollout_shapes_masks_and_eos():
    model = tiny()
    torch.manual_seed(1)
    r = LocalRollout(max_new_tokens=10, temperature=1.0, eos_token_id=EOS, pad_token_id=PAD)(
        model, PROMPTS, num_generations=4)
    assert r.completion_ids.shape[0] == 12 and r.prompt_ids.shape == (12, 6)
    assert r.prompt_mask.sum(1).tolist() == [6] * 4 + [2] * 4 + [4] * 4
    assert bool(r.finished.any()) and not bool(r.finished.all())  # both kinds of rows are tested below
    for ids, mask, done in zip(r.completion_ids, r.completion_mask, r.finished):
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any()  # a prefix
        if done:
            assert ids[n - 1] == EOS and (ids[:n - 1] != EOS).all()  # the EOS is the last sampled token
            assert (ids[n:] == PAD).all()
        else:
            assert n == r.completion_ids.shape[1]
    assert (r.logps[r.completion_mask == 0] == 0).all()


def test_rollout_logps_equal_training_forward_fp32():
    """The importance ratio of the first update is 1: the sampler's log-probs are the training forward's."""
    model = tiny()
    for temperature in (1.0, 0.7):
        torch.manual_seed(2)
        r = LocalRollout(max_new_tokens=10, temperature=temperature, eos_token_id=EOS)(
            model, PROMPTS, num_generations=4)
        assert bool(r.finished.any()) and not bool(r.finished.all())
        train = completion_logps(model, r, temperature=temperature)
        m = r.completion_mask.bool()
        assert (train[m] - r.logps[m]).abs().max().item() < 1e-5


def test_left_pad_refuses_empty_prompt():
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        left_pad_ids([[1, 2], []], PAD)
    with pytest.raises(ValueError):
        LocalRollout(temperature=-1)


class _Tok:
    eos_token_id, pad_token_id = EOS, PAD

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


def test_first_inner_step_ratio_is_exactly_one():
    model = tiny()
    ref = tiny()
    batch_ids, batch_mask = left_pad_ids(PROMPTS, PAD)
    batch = {"prompt_ids": batch_ids, "prompt_mask": batch_mask, "prompt": ["a", "b", "c"],
             "reference": ["x", "y", "z"]}

    def reward(prompts, texts, refs, finished, lengths, reference_replies):  # longer replies score more
        return [float(n) for n in lengths], {"len": lengths}

    scorer = RolloutScorer(LocalRollout(10, eos_token_id=EOS), _Tok(), reward, 4, 1.0)
    loss = GRPOLoss(scorer, ref, "grpo", beta=0.1)
    torch.manual_seed(3)
    prepared = loss.prepare(model, batch)
    assert prepared["stats"]["sampler_logp_gap"] < 1e-5
    n_c = prepared["loss_mask"].shape[1]
    logps = completion_logps(model, prepared["input_ids"], prepared["attention_mask"], n_c)
    m = prepared["loss_mask"].bool()
    assert torch.equal(logps[m], prepared["old_logps"][m])  # exactly: the ratio is 1 at the first inner step
    total, stats = loss(model, prepared)
    assert stats["clip_frac"] == 0.0 and torch.isfinite(total)


def test_shared_prefill_equals_one_prompt_per_sample():
    """A group's prompt is prefilled once and its cache copied: the same tokens and log-probs as G separate rows."""
    model = tiny()
    greedy = LocalRollout(max_new_tokens=8, temperature=0, eos_token_id=EOS)
    shared = greedy(model, PROMPTS, num_generations=3)
    separate = greedy(model, [p for p in PROMPTS for _ in range(3)], num_generations=1)
    assert torch.equal(shared.completion_ids, separate.completion_ids)
    assert torch.equal(shared.completion_mask, separate.completion_mask)
    assert (shared.logps - separate.logps).abs().max().item() < 1e-5
