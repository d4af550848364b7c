import argparse
import dataclasses
import os

import pytest
import torch

from model.args import add_sampling_args, add_source_args, build_config
from model.device import pick_device
from model.hf_convert import save_native
from model.loading import ModelSource, load_model
from model.model_lora import apply_lora, lora_state_dict
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM

SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def parse(*argv):
    return add_sampling_args(add_source_args(argparse.ArgumentParser())).parse_args(list(argv))


def test_source_from_flags_carries_every_model_flag():
    s = ModelSource.from_args(parse("--weight", "dpo", "--out_dir", "o", "--preset", "tiny", "--hidden_size", "64",
                                    "--lora_weight", "x", "--quantize", "int8", "--inference_rope_scaling", "1"))
    assert (s.weight, s.out_dir, s.preset, s.lora_weight, s.quantize, s.inference_rope_scaling) == \
        ("dpo", "o", "tiny", "x", "int8", True)
    c = s.config(vocab_size=100)
    # the preset's fields, the explicit width over the preset's, YaRN on, the vocab from the tokenizer
    assert (c.hidden_size, c.num_hidden_layers, c.max_position_embeddings, c.vocab_size, c.inference_rope_scaling) \
        == (64, 4, 2048, 100, True)
    assert s.describe(c) == "o/dpo_64.pth + lora x (int8 weights)"
    assert parse().weight == "full_sft" and parse().temperature == 0.85


def test_build_config_rejects_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        build_config("nope")
    assert build_config(None, hidden_size=None).hidden_size == MiniMindConfig().hidden_size  # None: not given


def test_load_native_with_lora_matches_the_merged_model(tmp_path, tiny_tokenizer_dir):
    torch.manual_seed(0)
    base = MiniMindForCausalLM(MiniMindConfig(**SIZE, vocab_size=600))
    save_native(base, str(tmp_path / "full_sft_32.pth"), dtype=torch.float32)
    tuned = apply_lora(base, rank=2)
    for name, p in tuned.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)  # B starts at zero: make the adapter do something
    (tmp_path / "lora").mkdir()
    torch.save(lora_state_dict(tuned), tmp_path / "lora" / "ident_32.pth")
    source = ModelSource(out_dir=str(tmp_path), tokenizer_dir=tiny_tokenizer_dir, sizes=SIZE)
    plain, tok, is_chat = load_model(source, torch.device("cpu"))
    merged, _, _ = load_model(dataclasses.replace(source, lora_weight="ident"), torch.device("cpu"))
    ids = torch.tensor([tok.encode("hello")])
    with torch.no_grad():
        assert is_chat and not merged.training
        torch.testing.assert_close(merged(ids).logits, tuned.eval()(ids).logits, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(plain(ids).logits, merged(ids).logits)
    (tmp_path / "pretrain_32.pth").write_bytes((tmp_path / "full_sft_32.pth").read_bytes())
    _, _, is_chat = load_model(dataclasses.replace(source, weight="pretrain"), torch.device("cpu"))
    assert not is_chat  # pretrain weights continue text, no chat template


def test_load_refuses_what_cannot_work(tmp_path, tiny_tokenizer_dir):
    source = ModelSource(out_dir=str(tmp_path), tokenizer_dir=tiny_tokenizer_dir, sizes=SIZE)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_model(source, torch.device("cpu"))
    with pytest.raises(ValueError, match="--quantize works on native weights"):
        load_model(dataclasses.replace(source, load_from=str(tmp_path), quantize="int8"), torch.device("cpu"))


def test_device_rule():
    assert pick_device("cpu") == torch.device("cpu")  # an explicit name wins
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device(None, allow_mps=False).type == expected  # inference never picks MPS by itself


def hostile_folder(path, marker):
    """A model folder whose config points transformers at a Python file of its own that leaves a marker."""
    import json
    path.mkdir()
    (path / "config.json").write_text(json.dumps({
        "model_type": "evil", "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.Evil"}}))
    (path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                  "from transformers import PretrainedConfig\n"
                                  "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n")
    return str(path)


def test_folder_code_never_runs_without_the_flag(tmp_path, tiny_tokenizer_dir):
    marker = tmp_path / "ran.txt"
    folder = hostile_folder(tmp_path / "evil", marker)
    source = ModelSource(load_from=folder)
    with pytest.raises(ValueError, match="pass --trust_remote_code"):
        load_model(source, torch.device("cpu"))
    assert not marker.exists()
    assert parse().trust_remote_code is False and parse("--trust_remote_code").trust_remote_code is True
    # with the flag the user asked for it: the folder's code runs (and fails later: it is no model)
    with pytest.raises(Exception):
        load_model(dataclasses.replace(source, trust_remote_code=True), torch.device("cpu"))
    assert marker.exists()


def test_our_moe_export_loads_without_remote_code(tmp_path, tiny_tokenizer_dir):
    from model.hf_convert import export_hf
    torch.manual_seed(0)
    moe = MiniMindForCausalLM(MiniMindConfig(**SIZE, vocab_size=600, use_moe=True, intermediate_size=32)).eval()
    folder = export_hf(moe, str(tmp_path / "hf"), tiny_tokenizer_dir, dtype=torch.float32)
    assert any(f.endswith(".py") for f in os.listdir(folder))  # it ships modeling files: they must not run
    for f in os.listdir(folder):
        if f.endswith(".py"):
            (tmp_path / "hf" / f).write_text("raise SystemExit('folder code ran')\n")
    model, tok, _ = load_model(ModelSource(load_from=folder), torch.device("cpu"))
    ids = torch.tensor([tok.encode("hello")])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, moe(ids).logits)
