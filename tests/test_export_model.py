import json
import os
import subprocess
import sys

import pytest
import torch
from torch.testing import assert_close
from transformers import AutoModelForCausalLM, AutoTokenizer

from model.hf_convert import export_hf, import_hf, save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM, config_from_preset
from model.weights import load_native

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def tiny(use_moe=False, vocab=600):
    torch.manual_seed(0)
    return MiniMindForCausalLM(MiniMindConfig(**SIZE, vocab_size=vocab, use_moe=use_moe)).eval()


def test_dense_exports_as_plain_llama(tmp_path, tiny_tokenizer_dir):
    model = tiny()
    export_hf(model, str(tmp_path), tiny_tokenizer_dir, dtype=torch.float32)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "llama" and "auto_map" not in config
    assert not any(f.endswith(".py") for f in os.listdir(tmp_path))
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path))  # no trust_remote_code
    assert type(hf).__name__ == "LlamaForCausalLM"
    x = torch.randint(0, 600, (2, 19))
    with torch.no_grad():
        assert_close(hf(x).logits, model(x).logits, atol=1e-5, rtol=1e-5)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    assert tok.eos_token_id == 2 and tok.pad_token_id == 0
    gen = json.loads((tmp_path / "generation_config.json").read_text())
    assert gen["eos_token_id"] == 2 and gen["bos_token_id"] == 1
    # our generator drives the exported Llama too (eval_model/server/web demo --load_from), same greedy tokens,
    # left-padded batch included
    from model.generate import generate
    ids = torch.randint(3, 600, (2, 7))
    mask = torch.ones_like(ids)
    ids[1, :3], mask[1, :3] = 0, 0
    with torch.no_grad():
        ours = generate(model, ids, attention_mask=mask, max_new_tokens=6, temperature=0, eos_token_id=None)
        theirs = generate(hf, ids, attention_mask=mask, max_new_tokens=6, temperature=0, eos_token_id=None)
    assert torch.equal(ours, theirs)


def test_moe_exports_with_remote_code(tmp_path, tiny_tokenizer_dir):
    model = tiny(use_moe=True)
    export_hf(model, str(tmp_path / "hf"), tiny_tokenizer_dir, dtype=torch.float32)
    assert "auto_map" in json.loads((tmp_path / "hf" / "config.json").read_text())
    assert {"model_minimind.py", "model_minimind_hf.py"} <= set(os.listdir(tmp_path / "hf"))
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"), trust_remote_code=True)
    x = torch.randint(0, 600, (2, 13))
    with torch.no_grad():
        assert_close(hf(x).logits, model(x).logits, atol=1e-5, rtol=1e-5)
    # as a user gets it: a fresh process, away from this repo (the copied files alone must define the model), and
    # transformers' generate() on it
    torch.save({"x": x, "logits": model(x).logits.detach()}, tmp_path / "ref.pt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import sys, torch; from transformers import AutoModelForCausalLM; "
            "hf = AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=True).eval(); "
            "assert 'model' not in sys.modules, 'loaded from the repo, not the folder'; "
            "ref = torch.load(sys.argv[2]); torch.testing.assert_close(hf(ref['x']).logits, ref['logits']); "
            "out = hf.generate(ref['x'], max_new_tokens=4, min_new_tokens=4, do_sample=False); "
            "assert out.shape == (2, 17), out.shape; print(type(hf).__name__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "hf"), str(tmp_path / "ref.pt")],
                       cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "MiniMindForCausalLMHF"


@pytest.mark.parametrize("preset,arch", [("minimind-3", "Qwen3ForCausalLM"),
                                          ("minimind-3-moe", "Qwen3MoeForCausalLM")])
@pytest.mark.parametrize("yarn", [False, True])
def test_minimind3_exports_as_stock_qwen3(tmp_path, tiny_tokenizer_dir, preset, arch, yarn):
    torch.manual_seed(0)
    model = MiniMindForCausalLM(config_from_preset(preset, **SIZE, vocab_size=600,
                                                   inference_rope_scaling=yarn)).eval()
    with torch.no_grad():  # q_norm / k_norm away from 1
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    export_hf(model, str(tmp_path / "hf"), tiny_tokenizer_dir, dtype=torch.float32)
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == [arch] and "auto_map" not in config
    assert not any(f.endswith(".py") for f in os.listdir(tmp_path / "hf"))
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"))  # no trust_remote_code
    assert type(hf).__name__ == arch
    x = torch.randint(0, 600, (2, 300))  # YaRN rescales every frequency band, so short inputs show it too
    with torch.no_grad():
        assert_close(hf(x).logits, model(x).logits, atol=1e-5, rtol=1e-5)
    back = import_hf(str(tmp_path / "hf"))  # --to_torch
    assert back.config.qk_norm and back.config.use_moe == model.config.use_moe
    assert back.config.inference_rope_scaling == yarn
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())


def test_qwen3_moe_folder_with_dense_layers_is_refused(tmp_path, tiny_tokenizer_dir):
    model = MiniMindForCausalLM(config_from_preset("minimind-3-moe", **SIZE, vocab_size=600))
    export_hf(model, str(tmp_path / "hf"), tiny_tokenizer_dir, dtype=torch.float32)
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "mlp_only_layers": [1]}))
    with pytest.raises(ValueError, match="mlp_only_layers"):
        import_hf(str(tmp_path / "hf"))
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "head_dim": "16"}))
    with pytest.raises(ValueError, match="head_dim is missing or not a number"):
        import_hf(str(tmp_path / "hf"))


@pytest.mark.parametrize("use_moe", [False, True])
def test_round_trip_back_to_native(tmp_path, tiny_tokenizer_dir, use_moe):
    model = tiny(use_moe=use_moe)
    export_hf(model, str(tmp_path / "hf"), tiny_tokenizer_dir, dtype=torch.float32)
    back = import_hf(str(tmp_path / "hf"))
    assert back.config.use_moe == use_moe
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())


def test_cli_both_directions_and_shape_mismatch_error(tmp_path, tiny_tokenizer_dir):
    model = tiny()
    pth = str(tmp_path / "full_sft_64.pth")
    save_native(model, pth)
    assert torch.load(pth, weights_only=True)["model.embed_tokens.weight"].dtype == torch.float16
    size = [f"--{k}={v}" for k, v in SIZE.items()]
    run = lambda *a: subprocess.run([sys.executable, "export_model.py", *a], cwd=REPO, capture_output=True, text=True)
    ok = run("--weight", pth, "--save_dir", str(tmp_path / "hf"), "--tokenizer_dir", tiny_tokenizer_dir, *size)
    assert ok.returncode == 0, ok.stderr
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"))
    assert hf.dtype == torch.float16
    back = run("--to_torch", "--hf_dir", str(tmp_path / "hf"), "--weight", str(tmp_path / "back.pth"))
    assert back.returncode == 0, back.stderr
    reloaded = load_native(str(tmp_path / "back.pth"), MiniMindConfig(**SIZE, vocab_size=600))
    assert torch.equal(reloaded.model.norm.weight, model.model.norm.weight.half().float())

    wrong = run("--weight", pth, "--save_dir", str(tmp_path / "x"), "--tokenizer_dir", tiny_tokenizer_dir,
                "--hidden_size=128", "--num_hidden_layers=2")
    assert wrong.returncode != 0
    assert "does not fit the model" in wrong.stderr and "hidden_size=128" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_cli_merges_a_lora_adapter_into_the_export(tmp_path, tiny_tokenizer_dir):
    from model.model_lora import apply_lora, lora_modules, lora_state_dict, merge_lora
    from model.weights import atomic_save
    model = tiny()
    pth = str(tmp_path / "full_sft_64.pth")
    save_native(model, pth, dtype=torch.float32)
    adapted = apply_lora(tiny(), rank=4, alpha=8, targets=("q_proj", "down_proj"))
    for m in lora_modules(adapted):
        torch.nn.init.normal_(m.lora_B, std=0.05)  # a trained adapter is not the zero no-op
    atomic_save(lora_state_dict(adapted), str(tmp_path / "lora_id_64.pth"))
    size = [f"--{k}={v}" for k, v in SIZE.items()]
    r = subprocess.run([sys.executable, "export_model.py", "--weight", pth, "--lora_weight", str(tmp_path / "lora_id_64.pth"),
                        "--save_dir", str(tmp_path / "hf"), "--tokenizer_dir", tiny_tokenizer_dir, *size],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"))
    assert not any("lora" in k for k in hf.state_dict())
    x = torch.randint(0, 600, (2, 11))
    with torch.no_grad():
        expected = merge_lora(adapted, unwrap=True)(x).logits
        assert not torch.allclose(expected, model(x).logits, atol=1e-3)  # the adapter changed the model
        assert_close(hf(x).logits, expected, atol=1e-4, rtol=1e-4)
