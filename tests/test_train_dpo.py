import copy
import math

import torch
from torch.testing import assert_close

from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from train_dpo import DPOLoss, dpo_loss
from trainer.losses import sequence_logps

VOCAB = 50


def tiny(seed=0):
    torch.manual_seed(seed)
    return MiniMindForCausalLM(MiniMindConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                              num_key_value_heads=2, vocab_size=VOCAB))


def pair_batch(n=3, t=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    batch = {}
    for side in ("chosen", "rejected"):
        ids = torch.randint(3, VOCAB, (n, t), generator=g)
        labels = torch.full_like(ids, -100)
        labels[:, 6:] = ids[:, 6:]  # the reply: last 6 tokens; the prompt is not scored
        batch[f"{side}_input_ids"], batch[f"{side}_labels"] = ids, labels
    return batch


def test_sequence_logps_sums_reply_tokens_only():
    logits = torch.randn(1, 5, VOCAB)
    labels = torch.tensor([[-100, -100, 7, 9, 2]])
    lp = logits.log_softmax(-1)
    expected = lp[0, 1, 7] + lp[0, 2, 9] + lp[0, 3, 2]
    assert_close(sequence_logps(logits, labels), expected.reshape(1))


def test_hand_computed_loss():
    # (trl 1.x computes this inside DPOTrainer._compute_loss, which needs a whole trainer; the hand computation
    # of the same sigmoid loss is the reference here)
    pi_c, pi_r = torch.tensor([-10.0, -4.0]), torch.tensor([-12.0, -3.0])
    ref_c, ref_r = torch.tensor([-11.0, -4.0]), torch.tensor([-11.0, -4.0])
    losses, rc, rr = dpo_loss(pi_c, pi_r, ref_c, ref_r, beta=0.1)
    # pair 0: margin = 0.1·((−10+11) − (−12+11)) = 0.2; pair 1: 0.1·(0 − 1) = −0.1
    assert_close(losses, torch.tensor([math.log1p(math.exp(-0.2)), math.log1p(math.exp(0.1))]))
    assert_close(rc, torch.tensor([0.1, 0.0]))
    assert_close(rr, torch.tensor([-0.1, 0.1]))


def test_loss_at_step_zero_is_ln2():
    model = tiny()
    loss_fn = DPOLoss(copy.deepcopy(model).eval(), beta=0.1)
    batch = pair_batch()
    total, metrics = loss_fn(model.eval(), batch)
    assert_close(total / loss_fn.count(batch), torch.tensor(math.log(2)))
    assert metrics["rewards/margins"] == 0


def test_gradient_of_pairs_is_batch_size_invariant():
    """The engine divides the summed loss by the pairs of the whole accumulated batch: 1 pair × 4 micro-batches
    gives the gradient of 4 pairs × 1."""
    batch = pair_batch(n=4)
    grads = []
    for split in (1, 4):
        model = tiny()
        ref = tiny().eval()
        with torch.no_grad():  # a reference that differs from the policy, so the loss is not flat
            for p in ref.parameters():
                p.add_(0.01 * torch.randn_like(p))
        loss_fn = DPOLoss(ref, beta=0.1)
        n = 4 // split
        for i in range(split):
            micro = {k: v[i * n:(i + 1) * n] for k, v in batch.items()}
            (loss_fn(model, micro)[0] / 4).backward()
        grads.append(model.model.layers[0].self_attn.q_proj.weight.grad.clone())
    assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_rpo_term_adds_the_chosen_replies_mean_nll():
    model, batch = tiny().eval(), pair_batch()
    plain, _ = DPOLoss(copy.deepcopy(model), beta=0.1)(model, batch)
    rpo, _ = DPOLoss(copy.deepcopy(model), beta=0.1, rpo_alpha=0.5)(model, batch)
    logits = model(batch["chosen_input_ids"]).logits[:, :-1]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["chosen_labels"][:, 1:],
                                            reduction="none")  # -100 positions give 0
    per_pair = nll.sum(1) / (batch["chosen_labels"][:, 1:] != -100).sum(1)
    assert_close(rpo - plain, 0.5 * per_pair.sum())
