"""Multi-process and end-to-end runs of the training engine, on CPU: DDP (gloo) and DeepSpeed ZeRO-1 under torchrun,
and the two stage scripts chained through their CLIs. Each compares against an in-process single-process run of
the same global batch where it can: the engine normalizes by the global number of supervised tokens, so 2 ranks ×
(2 × accumulation 2) must train like 1 process × (4 × accumulation 2).
"""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from dataset.lm_dataset import PretrainDataset
from model.tokenizer import load_tokenizer
from trainer import engine

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(REPO, "tests", "trainer", "ddp_check.py")
TINY = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4",
        "--num_key_value_heads", "2", "--dtype", "float32", "--device", "cpu"]

pytestmark = pytest.mark.slow

from test_engine import write_pretrain  # noqa: E402  (same folder: pytest puts it on sys.path)


def write_sft(path, n):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            a, b = i % 7, (3 * i) % 5
            conv = [{"role": "user", "content": f"{a} + {b} = ?"},
                    {"role": "assistant", "content": f"{a} + {b} = {a + b}." + " ok" * (i % 4)}]
            f.write(json.dumps({"conversations": conv}, ensure_ascii=False) + "\n")
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env():
    # one intra-op thread per process: 2 ranks on a small shared box otherwise oversubscribe it badly
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}


def run_cmd(cmd, timeout=300):
    proc = subprocess.run([str(c) for c in cmd], cwd=REPO, env=child_env(), capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{out[-6000:]}"
    return out


def torchrun(nproc, *args):
    return run_cmd([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", nproc,
                    "--master_addr", "127.0.0.1", "--master_port", free_port(), WORKER, *args])


def metrics(out_dir, name="pretrain_32"):
    with open(os.path.join(out_dir, "logs", f"{name}.jsonl")) as f:
        return [json.loads(line) for line in f]


def reference_run(tmp_path, tok_dir, data, flags, monkeypatch, sgd=False):
    """The same training in this process, world size 1: returns (loss curve, flattened final parameters)."""
    if sgd:
        monkeypatch.setattr(engine, "build_optimizer",
                            lambda model, lr, weight_decay, device: torch.optim.SGD(model.parameters(), lr=lr))
    out = tmp_path / "reference"
    args = engine.build_parser("reference").parse_args(
        [*TINY, "--tokenizer_dir", tok_dir, "--data_path", data, "--out_dir", str(out),
         "--checkpoint_dir", str(out / "ckpt"), *map(str, flags)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = engine.setup(args, "pretrain")
        tok = load_tokenizer(tok_dir)
        model = run.build_model(vocab_size=len(tok))
        engine.train(run, model, PretrainDataset(data, tok, args.max_seq_len))
    finally:
        torch.set_num_threads(threads)
    monkeypatch.undo()
    return [r["loss"] for r in metrics(out)], torch.cat([p.detach().flatten() for p in model.parameters()])


COMMON = ["--max_seq_len", 48, "--epochs", 2, "--log_interval", 1, "--save_interval", 1000]


# ----------------------------------------------------------------------------------------------- 8. DDP
def test_ddp_two_ranks_stay_in_sync_and_match_one_process(tmp_path, tiny_tokenizer_dir, monkeypatch):
    data = write_pretrain(tmp_path / "pre.jsonl", 24)
    # 24 samples: 12 per rank, batch 2, accumulation 2 → 3 steps an epoch, 6 in all; plain SGD without clipping
    # so a wrong gradient scale (e.g. a missing ×world) cannot hide behind Adam's scale invariance.
    flags = [*COMMON, "--learning_rate", 0.5, "--grad_clip", 0]
    out = tmp_path / "ddp"
    result = tmp_path / "ddp.json"
    torchrun(2, *TINY, "--tokenizer_dir", tiny_tokenizer_dir, "--data_path", data, "--out_dir", out,
             "--checkpoint_dir", out / "ckpt", "--batch_size", 2, "--accumulation_steps", 2, *flags,
             "--sgd", "--result", result)
    res = json.loads(result.read_text())
    assert res["world_size"] == 2
    assert res["max_abs_diff"] == [0.0, 0.0], res  # every rank holds the same weights
    assert res["param_sum"][0] == res["param_sum"][1]

    curve = [r["loss"] for r in metrics(out)]
    assert len(curve) == 6 and res["summary"]["steps"] == 6
    assert curve[-1] < curve[0] - 0.3, curve  # it learns

    ref_curve, ref_params = reference_run(tmp_path, tiny_tokenizer_dir, data,
                                          ["--batch_size", 4, "--accumulation_steps", 2, *flags], monkeypatch,
                                          sgd=True)
    torch.testing.assert_close(torch.tensor(curve), torch.tensor(ref_curve), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.load(f"{result}.params.pt", weights_only=True), ref_params,
                               rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------- 9. DeepSpeed
def test_deepspeed_zero1_on_cpu(tmp_path, tiny_tokenizer_dir, monkeypatch):
    pytest.importorskip("deepspeed")
    data = write_pretrain(tmp_path / "pre.jsonl", 24)
    flags = [*COMMON, "--learning_rate", 1e-2]
    out = tmp_path / "ds"
    result = tmp_path / "ds.json"
    log = torchrun(2, *TINY, "--tokenizer_dir", tiny_tokenizer_dir, "--data_path", data, "--out_dir", out,
                   "--checkpoint_dir", out / "ckpt", "--batch_size", 2, "--accumulation_steps", 2, *flags,
                   "--deepspeed", os.path.join(REPO, "ds_config.json"), "--result", result)
    res = json.loads(result.read_text())
    # DeepSpeed really ran: its engine and ZeRO optimizer wrapped our own torch AdamW (so no CPU-Adam op to build)
    assert res["engine_type"] == "deepspeed.runtime.engine.DeepSpeedEngine"
    assert res["optimizer_type"].endswith("DeepSpeedZeroOptimizer")
    assert res["basic_optimizer_type"] == "AdamW"
    assert res["zero_stage"] == 1 and res["dp_world_size"] == 2
    assert "cpu_adam" not in log.lower()
    assert res["max_abs_diff"] == [0.0, 0.0], res
    tag = out / "ckpt" / "pretrain_32_resume.pth"  # DeepSpeed's checkpoint: a folder with one shard per rank
    assert (tag / "zero_pp_rank_0_mp_rank_00_optim_states.pt").is_file()
    assert (tag / "zero_pp_rank_1_mp_rank_00_optim_states.pt").is_file()
    assert (out / "pretrain_32.pth").is_file()

    curve = [r["loss"] for r in metrics(out)]
    assert len(curve) == 6 and curve[-1] < curve[0] - 0.3, curve
    # DeepSpeed's own accumulation (the engine scales by it) over 2 ranks = one process with batch 4 × 2
    ref_curve, ref_params = reference_run(tmp_path, tiny_tokenizer_dir, data,
                                          ["--batch_size", 4, "--accumulation_steps", 2, *flags], monkeypatch)
    torch.testing.assert_close(torch.tensor(curve), torch.tensor(ref_curve), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.load(f"{result}.params.pt", weights_only=True), ref_params,
                               rtol=1e-4, atol=5e-5)


# ----------------------------------------------------------------------------------------------- 10. end to end
def test_pretrain_then_sft_through_the_cli(tmp_path, tiny_tokenizer_dir):
    pre = write_pretrain(tmp_path / "pre.jsonl", 24)
    sft = write_sft(tmp_path / "sft.jsonl", 16)
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    common = [*TINY, "--tokenizer_dir", tiny_tokenizer_dir, "--out_dir", out, "--checkpoint_dir", ckpt,
              "--max_seq_len", 48, "--log_interval", 1]
    log = run_cmd([sys.executable, "train_pretrain.py", *common, "--data_path", pre, "--batch_size", 4,
                   "--accumulation_steps", 1, "--learning_rate", 1e-2])
    assert (out / "pretrain_32.pth").is_file() and "pretrain done" in log

    log = run_cmd([sys.executable, "train_full_sft.py", *common, "--data_path", sft, "--batch_size", 4,
                   "--epochs", 3, "--learning_rate", 5e-3])
    assert f"loaded {out / 'pretrain_32.pth'}" in log  # --from_weight pretrain by default
    assert (out / "full_sft_32.pth").is_file()
    curve = [r["loss"] for r in metrics(out, "full_sft_32")]
    assert len(curve) == 12
    assert sum(curve[-3:]) / 3 < sum(curve[:3]) / 3 - 0.5, curve


# ----------------------------------------------------------------------------------------------- 11. elastic runs
def test_elastic_restart_resumes_without_a_human(tmp_path, tiny_tokenizer_dir, monkeypatch):
    """torchrun --max-restarts 1: rank 1 dies at step 5; torchrun restarts both workers, which resume from the step-4
    checkpoint (--from_resume auto) and finish like an uninterrupted run."""
    data = write_pretrain(tmp_path / "pre.jsonl", 24)
    flags = [*COMMON, "--epochs", 3, "--learning_rate", 0.5, "--grad_clip", 0, "--save_interval", 2]
    out, result, marker = tmp_path / "elastic", tmp_path / "elastic.json", tmp_path / "died"
    # c10d rendezvous: a restarted group meets afresh (a static master address reuses the dead group's store)
    log = run_cmd([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", 2, "--max-restarts", 1,
                   "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{free_port()}", WORKER, *TINY,
                   "--tokenizer_dir", tiny_tokenizer_dir, "--data_path", data, "--out_dir", out,
                   "--checkpoint_dir", out / "ckpt", "--batch_size", 2, "--accumulation_steps", 2, *flags, "--sgd",
                   "--from_resume", "auto", "--crash_once", marker, "--crash_at", 10, "--result", result])
    assert marker.exists() and "resumed" in log  # it really died, and came back from the checkpoint
    res = json.loads(result.read_text())
    assert res["max_abs_diff"] == [0.0, 0.0] and res["summary"]["steps"] == 9
    curve = [r["loss"] for r in metrics(out)]
    ref_curve, ref_params = reference_run(tmp_path, tiny_tokenizer_dir, data,
                                          ["--batch_size", 4, "--accumulation_steps", 2, *flags], monkeypatch,
                                          sgd=True)
    assert len(curve) == 9  # one record per step, the replayed ones not twice
    torch.testing.assert_close(torch.tensor(curve), torch.tensor(ref_curve), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.load(f"{result}.params.pt", weights_only=True), ref_params,
                               rtol=1e-4, atol=1e-5)


def test_resume_on_another_number_of_processes(tmp_path, tiny_tokenizer_dir, monkeypatch):
    """2 processes → 1 → 2 at the same global batch (2 × 2 ranks, then 4 × 1) continue one schedule."""
    data = write_pretrain(tmp_path / "pre.jsonl", 24)
    flags = [*COMMON, "--epochs", 3, "--learning_rate", 0.5, "--grad_clip", 0, "--accumulation_steps", 2]
    out, result = tmp_path / "mixed", tmp_path / "mixed.json"
    common = [*TINY, "--tokenizer_dir", tiny_tokenizer_dir, "--data_path", data, "--out_dir", out,
              "--checkpoint_dir", out / "ckpt", *flags, "--sgd", "--from_resume", 1, "--result", result]
    torchrun(2, *common, "--batch_size", 2, "--stop_after_steps", 2)
    torchrun(1, *common, "--batch_size", 4, "--stop_after_steps", 5)
    torchrun(2, *common, "--batch_size", 2)
    res = json.loads(result.read_text())
    assert res["world_size"] == 2 and res["summary"]["steps"] == 9
    curve = [r["loss"] for r in metrics(out)]
    ref_curve, ref_params = reference_run(tmp_path, tiny_tokenizer_dir, data, ["--batch_size", 4, *flags],
                                          monkeypatch, sgd=True)
    torch.testing.assert_close(torch.tensor(curve), torch.tensor(ref_curve), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.load(f"{result}.params.pt", weights_only=True), ref_params,
                               rtol=1e-4, atol=1e-5)


def test_a_frozen_rank_stops_the_run_within_ddp_timeout(tmp_path, tiny_tokenizer_dir):
    """Rank 1 hangs at its third micro-batch: rank 0's next collective gives up after --ddp_timeout and
    the run ends with an error instead of hanging."""
    import time
    data = write_pretrain(tmp_path / "pre.jsonl", 24)
    out = tmp_path / "frozen"
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", str(free_port()), WORKER, *TINY, "--tokenizer_dir",
                           tiny_tokenizer_dir, "--data_path", data, "--out_dir", str(out), "--checkpoint_dir",
                           str(out / "ckpt"), "--batch_size", "2", *map(str, COMMON), "--ddp_timeout", "5",
                           "--freeze_at", "3", "--result", str(tmp_path / "r.json")],
                          cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=240)
    took = time.time() - t0
    assert proc.returncode != 0 and not (tmp_path / "r.json").exists()
    assert "timed out" in (proc.stdout + proc.stderr).lower() or "timeout" in (proc.stdout + proc.stderr).lower()
    assert took < 120, took  # torch's own default would wait 30 minutes (gloo) before giving up
