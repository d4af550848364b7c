"""Damaged checkpoint files: every load names the file and says what is wrong; none loads silently."""
import os
import random
import zipfile

import pytest
import torch

from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.weights import atomic_save, load_state_dict, nonfinite_tensors
from trainer.checkpoint import load_resume

SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=600)
SIZE_FLAGS = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4",
              "--num_key_value_heads", "2"]


def entry_offset(data: bytes, path: str, name_suffix: str, into: int) -> int:
    """Byte offset `into` bytes past the start of a zip entry's data."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(name_suffix))
    header = info.header_offset
    name_len = int.from_bytes(data[header + 26:header + 28], "little")
    extra_len = int.from_bytes(data[header + 28:header + 30], "little")
    return header + 30 + name_len + extra_len + into


def damage(kind: str, good: bytes, path: str) -> bytes:
    rng = random.Random(kind)
    data = bytearray(good)
    if kind == "empty":
        return b""
    if kind == "truncated_half":
        return good[: len(good) // 2]
    if kind == "truncated_tail":
        return good[:-40]
    if kind == "random_bytes":
        return bytes(rng.randrange(256) for _ in range(len(good)))
    if kind == "text":
        return b"this is not a checkpoint\n" * 20
    if kind == "flip_directory":  # the zip's central directory, near the end of the file
        data[len(data) - 60] ^= 0xFF
    elif kind == "flip_pickle":
        data[entry_offset(good, path, "data.pkl", 40)] ^= 0x55
    elif kind in ("flip_tensor", "flip_tensor_low_bit"):
        data[entry_offset(good, path, "data/0", 17)] ^= 0x01 if kind.endswith("low_bit") else 0xFF
    elif kind == "flip_last_tensor":
        with zipfile.ZipFile(path) as z:
            last = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.header_offset)
        data[entry_offset(good, path, last.filename, last.file_size - 1)] ^= 0x80
    return bytes(data)


KINDS = ["empty", "truncated_half", "truncated_tail", "random_bytes", "text", "flip_directory", "flip_pickle",
         "flip_tensor", "flip_tensor_low_bit", "flip_last_tensor"]


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig(**SIZE))
    weights = str(d / "full_sft_32.pth")
    save_native(model, weights)
    resume = str(d / "resume.pth")
    opt = torch.optim.AdamW(model.parameters())
    model(torch.tensor([[1, 2, 3]])).logits.sum().backward()
    opt.step()
    atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "position": {"step": 1}}, resume)
    return {"weights": weights, "resume": resume}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which, loader", [("weights", load_state_dict), ("resume", load_resume)])
def test_every_damaged_file_is_a_named_error(tmp_path, good_files, kind, which, loader):
    good_path = good_files[which]
    good = open(good_path, "rb").read()
    bad = str(tmp_path / f"{kind}.pth")
    with open(bad, "wb") as f:
        f.write(damage(kind, good, good_path))
    with pytest.raises(ValueError) as err:
        loader(bad)
    assert bad in str(err.value)


def test_good_files_load(good_files):
    assert "model.embed_tokens.weight" in load_state_dict(good_files["weights"])
    assert load_resume(good_files["resume"])["position"] == {"step": 1}


def test_atomic_save_refuses_non_finite_state(tmp_path):
    state = {"model": {"w": torch.ones(2)}, "optimizer": {"state": {0: {"exp_avg": torch.tensor([float("inf")])}}}}
    assert nonfinite_tensors(state) == ["optimizer.state.0.exp_avg"]
    with pytest.raises(ValueError, match="non-finite values in 1 tensors"):
        atomic_save(state, str(tmp_path / "x.pth"))
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("kind", ["empty", "flip_tensor", "truncated_half"])
def test_scripts_name_the_damaged_file(tmp_path, good_files, tiny_tokenizer_dir, kind, refusal):
    good = open(good_files["weights"], "rb").read()
    bad = tmp_path / "full_sft_32.pth"
    bad.write_bytes(damage(kind, good, good_files["weights"]))
    for script, *flags in (["eval_model.py", "--out_dir", str(tmp_path), "--interactive", "0"],
                           ["export_model.py", "--weight", str(bad), "--save_dir", str(tmp_path / "hf")]):
        said = refusal(script, *flags, "--tokenizer_dir", tiny_tokenizer_dir, *SIZE_FLAGS)
        assert str(bad) in said, (script, said[-2000:])
