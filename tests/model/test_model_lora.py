import pytest
import torch
from torch import nn
from torch.testing import assert_close

from model.model_lora import LoRALinear, apply_lora, load_lora, lora_state_dict, merge_lora, unmerge_lora
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM

VOCAB = 97


def tiny(seed=0):
    torch.manual_seed(seed)
    return MiniMindForCausalLM(MiniMindConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                              num_key_value_heads=2, vocab_size=VOCAB)).eval()


def trained_adapters(model):
    with torch.no_grad():  # B starts at zero (a no-op); give it values as training would
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model


def test_targets_every_projection_and_only_adapters_train():
    model = apply_lora(tiny(), rank=4, alpha=8)
    wrapped = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    assert len(wrapped) == 2 * 7  # q k v o gate up down, per layer
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)
    x = torch.randint(0, VOCAB, (2, 10))
    model.train()
    model(x, labels=x).loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if ".lora_" not in n)
    # B starts at zero, so the first gradient reaches B (A's gradient is B-weighted and still zero)
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_fresh_adapter_is_a_no_op():
    base = tiny()
    x = torch.randint(0, VOCAB, (2, 10))
    with torch.no_grad():
        ref = base(x).logits
        assert_close(apply_lora(base, rank=4)(x).logits, ref)


def test_merge_unmerge_and_merge_twice_is_a_no_op():
    x = torch.randint(0, VOCAB, (2, 12))
    base_logits = tiny()(x).logits.detach()
    model = trained_adapters(apply_lora(tiny(), rank=4, alpha=8))
    with torch.no_grad():
        unmerged = model(x).logits
        assert not torch.allclose(unmerged, base_logits, atol=1e-4)
        merge_lora(model)
        merged = model(x).logits
        merge_lora(model)
        assert_close(model(x).logits, merged, atol=1e-4, rtol=1e-4)
        assert_close(merged, unmerged, atol=1e-4, rtol=1e-4)
        unmerge_lora(model)
        assert_close(model(x).logits, unmerged, atol=1e-4, rtol=1e-4)
        unmerge_lora(model)
        assert_close(model(x).logits, unmerged, atol=1e-4, rtol=1e-4)


def test_adapter_save_load_and_unwrapped_merge():
    model = trained_adapters(apply_lora(tiny(), rank=4, alpha=8))
    sd = lora_state_dict(model)
    assert sd and all(".lora_" in k for k in sd)
    fresh = load_lora(apply_lora(tiny(), rank=4, alpha=8), sd)
    x = torch.randint(0, VOCAB, (1, 9))
    with torch.no_grad():
        assert_close(fresh(x).logits, model(x).logits)
        plain = merge_lora(fresh, unwrap=True)
        assert not any(isinstance(m, LoRALinear) for m in plain.modules())
        assert sorted(plain.state_dict()) == sorted(tiny().state_dict())
        assert_close(plain(x).logits, model(x).logits, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="does not fit"):
        load_lora(apply_lora(tiny(), rank=2), sd)


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_matches_peft_lora_layer(dropout):
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    base = nn.Linear(16, 24, bias=False)
    ours = LoRALinear(nn.Linear(16, 24, bias=False), rank=4, alpha=8, dropout=dropout)
    ours.base.load_state_dict(base.state_dict())
    wrapper = nn.Sequential()
    wrapper.add_module("proj", base)
    theirs = peft.get_peft_model(wrapper, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout,
                                                          target_modules=["proj"]))
    layer = theirs.base_model.model.proj
    with torch.no_grad():
        ours.lora_A.copy_(layer.lora_A["default"].weight)
        ours.lora_B.normal_(0, 0.1)
        layer.lora_B["default"].weight.copy_(ours.lora_B)
    x = torch.randn(3, 5, 16)
    ours.eval(), theirs.eval()
    assert_close(ours(x), layer(x), atol=1e-6, rtol=1e-6)
    # peft initializes A the same way: same distribution bound (kaiming-uniform, a=√5 → 1/√fan_in)
    bound = 1 / 16 ** 0.5
    assert ours.lora_A.abs().max() <= bound and layer.lora_A["default"].weight.abs().max() <= bound


def test_adapter_file_carries_rank_targets_and_scaling(tmp_path):
    """An adapter trained with α=4, r=2 on two targets loads through load_lora_file with nothing else known."""
    from model.model_lora import load_lora_file
    model = trained_adapters(apply_lora(tiny(), rank=2, alpha=4, targets=("q_proj", "down_proj")))
    x = torch.randint(0, VOCAB, (2, 9))
    expected = model(x).logits
    torch.save(lora_state_dict(model), tmp_path / "adapter.pth")
    loaded = load_lora_file(tiny(), str(tmp_path / "adapter.pth"))
    assert not any(isinstance(m, LoRALinear) for m in loaded.modules())  # merged and unwrapped
    assert_close(loaded(x).logits, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(tiny()(x).logits, expected, atol=1e-4)
