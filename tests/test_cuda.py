"""The CUDA paths: skipped where there is no GPU (CI), run by scripts/gpu_check.sh on a lent one.

Same network on the GPU as on the CPU, the flash-attention kernel reachable with grouped KV heads, the static KV cache,
torch.compile, and the engine's CUDA training path (bf16 autocast, fused AdamW, pinned loader, compile) end to end.
"""
import json

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.testing import assert_close

from model.model_minimind import KVCache, MiniMindConfig, MiniMindForCausalLM
from model.tokenizer import load_tokenizer
from trainer import engine
from trainer.losses import CausalLMLoss

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
VOCAB = 97


@pytest.fixture(autouse=True)
def exact_fp32():
    """Plain fp32 matmuls for the comparisons (the engine turns TF32 on for training; these tests want rounding
    far below it)."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def model_pair(seed=0, **kw):
    """The same random weights on the CPU and on the GPU (head_dim 16: flash attention takes it)."""
    torch.manual_seed(seed)
    cfg = MiniMindConfig(**{**dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   vocab_size=VOCAB, max_position_embeddings=256), **kw})
    cpu = MiniMindForCausalLM(cfg).eval()
    gpu = MiniMindForCausalLM(cfg).cuda().eval()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu


@pytest.mark.parametrize("use_moe", [False, True])
def test_gpu_logits_equal_cpu_logits(use_moe):
    cpu, gpu = model_pair(use_moe=use_moe)
    x = torch.randint(0, VOCAB, (2, 40))
    with torch.no_grad():
        assert_close(gpu(x.cuda()).logits.cpu(), cpu(x).logits, atol=1e-4, rtol=1e-4)


def test_bf16_autocast_stays_close_to_fp32():
    _, gpu = model_pair()
    x = torch.randint(0, VOCAB, (2, 64), device="cuda")
    with torch.no_grad():
        ref = gpu(x).logits
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = gpu(x).logits.float()
    assert ((low - ref).norm() / ref.norm()).item() < 2e-2


def test_flash_attention_kernel_runs_our_grouped_heads_forward_and_backward():
    """Only the flash kernel allowed: our SDPA call (enable_gqa, is_causal, no mask) must be one it accepts, and
    its gradients must match the reference math kernel's."""
    _, gpu = model_pair()
    x = torch.randint(0, VOCAB, (2, 128), device="cuda")
    grads = {}
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.MATH):
        gpu.zero_grad(set_to_none=True)
        with sdpa_kernel([backend]), torch.autocast("cuda", dtype=torch.bfloat16):
            gpu(x, labels=x).loss.backward()
        grads[backend] = torch.cat([p.grad.flatten().float() for p in gpu.parameters()])
    ref = grads[SDPBackend.MATH]
    assert ((grads[SDPBackend.FLASH_ATTENTION] - ref).norm() / ref.norm()).item() < 2e-2


def test_static_kv_cache_decoding_equals_full_forward_on_gpu():
    _, gpu = model_pair()
    x = torch.randint(0, VOCAB, (2, 24), device="cuda")
    with torch.no_grad():
        full = gpu(x).logits
        cache = KVCache(gpu.config, 24)
        steps = [gpu(x[:, :10], past_key_values=cache, use_cache=True).logits]
        steps += [gpu(x[:, i:i + 1], past_key_values=cache, use_cache=True).logits for i in range(10, 24)]
    assert_close(torch.cat(steps, 1), full, atol=1e-4, rtol=1e-4)


def test_compiled_training_step_equals_eager():
    _, gpu = model_pair()
    compiled = torch.compile(gpu)
    x = torch.randint(0, VOCAB, (2, 64), device="cuda")
    losses = {}
    for name, fn in (("eager", gpu), ("compiled", compiled)):
        gpu.zero_grad(set_to_none=True)
        loss = fn(x, labels=x).loss
        loss.backward()
        losses[name] = (loss.item(), torch.cat([p.grad.flatten() for p in gpu.parameters()]))
    assert losses["compiled"][0] == pytest.approx(losses["eager"][0], rel=1e-4)
    assert_close(losses["compiled"][1], losses["eager"][1], atol=1e-4, rtol=1e-3)


def test_engine_trains_on_cuda_with_bf16_compile_and_fused_adamw(tmp_path):
    """The stage-script path end to end on the GPU: loss falls, the weights file loads back on the CPU."""
    tok = load_tokenizer()
    data = tmp_path / "pre.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for i in range(64):
            f.write(json.dumps({"text": f"Alice reads {i % 7} green books every day, 北京 {i}."}) + "\n")
    args = engine.build_parser("test").parse_args([
        "--hidden_size", "64", "--num_hidden_layers", "2", "--num_attention_heads", "4", "--num_key_value_heads",
        "2", "--device", "cuda", "--dtype", "bfloat16", "--use_compile", "1", "--batch_size", "8", "--epochs", "3",
        "--max_seq_len", "32", "--learning_rate", "3e-3", "--log_interval", "1", "--num_workers", "1",
        "--data_path", str(data), "--out_dir", str(tmp_path / "out"), "--checkpoint_dir", str(tmp_path / "ckpt")])
    run = engine.setup(args, stage="pretrain")
    from dataset.lm_dataset import PretrainDataset
    model = run.build_model(vocab_size=len(tok))
    summary = engine.train(run, model, PretrainDataset(str(data), tok, 32), CausalLMLoss())
    engine.teardown(run)
    with open(summary["metrics"]) as f:
        losses = [json.loads(line)["loss"] for line in f]
    assert len(losses) == 24 and losses[-1] < 0.5 * losses[0]
    assert any(g.get("fused") for g in engine.build_optimizer(model, 1e-3, 0.1, run.device).param_groups)
    state = torch.load(summary["weights"], map_location="cpu", weights_only=True)
    cpu = MiniMindForCausalLM(model.config)
    cpu.load_state_dict({k: v.float() for k, v in state.items()})
