"""kill -9 at random moments of a run that saves every step: every checkpoint left behind loads (or is absent),
the next start removes the killed writer's temp file, and the run still finishes. Prints how many kills landed
mid-save (they leave a temp file)."""
import glob
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from model.weights import nonfinite_tensors
from trainer.checkpoint import load_resume

from test_distributed import REPO, child_env  # noqa: E402
from test_engine import write_pretrain  # noqa: E402

pytestmark = pytest.mark.slow
KILLS = 10


def test_kill_minus_9_during_saves(tmp_path, tiny_tokenizer_dir):
    data = write_pretrain(tmp_path / "pre.jsonl", 400)
    out = tmp_path / "out"
    cmd = [sys.executable, "train_pretrain.py", "--hidden_size", "128", "--num_hidden_layers", "4",
           "--num_attention_heads", "4", "--num_key_value_heads", "2", "--dtype", "float32", "--device", "cpu",
           "--tokenizer_dir", tiny_tokenizer_dir, "--data_path", data, "--out_dir", str(out), "--checkpoint_dir",
           str(out / "ckpt"), "--max_seq_len", "48", "--batch_size", "2", "--max_steps", "400", "--save_interval",
           "1", "--log_interval", "1", "--from_resume", "1"]
    resume = out / "ckpt" / "pretrain_128_resume.pth"
    rng, mid_save, steps_seen = random.Random(0), 0, []
    for _ in range(KILLS):
        proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        for line in proc.stdout:  # wait until it trains, then kill it at a random moment
            if "steps ×" in line:
                break
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        orphans = glob.glob(str(out / "**" / "*.tmp.*"), recursive=True)
        mid_save += bool(orphans)
        if resume.exists():
            state = load_resume(str(resume))  # never a torn file: it loads, checksums verified
            assert not nonfinite_tensors(state["model"])
            steps_seen.append(state["position"]["step"])
    final = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert not glob.glob(str(out / "**" / "*.tmp.*"), recursive=True)  # the next start cleaned them
    assert steps_seen == sorted(steps_seen)  # every resume went forward
    print(f"\n{KILLS} kills, {mid_save} left a temp file (mid-save), 0 unreadable checkpoints, "
          f"resumed at steps {steps_seen}")
