"""scripts/eval_bpb.py: its figures are heldout_loss's, bits-per-byte is a hand count, bad data is one clear line."""
import json
import math
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import write_jsonl
from evals.lm_loss import heldout_loss
from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.tokenizer import load_tokenizer
from model.weights import load_native
from scripts.eval_bpb import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=600)
SIZE = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4", "--num_key_value_heads", "2"]


@pytest.fixture(scope="module")
def flags(tmp_path_factory, tiny_tokenizer_dir):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("bpb")
    save_native(MiniMindForCausalLM(MiniMindConfig(**CONFIG)), str(out / "pretrain_32.pth"))
    return ["--out_dir", str(out), "--tokenizer_dir", tiny_tokenizer_dir, *SIZE, "--device", "cpu"]


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_two_lines_by_hand(flags, tiny_tokenizer_dir, tmp_path, capsys):
    texts = ["Alice likes green tea.", "北京是中国的首都 🚀"]  # ASCII, 3-byte CJK, a 4-byte emoji
    path = write_jsonl(tmp_path / "two.jsonl", texts)
    r = last_json((main([*flags, "--data_path", path, "--batch_size", "2"]), capsys.readouterr().out)[1])

    # the checkpoint as the CLI holds it (fp16 on disk), each document scored alone: no padding involved
    model = load_native(flags[1] + "/pretrain_32.pth", MiniMindConfig(**CONFIG)).eval()
    tok = load_tokenizer(tiny_tokenizer_dir)
    nll, n_tokens = 0.0, 0
    for t in texts:
        ids = torch.tensor([[tok.bos_token_id] + tok.encode(t, add_special_tokens=False) + [tok.eos_token_id]])
        with torch.no_grad():
            logp = F.log_softmax(model(ids).logits[0, :-1].float(), -1)
        nll -= float(logp.gather(1, ids[0, 1:, None]).sum())
        n_tokens += ids.shape[1] - 1
    n_bytes = sum(len(t.encode()) + 1 for t in texts)  # + one byte for each eos
    assert r["docs"] == 2 and r["tokens"] == n_tokens and r["bytes"] == n_bytes == 22 + 29 + 2
    assert math.isclose(r["bpb"], nll / math.log(2) / n_bytes, rel_tol=1e-5)
    assert math.isclose(r["loss"], nll / n_tokens, rel_tol=1e-5) and math.isclose(r["ppl"], math.exp(r["loss"]))


def test_cli_figures_are_heldout_loss(flags, tiny_tokenizer_dir, tiny_corpus_path, capsys):
    # max_seq_len 16 truncates most lines, so the truncated-bytes path is compared too
    args = ["--data_path", tiny_corpus_path, "--max_seq_len", "16", "--batch_size", "4", "--max_lines", "12"]
    out = (main([*flags, *args]), capsys.readouterr().out)[1]
    model = load_native(flags[1] + "/pretrain_32.pth", MiniMindConfig(**CONFIG))
    want = heldout_loss(model, load_tokenizer(tiny_tokenizer_dir), tiny_corpus_path, max_seq_len=16, batch_size=4,
                        max_lines=12)
    got = last_json(out)
    assert {k: got[k] for k in want} == pytest.approx(want, rel=1e-6) and want["docs"] == 12
    assert f"bits/byte   {want['bpb']:.4f}" in out and "pretrain_32.pth" in out


@pytest.mark.parametrize("line, reason", [
    ('{"text": "ok"', "malformed JSON"),
    ('["text"]', "expected a JSON object, got list"),
    ('{"text": 3}', "field 'text' must be a string"),
])
def test_bad_line_is_named_in_process(flags, tmp_path, line, reason):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=f"^error: {re.escape(str(path))}:3: {re.escape(reason)}"):
        main([*flags, "--data_path", str(path)])


def test_missing_file_and_blank_file(flags, tmp_path):
    with pytest.raises(SystemExit, match=f"^error: no data file at {re.escape(str(tmp_path))}/nope.jsonl$"):
        main([*flags, "--data_path", str(tmp_path / "nope.jsonl")])
    (tmp_path / "blank.jsonl").write_text("\n \n", encoding="utf-8")
    with pytest.raises(SystemExit, match="blank.jsonl: no documents"):
        main([*flags, "--data_path", str(tmp_path / "blank.jsonl")])


@pytest.mark.slow  # a fresh interpreter: ~10 s of torch/transformers imports on a busy 2-core machine
def test_cli_bad_line_exits_with_one_line(flags, tmp_path):
    """The script as a user runs it: nonzero exit, file:line, no traceback."""
    path = tmp_path / "h.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"}\n{"txt": "three"}\n', encoding="utf-8")
    r = subprocess.run([sys.executable, "scripts/eval_bpb.py", *flags, "--data_path", str(path)], cwd=REPO,
                       capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"error: {path}:3: missing field 'text'"
