import pytest
import torch
from torch.testing import assert_close
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from model.generate import generate, sample_from, sample_next, stream_generate
from model.model_minimind import (KVCache, MiniMindConfig, MiniMindForCausalLM, config_from_preset, count_params,
                                  lm_loss)
from model.model_minimind_hf import MiniMindForCausalLMHF, to_hf

VOCAB = 97


def tiny_config(**kw):
    base = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB,
                max_position_embeddings=256)
    return MiniMindConfig(**{**base, **kw})


def tiny_model(seed=0, **kw):
    torch.manual_seed(seed)
    return MiniMindForCausalLM(tiny_config(**kw)).eval()


def llama_twin(model):
    c = model.config
    rope = {"rope_type": "default", "rope_theta": c.rope_theta}
    if c.inference_rope_scaling:
        rope = {"rope_type": "yarn", "rope_theta": c.rope_theta, **c.yarn}
    lc = LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                     num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                     num_key_value_heads=c.num_key_value_heads, max_position_embeddings=c.max_position_embeddings,
                     rms_norm_eps=c.rms_norm_eps, rope_parameters=rope, tie_word_embeddings=True)
    hf = LlamaForCausalLM(lc).eval()
    hf.load_state_dict(model.state_dict(), strict=True)
    return hf


def test_default_config_is_minimind2_small():
    c = MiniMindConfig()
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads) == (512, 8, 8, 2)
    assert c.intermediate_size == 1408 and c.vocab_size == 6400 and c.rope_theta == 1e6
    assert count_params(MiniMindForCausalLM(c)) == 25_829_888


def test_presets():
    assert config_from_preset("minimind2").hidden_size == 768
    moe = config_from_preset("minimind2-moe")
    assert moe.use_moe and moe.hidden_size == 640 and moe.n_routed_experts == 4 and moe.n_shared_experts == 1
    with pytest.raises(ValueError, match="unknown preset"):
        config_from_preset("nope")


def _count_on_meta(preset, **kw):
    with torch.device("meta"):
        model = MiniMindForCausalLM(config_from_preset(preset, **kw))
    return count_params(model), count_params(model, active_only=True)


def test_minimind3_presets_match_upstream_shapes():
    c = config_from_preset("minimind-3")
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim) == \
        (768, 8, 8, 4, 96)
    assert c.intermediate_size == 2432 and c.qk_norm and c.rms_norm_eps == 1e-6 and c.rope_theta == 1e6
    assert c.max_position_embeddings == 32768 and c.tie_word_embeddings and c.vocab_size == 6400
    assert c.yarn["factor"] == 16.0 and c.yarn["attention_factor"] == 1.0
    assert _count_on_meta("minimind-3") == (63_912_192, 63_912_192)  # ≈63.9M
    moe = config_from_preset("minimind-3-moe")
    assert (moe.n_routed_experts, moe.num_experts_per_tok, moe.n_shared_experts, moe.aux_loss_alpha) == \
        (4, 1, 0, 5e-4)
    total, active = _count_on_meta("minimind-3-moe")
    assert total == 198_416_640 and active == 63_936_768  # ≈198M total, ≈64M per token
    # size flags keep minimind-3's rules: π·d feed-forward, head_dim = d / heads
    small = config_from_preset("minimind-3", hidden_size=256, num_attention_heads=4)
    assert small.intermediate_size == 832 and small.head_dim == 64


def test_minimind3_state_dict_names():
    # upstream minimind-3's names, spelled out: q_norm / k_norm per attention, a Qwen3-MoE router and experts
    c = config_from_preset("minimind-3-moe", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, vocab_size=VOCAB)
    names = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for i in range(2):
        p = f"model.layers.{i}."
        names += [p + f"self_attn.{n}_proj.weight" for n in "qkvo"] + [p + "self_attn.q_norm.weight",
                                                                       p + "self_attn.k_norm.weight"]
        names += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight", p + "mlp.gate.weight"]
        names += [p + f"mlp.experts.{e}.{n}_proj.weight" for e in range(4) for n in ("gate", "up", "down")]
    sd = MiniMindForCausalLM(c).state_dict()
    assert sorted(sd) == sorted(names)
    assert sd["model.layers.0.self_attn.q_norm.weight"].shape == (16,)


@pytest.mark.parametrize("use_moe", [False, True])
def test_minimind3_logits_equal_transformers_qwen3(use_moe):
    """A checkpoint written by transformers' own Qwen3 / Qwen3-MoE (random weights; upstream minimind-3 uses the same
    names and math) loads through the preset with strict=True and gives the same logits."""
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM
    c = config_from_preset("minimind-3-moe" if use_moe else "minimind-3", hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB)
    shared = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=c.intermediate_size, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
                  rope_parameters={"rope_type": "default", "rope_theta": 1e6}, tie_word_embeddings=True)
    torch.manual_seed(3)
    if use_moe:
        hf = Qwen3MoeForCausalLM(Qwen3MoeConfig(**shared, moe_intermediate_size=c.intermediate_size, num_experts=4,
                                                num_experts_per_tok=1, norm_topk_prob=True)).eval()
    else:
        hf = Qwen3ForCausalLM(Qwen3Config(**shared)).eval()
    with torch.no_grad():  # norms away from 1, so q_norm / k_norm really count
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    state = hf.state_dict()
    if use_moe:  # transformers fuses the experts in memory; checkpoints (and upstream) keep one tensor per expert
        for i in range(2):
            p = f"model.layers.{i}.mlp.experts."
            gate_up, down = state.pop(p + "gate_up_proj"), state.pop(p + "down_proj")
            for e in range(4):
                state[f"{p}{e}.gate_proj.weight"], state[f"{p}{e}.up_proj.weight"] = gate_up[e].chunk(2)
                state[f"{p}{e}.down_proj.weight"] = down[e]
    model = MiniMindForCausalLM(c).eval()
    model.load_state_dict(state, strict=True)
    x = torch.randint(0, VOCAB, (2, 40))
    with torch.no_grad():
        assert_close(model(x).logits, hf(x).logits, atol=1e-5, rtol=1e-5)


def test_qk_norm_is_applied():
    model = tiny_model(qk_norm=True)
    x = torch.randint(0, VOCAB, (1, 12))
    with torch.no_grad():
        before = model(x).logits
        model.model.layers[0].self_attn.k_norm.weight.mul_(3.0)
        assert not torch.allclose(before, model(x).logits, atol=1e-4)


def test_top1_router_weight_is_one_when_normalised():
    c = tiny_config(use_moe=True, num_experts_per_tok=1, n_shared_experts=0)
    gate = MiniMindForCausalLM(c).model.layers[0].mlp.gate
    _, w, _ = gate(torch.randn(2, 5, 64))
    assert_close(w, torch.ones_like(w))
    gate.norm_topk = False  # MiniMind2's top-1 behaviour: the router probability itself
    _, w, _ = gate(torch.randn(2, 5, 64))
    assert (w < 1).all()


@pytest.mark.parametrize("yarn", [False, True])
def test_logits_equal_transformers_llama(yarn):
    model = tiny_model(inference_rope_scaling=yarn, yarn={"factor": 4.0, "original_max_position_embeddings": 32})
    hf = llama_twin(model)
    x = torch.randint(0, VOCAB, (3, 50))
    with torch.no_grad():
        assert_close(model(x).logits, hf(x).logits, atol=1e-5, rtol=1e-5)


def test_yarn_changes_logits_past_original_length():
    x = torch.randint(0, VOCAB, (1, 60))
    plain = tiny_model()
    scaled = tiny_model(inference_rope_scaling=True, yarn={"factor": 4.0, "original_max_position_embeddings": 32})
    with torch.no_grad():
        assert not torch.allclose(plain(x).logits, scaled(x).logits, atol=1e-4)


def test_minimind2_state_dict_names_load_strict():
    # The names an upstream MiniMind2 checkpoint carries, spelled out independently of our module tree.
    c = tiny_config(num_hidden_layers=2)
    names = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for i in range(2):
        p = f"model.layers.{i}."
        names += [p + f"self_attn.{n}_proj.weight" for n in "qkvo"]
        names += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
        names += [p + f"mlp.{n}_proj.weight" for n in ("gate", "up", "down")]
    model = MiniMindForCausalLM(c)
    assert sorted(model.state_dict()) == sorted(names)
    torch.manual_seed(1)
    upstream = {k: torch.randn_like(v) for k, v in model.state_dict().items()}
    upstream["lm_head.weight"] = upstream["model.embed_tokens.weight"]
    model.load_state_dict(upstream, strict=True)
    assert torch.equal(model.lm_head.weight, upstream["model.embed_tokens.weight"])


def test_moe_state_dict_names():
    c = tiny_config(use_moe=True, n_routed_experts=4, n_shared_experts=1)
    sd = MiniMindForCausalLM(c).state_dict()
    assert sd["model.layers.0.mlp.gate.weight"].shape == (4, 64)
    for e in range(4):
        for n in ("gate", "up", "down"):
            assert f"model.layers.1.mlp.experts.{e}.{n}_proj.weight" in sd
    assert "model.layers.0.mlp.shared_experts.0.down_proj.weight" in sd


@pytest.mark.parametrize("use_moe", [False, True])
@pytest.mark.parametrize("cache_kind", ["static", "dynamic"])
def test_incremental_decoding_equals_full_forward(use_moe, cache_kind):
    model = tiny_model(use_moe=use_moe)
    x = torch.randint(0, VOCAB, (2, 24))
    with torch.no_grad():
        full = model(x).logits
        cache = KVCache(model.config, 24) if cache_kind == "static" else DynamicCache()
        steps = [model(x[:, :10], past_key_values=cache, use_cache=True).logits]
        for i in range(10, 24):  # then one token at a time
            steps.append(model(x[:, i:i + 1], past_key_values=cache, use_cache=True).logits)
    assert_close(torch.cat(steps, 1), full, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_rows_equal_unpadded(side):
    model = tiny_model()
    short, long_ = torch.randint(3, VOCAB, (1, 9)), torch.randint(3, VOCAB, (1, 16))
    pad = torch.zeros(1, 7, dtype=torch.long)
    padded = torch.cat([pad, short], 1) if side == "left" else torch.cat([short, pad], 1)
    mask = torch.ones(2, 16, dtype=torch.long)
    real = slice(7, 16) if side == "left" else slice(0, 9)
    mask[0] = 0
    mask[0, real] = 1
    with torch.no_grad():
        batch = model(torch.cat([padded, long_]), attention_mask=mask).logits
        alone = model(short).logits
        assert_close(batch[0, real], alone[0], atol=1e-5, rtol=1e-5)
        assert_close(batch[1], model(long_).logits[0], atol=1e-5, rtol=1e-5)
        assert torch.isfinite(batch).all()


def test_manual_attention_equals_sdpa():
    fast, slow = tiny_model(), tiny_model(flash_attn=False)
    slow.load_state_dict(fast.state_dict())
    x = torch.randint(0, VOCAB, (2, 20))
    with torch.no_grad():
        assert_close(fast(x).logits, slow(x).logits, atol=1e-5, rtol=1e-5)


def test_loss_ignores_minus_100_and_shifts():
    model = tiny_model()
    x = torch.randint(0, VOCAB, (2, 12))
    labels = x.clone()
    labels[:, :5] = -100
    out = model(x, labels=labels)
    ref = torch.nn.functional.cross_entropy(out.logits[:, 4:-1].reshape(-1, VOCAB), x[:, 5:].reshape(-1))
    assert_close(out.loss, ref)


def test_blockwise_loss_equals_full_cross_entropy_in_value_and_gradient():
    x = torch.randint(0, VOCAB, (3, 20))
    labels = x.clone()
    labels[0, :7] = -100  # a prompt
    labels[2, 15:] = -100  # padding
    full, blocks = tiny_model().train(), tiny_model().train()
    logits = full(x).logits
    ref = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), reduction="sum")
    ref.backward()
    out = blocks(x, labels=labels, loss_reduction="sum", return_logits=False)
    assert out.logits is None
    out.loss.backward()
    assert_close(out.loss, ref)
    for (name, a), b in zip(full.named_parameters(), blocks.parameters()):
        assert_close(b.grad, a.grad, atol=1e-6, rtol=1e-4, msg=name)
    h = blocks.model(x)  # block size does not matter, including blocks that do not divide the row count
    assert_close(lm_loss(h, blocks.lm_head, labels, rows=7), lm_loss(h, blocks.lm_head, labels, rows=4096))
    # the GPU/compile path (every row kept, ignore_index masks) gives the same sum
    assert_close(lm_loss(h, blocks.lm_head, labels, rows=7, static=True), lm_loss(h, blocks.lm_head, labels))
    for static in (False, True):
        nothing = lm_loss(h, blocks.lm_head, torch.full_like(labels, -100), static=static)
        assert nothing.item() == 0 and nothing.requires_grad
        one_token = lm_loss(h[:, :1], blocks.lm_head, labels[:, :1], static=static)  # nothing to predict at all
        assert one_token.item() == 0 and one_token.requires_grad


def test_rope_frequencies_stay_fp32_when_the_weights_go_bf16():
    """Angles are position × frequency: bf16 frequencies are ~0.5 rad off by position 512."""
    model = tiny_model(max_position_embeddings=2048)
    exact = model.model.inv_freq.clone()
    for cast in (lambda m: m.to(torch.bfloat16), lambda m: m.half(), lambda m: m.to("cpu", torch.bfloat16)):
        m = cast(tiny_model(max_position_embeddings=2048))
        assert m.model.inv_freq.dtype == torch.float32 and torch.equal(m.model.inv_freq, exact)
        assert m.model.embed_tokens.weight.dtype != torch.float32
    pos = torch.arange(2048)[None]
    angle = pos[0, :, None].double() * exact.double()
    cos, _ = model.to(torch.bfloat16).model.rope(pos, torch.float32)
    assert (cos[0, 0].double() - torch.cat((angle, angle), -1).cos()).abs().max() < 1e-3  # 0.23 with bf16 frequencies


def test_moe_aux_loss_and_gate_gradients():
    model = tiny_model(use_moe=True).train()
    x = torch.randint(0, VOCAB, (2, 16))
    out = model(x, labels=x)
    assert torch.isfinite(out.aux_loss) and out.aux_loss > 0
    (out.loss + out.aux_loss).backward()
    gate = model.model.layers[0].mlp.gate.weight
    assert gate.grad is not None and gate.grad.abs().sum() > 0


def test_moe_expert_without_tokens_still_gets_a_gradient():
    model = tiny_model(use_moe=True).train()
    for layer in model.model.layers:  # a router that sends every token to experts 0 and 1 only
        def to_first_two(x, gate=layer.mlp.gate):
            idx, w, aux = type(gate).forward(gate, x)
            return torch.zeros_like(idx) + torch.arange(idx.shape[1]), w, aux
        layer.mlp.gate.forward = to_first_two
    x = torch.randint(0, VOCAB, (2, 8))
    (model(x, labels=x).loss).backward()
    idle = model.model.layers[0].mlp.experts[3].down_proj.weight
    assert idle.grad is not None  # joined the graph: DDP's all-reduce will not wait for it
    assert idle.grad.abs().sum() == 0
    assert model.model.layers[0].mlp.experts[0].down_proj.weight.grad.abs().sum() > 0


def test_moe_batched_routing_equals_token_by_token():
    model = tiny_model(use_moe=True)
    moe = model.model.layers[0].mlp
    h = torch.randn(3, 10, 64)
    with torch.no_grad():
        batched = moe(h)
        single = torch.stack([torch.stack([moe(h[b:b + 1, t:t + 1])[0, 0] for t in range(10)]) for b in range(3)])
    assert_close(batched, single, atol=1e-5, rtol=1e-5)


def test_our_greedy_generation_equals_transformers_generate():
    model = tiny_model()
    hf = llama_twin(model)
    x = torch.randint(3, VOCAB, (1, 7))
    theirs = hf.generate(x, max_new_tokens=20, do_sample=False, eos_token_id=None, min_new_tokens=20)
    ours = generate(model, x, max_new_tokens=20, temperature=0, eos_token_id=-1)
    assert torch.equal(ours, theirs)
    # and transformers' generate() drives our network the same way, through its Hugging Face class
    hf_ours = to_hf(model)
    assert hf_ours.lm_head.weight is model.model.embed_tokens.weight  # shared, not copied
    assert torch.equal(hf_ours.generate(x, max_new_tokens=20, do_sample=False, eos_token_id=None,
                                        min_new_tokens=20), theirs)


@pytest.mark.parametrize("kw", [{}, {"use_moe": True}, {"tie_word_embeddings": False}])
def test_hf_class_is_the_same_network(kw):
    # built directly (as from_pretrained does), it draws the same initial weights as the core class and computes the
    # same logits with the same state-dict names
    torch.manual_seed(0)
    core = MiniMindForCausalLM(tiny_config(**kw)).eval()
    torch.manual_seed(0)
    hf = MiniMindForCausalLMHF(tiny_config(**kw)).eval()
    assert list(hf.state_dict()) == list(core.state_dict())
    assert all(torch.equal(v, hf.state_dict()[k]) for k, v in core.state_dict().items())
    assert (hf.lm_head.weight is hf.model.embed_tokens.weight) == kw.get("tie_word_embeddings", True)
    x = torch.randint(0, VOCAB, (2, 11))
    with torch.no_grad():
        assert torch.equal(hf(x).logits, core(x).logits)


def test_batched_left_padded_generation_equals_single_rows():
    model = tiny_model()
    a, b = torch.randint(3, VOCAB, (1, 5)), torch.randint(3, VOCAB, (1, 9))
    batch = torch.cat([torch.cat([torch.zeros(1, 4, dtype=torch.long), a], 1), b])
    mask = (torch.arange(9) >= torch.tensor([[4], [0]])).long()
    out = generate(model, batch, attention_mask=mask, max_new_tokens=8, temperature=0, eos_token_id=-1)
    assert torch.equal(out[0, 4:], generate(model, a, max_new_tokens=8, temperature=0, eos_token_id=-1)[0])
    assert torch.equal(out[1], generate(model, b, max_new_tokens=8, temperature=0, eos_token_id=-1)[0])


def test_stream_stops_at_eos_and_streams_tokens():
    model = tiny_model()
    x = torch.randint(3, VOCAB, (1, 5))
    greedy = generate(model, x, max_new_tokens=10, temperature=0, eos_token_id=-1)[0, 5:]
    eos = int(greedy[3])
    first = int((greedy == eos).nonzero()[0])
    streamed = [int(t) for t in stream_generate(model, x, max_new_tokens=10, temperature=0, eos_token_id=eos)]
    assert streamed == greedy[:first + 1].tolist()


def test_finished_rows_leave_the_batch_without_changing_the_others(monkeypatch):
    """Once a quarter of the running rows have hit EOS they are dropped from the batch and the KV cache; every
    row's greedy tokens stay those it gets alone, and dropped rows keep yielding the pad id."""
    model = tiny_model(initializer_range=0.3)  # large weights: varied tokens instead of one repeated
    torch.manual_seed(3)
    prompts = [torch.randint(3, VOCAB, (1, n)) for n in (5, 7, 4, 6, 5, 8, 3, 6)]
    alone = [generate(model, p, max_new_tokens=12, temperature=0, eos_token_id=-1)[0, p.shape[1]:] for p in prompts]
    eos = max(range(3, VOCAB), key=lambda t: sum(bool((a[:8] == t).any()) for a in alone))  # ends several rows
    width = max(p.shape[1] for p in prompts)
    batch = torch.cat([torch.cat([torch.zeros(1, width - p.shape[1], dtype=torch.long), p], 1) for p in prompts])
    mask = (batch != 0).long()  # prompt ids are >= 3: only the left padding is 0
    drops = []
    original = KVCache.select_rows
    monkeypatch.setattr(KVCache, "select_rows", lambda self, index: (drops.append(len(index)),
                                                                     original(self, index))[1])
    steps = torch.stack(list(stream_generate(model, batch, attention_mask=mask, max_new_tokens=12, temperature=0,
                                             eos_token_id=eos, pad_token_id=0)), 1)
    assert drops, "no row was dropped: the test needs rows that finish early"
    for row, a in zip(steps, alone):
        ends = (a == eos).nonzero()
        n = int(ends[0]) + 1 if len(ends) else len(a)
        assert row[:n].tolist() == a[:n].tolist()
        assert (row[n:] == 0).all()


def test_sample_from_draws_by_probability_and_never_a_zero(monkeypatch):
    torch.manual_seed(0)
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3, 0.0]]).repeat(20000, 1)
    counts = torch.bincount(sample_from(probs), minlength=5).float() / 20000
    assert counts[1] == 0 and counts[4] == 0  # cut by top-k / top-p: never drawn
    assert (counts - probs[0]).abs().max() < 0.015  # 20,000 draws: ~4 standard deviations
    # the uniform number times the total can round up to the total: the last token WITH mass, not the zero tail
    monkeypatch.setattr(torch, "rand", lambda *shape, **kw: torch.ones(1, 1))
    assert int(sample_from(torch.tensor([[0.25, 0.75, 0.0]]))) == 1


def test_sampling_knobs():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    prev = torch.tensor([[1]])
    assert int(sample_next(logits, prev, temperature=0)) == 1
    assert int(sample_next(logits, prev, temperature=0, repetition_penalty=10.0)) == 3
    torch.manual_seed(0)
    assert {int(sample_next(logits, prev, temperature=1.0, top_k=1)) for _ in range(20)} == {1}
    # top_p=0.5: token 1 alone holds ~0.64 of the mass
    assert {int(sample_next(logits, prev, temperature=1.0, top_p=0.5)) for _ in range(20)} == {1}
    torch.manual_seed(0)
    draws = {int(sample_next(logits, prev, temperature=1.0, top_p=1.0)) for _ in range(200)}
    assert draws == {0, 1, 2, 3}
    # vanishing temperature / top_p: the top token, never a NaN softmax or an empty nucleus
    for knobs in (dict(temperature=1e-40), dict(temperature=5e-324), dict(temperature=1.0, top_p=1e-300)):
        assert int(sample_next(logits, prev, **knobs)) == 1, knobs
