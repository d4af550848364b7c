import json
import os
import subprocess
import sys

import torch

from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4", "--num_key_value_heads", "2"]


def write(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n", encoding="utf-8")


def test_ceval_and_cmmlu_layouts_end_to_end(tmp_path, tiny_tokenizer_dir):
    torch.manual_seed(0)
    save_native(MiniMindForCausalLM(MiniMindConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                   num_key_value_heads=2, vocab_size=600)),
                str(tmp_path / "out" / "full_sft_32.pth"))
    ce, cm = tmp_path / "ceval", tmp_path / "cmmlu"
    head = ["id", "question", "A", "B", "C", "D", "answer"]
    for subject in ("math", "law"):
        write(ce / "dev" / f"{subject}_dev.csv", head, [[i, f"d{i}", 1, 2, 3, 4, "ABCD"[i % 4]] for i in range(5)])
        write(ce / "val" / f"{subject}_val.csv", head, [[i, f"v{i}", 1, 2, 3, 4, "ABCD"[i % 4]] for i in range(8)])
        write(ce / "test" / f"{subject}_test.csv", head[:-1], [[i, f"t{i}", 1, 2, 3, 4] for i in range(3)])
        write(cm / "dev" / f"{subject}.csv", ["", "Question", "A", "B", "C", "D", "Answer"],
              [[i, f"d{i}", 1, 2, 3, 4, "A"] for i in range(5)])
        write(cm / "test" / f"{subject}.csv", ["", "Question", "A", "B", "C", "D", "Answer"],
              [[i, f"q{i}", 1, 2, 3, 4, "ABCD"[i % 4]] for i in range(6)])

    def run(*extra):
        return subprocess.run([sys.executable, "eval_ceval.py", "--out_dir", str(tmp_path / "out"),
                               "--tokenizer_dir", tiny_tokenizer_dir, *SIZE, *extra],
                              cwd=REPO, capture_output=True, text=True, timeout=180)

    r = run("--data_dir", str(ce), "--split", "val", "--shots", "2", "--save_dir", str(tmp_path / "r1"))
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "r1" / "summary.json").read_text())
    assert summary["format"] == "ceval" and summary["n"] == 16 and set(summary["by_subject"]) == {"math", "law"}
    assert set(summary["by_category"]) == {"Humanities", "Uncategorized"}  # law is Humanities in C-Eval
    assert summary["by_category"]["Humanities"] == summary["by_subject"]["law"]
    assert (tmp_path / "r1" / "accuracy_by_subject.csv").read_text().startswith("subject,n,accuracy")

    r = run("--data_dir", str(ce), "--split", "test", "--chat", "0", "--save_dir", str(tmp_path / "r2"))
    assert r.returncode == 0, r.stderr
    sub = json.loads((tmp_path / "r2" / "submission.json").read_text())
    assert set(sub) == {"math", "law"} and set(sub["law"]) == {"0", "1", "2"}
    assert set(sub["law"].values()) <= set("ABCD")

    r = run("--data_dir", str(cm), "--split", "test", "--save_dir", str(tmp_path / "r3"), "--subjects", "law")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "r3" / "summary.json").read_text())
    assert summary["format"] == "cmmlu" and summary["n"] == 6

    (ce / "val" / "law_val.csv").write_text("id,question,A,B\n0,q,a,b\n", encoding="utf-8")
    r = run("--data_dir", str(ce), "--save_dir", str(tmp_path / "r4"))
    assert r.returncode != 0 and "law_val.csv: missing column(s) C, D" in r.stderr and "Traceback" not in r.stderr
