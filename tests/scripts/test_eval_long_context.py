"""scripts/eval_long_context.py: both curves on disk, buckets past the training length, and what YaRN does change."""
import json
import math
import re

import pytest
import torch

from conftest import write_jsonl
from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.tokenizer import load_tokenizer
from scripts.eval_long_context import build_rows, main, set_rope, token_nll

# At the default init (std 0.02) attention is near uniform, so positions barely matter and YaRN moves the loss by
# ~1e-4; std 0.2 makes attention position-sensitive enough that the change is far above float noise.
CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=600,
              initializer_range=0.2)
SIZE = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4", "--num_key_value_heads", "2"]
TRAIN_LEN, CONTEXT_LEN, BUCKET = 32, 128, 16


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MiniMindForCausalLM(MiniMindConfig(**CONFIG)).eval()


@pytest.fixture(scope="module")
def flags(tmp_path_factory, model, tiny_tokenizer_dir):
    out = tmp_path_factory.mktemp("long")
    save_native(model, str(out / "pretrain_32.pth"))
    return ["--out_dir", str(out), "--tokenizer_dir", tiny_tokenizer_dir, *SIZE, "--device", "cpu",
            "--train_len", str(TRAIN_LEN), "--context_len", str(CONTEXT_LEN), "--bucket", str(BUCKET)]


def test_png_and_json_with_both_curves(flags, tiny_corpus_path, tmp_path, capsys):
    main([*flags, "--data_path", tiny_corpus_path, "--num_seqs", "3", "--save_dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert (tmp_path / "long_context.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = json.loads((tmp_path / "long_context.json").read_text())
    assert json.loads(out.strip().splitlines()[-1])["summary"] == r["summary"]
    assert r["rows"] == 3 and r["yarn"]["factor"] == 4 and r["yarn"]["original_max_position_embeddings"] == TRAIN_LEN
    b = r["buckets"]
    # targets are positions 1..127: every one counted once, the last bucket ends at the context length
    assert [x["start"] for x in b] == list(range(0, CONTEXT_LEN, BUCKET)) and b[-1]["end"] == CONTEXT_LEN
    assert sum(x["tokens"] for x in b) == 3 * (CONTEXT_LEN - 1) and b[0]["tokens"] == 3 * (BUCKET - 1)
    assert all(math.isfinite(x["nll_plain"]) and math.isfinite(x["nll_yarn"]) for x in b)
    past = [x for x in b if x["start"] >= TRAIN_LEN]
    assert len(past) == 6 and all(abs(x["nll_plain"] - x["nll_yarn"]) > 1e-4 for x in past)
    assert all(math.isclose(x["ppl_yarn"], math.exp(x["nll_yarn"]), rel_tol=1e-9) for x in b)
    assert set(r["summary"]["plain"]) == {"within", "beyond"} and "(past training length)" in out


def test_yarn_changes_every_position_but_the_first(model, tiny_tokenizer_dir, tiny_corpus_path):
    ids = build_rows(load_tokenizer(tiny_tokenizer_dir), tiny_corpus_path, 2, CONTEXT_LEN)
    plain = token_nll(model, ids)
    assert set_rope(model, {"factor": 4.0, "original_max_position_embeddings": TRAIN_LEN}) > 1  # attention scale
    yarn = token_nll(model, ids)
    # the first prediction attends to one key only, so neither the rotation nor the attention scale can move it;
    # from there on YaRN changes the loss, inside the training window as well (its scale and slow dims apply at
    # every position), and more past it
    torch.testing.assert_close(yarn[:, 0], plain[:, 0])
    diff = (yarn - plain).abs()
    assert diff[:, 1:TRAIN_LEN - 1].mean() > 1e-2 and diff[:, TRAIN_LEN - 1:].mean() > diff[:, 1:TRAIN_LEN - 1].mean()
    set_rope(model, {"factor": 1.0, "original_max_position_embeddings": TRAIN_LEN})  # ×1 stretches nothing
    torch.testing.assert_close(token_nll(model, ids), plain, rtol=0, atol=0)
    set_rope(model, None)
    torch.testing.assert_close(token_nll(model, ids), plain, rtol=0, atol=0)


def test_rows_are_the_packed_stream(tiny_tokenizer_dir, tmp_path):
    tok = load_tokenizer(tiny_tokenizer_dir)
    path = write_jsonl(tmp_path / "d.jsonl", ["hello world", "你好", "3 + 4 = 7"])
    stream = []
    for t in ["hello world", "你好", "3 + 4 = 7"]:
        stream += [tok.bos_token_id] + tok.encode(t, add_special_tokens=False) + [tok.eos_token_id]
    full = [stream[i:i + 4] for i in range(0, len(stream) - 3, 4)]  # a partial tail makes no row
    assert len(stream) % 4 and build_rows(tok, path, 100, 4).tolist() == full
    assert build_rows(tok, path, 2, 4).tolist() == full[:2]


def test_short_file_and_bad_line(flags, tmp_path):
    short = write_jsonl(tmp_path / "short.jsonl", ["hi", "there"])
    with pytest.raises(SystemExit, match=r"short.jsonl: \d+ tokens in all, fewer than one row of 128"):
        main([*flags, "--data_path", short, "--save_dir", str(tmp_path)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi"}\n{"text": "hi"\n', encoding="utf-8")
    with pytest.raises(SystemExit, match=f"^error: {re.escape(str(bad))}:2: malformed JSON"):
        main([*flags, "--data_path", str(bad), "--save_dir", str(tmp_path)])
    assert not (tmp_path / "long_context.png").exists()
