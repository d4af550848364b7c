"""GGUF export without llama.cpp: what the file says (read back with gguf's own reader), the pre-tokenizer mapping
and the refusals. llama.cpp itself runs the files in tests/evals/test_gguf_parity.py."""
import json
import os
import subprocess
import sys

import gguf
import pytest
import torch

from model.gguf_export import _permute_for_llama, export_gguf, llama_cpp_pre_tokenizer
from model.model_minimind import MiniMindForCausalLM, config_from_preset
from model.tokenizer import DEFAULT_TOKENIZER_DIR
from model.tokenizer_train import build_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def shipped_tokenizer_json():
    with open(os.path.join(DEFAULT_TOKENIZER_DIR, "tokenizer.json"), encoding="utf-8") as f:
        return json.load(f)


def field(reader, key):
    f = reader.fields[key]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode()
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        return [bytes(f.parts[i]).decode() if f.types[1] == gguf.GGUFValueType.STRING else int(f.parts[i][0])
                for i in f.data]
    return f.parts[f.data[0]][0].item()


def tiny(preset="tiny", vocab=None, **kw):
    torch.manual_seed(0)
    vocab = vocab or len(shipped_tokenizer_json()["model"]["vocab"]) + len(shipped_tokenizer_json()["added_tokens"])
    return MiniMindForCausalLM(config_from_preset(preset, vocab_size=vocab, **kw)).eval()


def test_pre_tokenizer_names(tiny_tokenizer_dir):
    assert llama_cpp_pre_tokenizer(shipped_tokenizer_json()) == "refact"  # ours: digits, then GPT-2's regex
    byte_level = {"model": {"type": "BPE"}, "normalizer": None,
                  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}
    assert llama_cpp_pre_tokenizer(byte_level) == "gpt-2"  # upstream MiniMind's tokenizers
    # the CJK split our merges are learned under has no llama.cpp twin: refused, naming the file
    training = json.loads(build_tokenizer(split_cjk=True).to_str())
    with pytest.raises(ValueError, match="x.json: llama.cpp implements no pre-tokenizer"):
        llama_cpp_pre_tokenizer(training, "x.json")
    with pytest.raises(ValueError, match="byte-level BPE"):
        llama_cpp_pre_tokenizer({**byte_level, "normalizer": {"type": "NFC"}})
    # what train_tokenizer.py saves after learning its merges under the CJK split
    with open(os.path.join(tiny_tokenizer_dir, "tokenizer.json"), encoding="utf-8") as f:
        assert llama_cpp_pre_tokenizer(json.load(f)) == "refact"


@pytest.mark.parametrize("preset,arch", [("tiny", "llama"), ("minimind-3", "qwen3"), ("minimind-3-moe", "qwen3moe")])
def test_file_contents(tmp_path, preset, arch):
    model = tiny(preset, **({} if preset == "tiny" else SIZE))
    path = str(tmp_path / "m.gguf")
    assert export_gguf(model, path, DEFAULT_TOKENIZER_DIR) == arch
    r = gguf.GGUFReader(path)
    c = model.config
    assert field(r, "general.architecture") == arch
    assert field(r, f"{arch}.block_count") == c.num_hidden_layers
    assert field(r, f"{arch}.attention.head_count_kv") == c.num_key_value_heads
    assert field(r, f"{arch}.attention.key_length") == c.head_dim
    assert field(r, "tokenizer.ggml.pre") == "refact" and field(r, "tokenizer.ggml.model") == "gpt2"
    tj = shipped_tokenizer_json()
    tokens = field(r, "tokenizer.ggml.tokens")
    assert len(tokens) == c.vocab_size and tokens[1] == "<|im_start|>" and tokens[7] == "<tool_call>"
    assert tokens[300] == {i: t for t, i in tj["model"]["vocab"].items()}[300]
    types = field(r, "tokenizer.ggml.token_type")
    assert types[2] == gguf.TokenType.CONTROL and types[3] == gguf.TokenType.USER_DEFINED  # <|im_end|>, <think>
    assert len(field(r, "tokenizer.ggml.merges")) == len(tj["model"]["merges"])
    assert field(r, "tokenizer.ggml.eos_token_id") == 2 and "<|im_start|>" in field(r, "tokenizer.chat_template")
    tensors = {t.name: t for t in r.tensors}
    assert "output.weight" not in tensors  # tied: llama.cpp reuses token_embd
    sd = model.state_dict()
    q = torch.from_numpy(tensors["blk.1.attn_q.weight"].data.copy())
    hf_q = sd["model.layers.1.self_attn.q_proj.weight"]
    if arch == "llama":  # rotated pairs regrouped for llama.cpp's adjacent-pair RoPE, nothing else changed
        assert not torch.equal(q, hf_q) and torch.equal(q, _permute_for_llama(hf_q, c.num_attention_heads))
    else:
        assert torch.equal(q, hf_q)
        assert torch.equal(torch.from_numpy(tensors["blk.0.attn_k_norm.weight"].data.copy()),
                           sd["model.layers.0.self_attn.k_norm.weight"])
    if arch == "qwen3moe":
        up = torch.from_numpy(tensors["blk.0.ffn_up_exps.weight"].data.copy())
        assert up.shape == (4, c.intermediate_size, c.hidden_size)
        assert torch.equal(up[2], sd["model.layers.0.mlp.experts.2.up_proj.weight"])
        assert field(r, "qwen3moe.expert_used_count") == 1
    modelfile = (tmp_path / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./m.gguf\n") and 'PARAMETER stop "<|im_end|>"' in modelfile


def test_llama_permutation_pairs_each_half_with_its_partner():
    # head of 8 rows: HF rotates row i with row i+4; after the permutation they sit side by side
    w = torch.arange(8.0)[:, None]
    assert _permute_for_llama(w, 1).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_half_precision_weights_keep_norms_in_f32(tmp_path):
    path = str(tmp_path / "m.gguf")
    export_gguf(tiny(), path, DEFAULT_TOKENIZER_DIR, dtype=torch.float16)
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert tensors["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32


def test_refusals(tmp_path):
    path = str(tmp_path / "m.gguf")
    with pytest.raises(ValueError, match="MiniMind2 MoE"):
        export_gguf(tiny(use_moe=True), path, DEFAULT_TOKENIZER_DIR)
    with pytest.raises(ValueError, match="inference_rope_scaling"):
        export_gguf(tiny(inference_rope_scaling=True), path, DEFAULT_TOKENIZER_DIR)
    with pytest.raises(ValueError, match="does not fit the model's vocab_size"):
        export_gguf(tiny(vocab=100), path, DEFAULT_TOKENIZER_DIR)
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        export_gguf(tiny(), path, str(tmp_path))
    broken = tiny()
    with torch.no_grad():
        broken.model.layers[1].mlp.up_proj.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite values in model.layers.1.mlp.up_proj.weight"):
        export_gguf(broken, path, DEFAULT_TOKENIZER_DIR)
    assert not os.path.exists(path) and not os.path.exists(path + ".tmp")


def test_cli_writes_gguf_and_reports_bad_input(tmp_path):
    from model.hf_convert import save_native
    pth = str(tmp_path / "full_sft_128.pth")
    save_native(tiny(), pth)
    run = lambda *a: subprocess.run([sys.executable, "export_model.py", "--weight", pth, "--preset", "tiny", *a],
                                    cwd=REPO, capture_output=True, text=True)
    ok = run("--gguf", str(tmp_path / "g" / "mini.gguf"))
    assert ok.returncode == 0, ok.stderr
    assert "llama.cpp arch llama" in ok.stdout and (tmp_path / "g" / "Modelfile").is_file()
    assert gguf.GGUFReader(str(tmp_path / "g" / "mini.gguf")).tensors[0].tensor_type == gguf.GGMLQuantizationType.F16
    bad = run("--gguf", str(tmp_path / "x.gguf"), "--tokenizer_dir", str(tmp_path))
    assert bad.returncode != 0 and "no tokenizer.json" in bad.stderr and "Traceback" not in bad.stderr


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import model.gguf_export as ge
    path = tmp_path / "m.gguf"

    def half_then_fail(gguf_module, tmp, *args):
        with open(tmp, "wb") as f:
            f.write(b"GGUF partial")
        raise OSError("disk full")
    monkeypatch.setattr(ge, "_write", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        export_gguf(tiny(), str(path), DEFAULT_TOKENIZER_DIR)
    assert os.listdir(tmp_path) == []
