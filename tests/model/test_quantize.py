import copy

import pytest
import torch
from torch import nn

from model.generate import generate
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.quantize import Int8Linear, quantize_int8


def rel_err(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize("shape", [(64, 97), (128, 64), (192, 64), (512, 1408)])
def test_int8_linear_is_close_to_the_float_product(shape):
    torch.manual_seed(0)
    lin = nn.Linear(*shape, bias=False)
    q = Int8Linear(lin)
    assert q.weight.dtype == torch.int8 and q.scale.shape == (shape[1],)
    x = torch.randn(3, 5, shape[0])  # any leading dims, any input dtype
    assert q(x).shape == (3, 5, shape[1]) and q(x).dtype == torch.bfloat16
    assert rel_err(q(x), lin(x)) < 2e-2


def test_int8_linear_refuses_widths_the_kernel_gets_wrong():
    with pytest.raises(ValueError, match="multiple of 16"):
        Int8Linear(nn.Linear(40, 64, bias=False))


def test_int8_linear_checks_the_private_kernel_once(monkeypatch):
    monkeypatch.setattr(torch, "_weight_int8pack_mm", lambda x, w, s: torch.zeros(x.shape[0], w.shape[0], dtype=x.dtype))
    with pytest.raises(RuntimeError, match="disagrees"):
        Int8Linear(nn.Linear(64, 32, bias=False))


def test_quantized_model_stays_close_and_generates():
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                               num_key_value_heads=2, vocab_size=97)).eval()
    q = quantize_int8(copy.deepcopy(model))
    assert not any(isinstance(m, nn.Linear) for m in q.modules())
    assert isinstance(q.lm_head, Int8Linear) and q.model.embed_tokens.weight.dtype == torch.bfloat16
    x = torch.randint(3, 97, (2, 20))
    with torch.no_grad():
        assert rel_err(q(x).logits, model(x).logits) < 5e-2
    out = generate(q, x, max_new_tokens=8, temperature=0, eos_token_id=-1)
    assert out.shape == (2, 28)


def test_quantizing_refuses_unmerged_lora():
    from model.model_lora import apply_lora
    model = MiniMindForCausalLM(MiniMindConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                               num_key_value_heads=2, vocab_size=97))
    with pytest.raises(ValueError, match="merge them first"):
        quantize_int8(apply_lora(model, rank=2))
