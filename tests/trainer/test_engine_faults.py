"""Faults the engine must survive without writing a poisoned or misleading checkpoint: runaway updates, killed saves,
resumes with other flags, crashes between a save and the next log line."""
import glob
import os
import re

import pytest
import torch

from model.atomic_file import _tmp_prefix
from model.weights import nonfinite_tensors
from trainer import engine
from trainer.losses import CausalLMLoss

from test_engine import make_args, read_metrics, run_stage, write_pretrain  # noqa: E402  (same folder)


def test_runaway_updates_never_reach_a_checkpoint(tmp_path, tiny_tokenizer_dir):
    # lr 1e6: the first updates turn the weights non-finite before (or without) the loss showing it
    data = write_pretrain(tmp_path / "pre.jsonl", 40)
    args = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 4, "--max_steps", 10, "--save_interval", 2,
                     "--log_interval", 1, "--learning_rate", 1e6, "--grad_clip", 0)
    run = engine.setup(args, "pretrain")
    with pytest.raises(FloatingPointError) as err:
        run_stage(args)
    msg = str(err.value)
    for path in (run.resume_file(), run.weight_file()):
        if os.path.exists(path):  # whatever was written before the blow-up is finite
            assert not nonfinite_tensors(torch.load(path, weights_only=True)), path
    named = re.search(r"The last good checkpoint is (\S+)\.", msg)
    assert (named and os.path.isfile(named[1])) or "No checkpoint was written yet" in msg, msg


def test_gradient_norm_blow_up_stops_before_the_update(tmp_path, tiny_tokenizer_dir):
    class InfGrad(CausalLMLoss):
        def __call__(self, model, batch):
            loss_sum, metrics = super().__call__(model, batch)
            # the loss stays finite; only the gradient is infinite
            return loss_sum + _InfBackward.apply(next(model.parameters()).sum()), metrics

    class _InfBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 0

        @staticmethod
        def backward(ctx, g):
            return g * float("inf")

    data = write_pretrain(tmp_path / "pre.jsonl", 8)
    args = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 2, "--max_steps", 3, "--log_interval", 1)
    with pytest.raises(FloatingPointError, match="gradient norm became inf at step 1.*No checkpoint was written yet"):
        run_stage(args, loss_fn=InfGrad())


def test_stale_temp_files_of_killed_saves_are_removed_at_start(tmp_path, tiny_tokenizer_dir):
    data = write_pretrain(tmp_path / "pre.jsonl", 8)
    args = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 2, "--max_steps", 2)
    run = engine.setup(args, "pretrain")
    os.makedirs(os.path.dirname(run.resume_file()), exist_ok=True)
    os.makedirs(os.path.dirname(run.weight_file()), exist_ok=True)
    dead = [_tmp_prefix(run.resume_file()) + "999999999", _tmp_prefix(run.weight_file()) + "999999998"]
    alive = _tmp_prefix(run.resume_file()) + str(os.getppid())  # a writer that still runs keeps its file
    for path in (*dead, alive):
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
    run_stage(args)
    assert not any(os.path.exists(p) for p in dead) and os.path.exists(alive)


@pytest.mark.parametrize("change, what", [
    ({"--batch_size": 4}, "--batch_size × --accumulation_steps × processes: 2 in the checkpoint, 4 now"),
    ({"--accumulation_steps": 2}, "--batch_size × --accumulation_steps × processes"),
    ({"--max_seq_len": 32}, "--max_seq_len: 48 in the checkpoint, 32 now"),
    ({"--max_steps": 20}, "--epochs / --max_steps"),
    ({"--seed": 7}, "--seed"),
    ({"--data_path": "other"}, "the data file's"),
    ({"--group_by_length": 1}, "--group_by_length: 0 in the checkpoint, 1 now"),
])
def test_resume_refuses_a_different_schedule(tmp_path, tiny_tokenizer_dir, change, what):
    data = write_pretrain(tmp_path / "pre.jsonl", 40)
    write_pretrain(tmp_path / "other", 41)
    base = {"--batch_size": 2, "--max_steps": 10, "--data_path": data}
    run_stage(make_args(tmp_path, tiny_tokenizer_dir, data, *sum(base.items(), ()), "--stop_after_steps", 3))
    flags = {**base, **change}
    if change.get("--data_path"):
        flags["--data_path"] = str(tmp_path / "other")
    args = make_args(tmp_path, tiny_tokenizer_dir, data, *sum(flags.items(), ()), "--from_resume", 1)
    with pytest.raises(SystemExit, match=re.escape(what)):
        run_stage(args)


def test_resume_accepts_the_same_global_batch_in_another_shape(tmp_path, tiny_tokenizer_dir):
    """batch 2 × accumulation 2 → batch 4 × accumulation 1: the same samples per step, so the same schedule."""
    data = write_pretrain(tmp_path / "pre.jsonl", 40)
    full = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 4, "--max_steps", 8, "--log_interval", 1,
                     out="full")
    _, _, ref = run_stage(full)
    first = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 2, "--accumulation_steps", 2,
                      "--max_steps", 8, "--log_interval", 1, "--stop_after_steps", 3)
    run_stage(first)
    second = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 4, "--max_steps", 8, "--log_interval", 1,
                       "--from_resume", 1)
    _, _, summary = run_stage(second)
    assert summary["steps"] == 8
    full_curve = [r["loss"] for r in read_metrics(tmp_path / "full" / "logs" / "pretrain_32.jsonl")]
    curve = [r["loss"] for r in read_metrics(tmp_path / "out" / "logs" / "pretrain_32.jsonl")]
    assert [round(x, 4) for x in curve] == pytest.approx([round(x, 4) for x in full_curve], abs=2e-3)
    assert ref["final_loss"] == pytest.approx(summary["final_loss"], abs=2e-3)


class CrashAt(CausalLMLoss):
    """A process killed between a checkpoint and the next: raises at the n-th micro-batch."""

    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, model, batch):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt("killed")
        return super().__call__(model, batch)


def test_metrics_hold_one_record_per_step_after_crash_resumes(tmp_path, tiny_tokenizer_dir):
    data = write_pretrain(tmp_path / "pre.jsonl", 40)
    flags = ["--batch_size", 2, "--max_steps", 12, "--save_interval", 4, "--log_interval", 1]
    for crash_at in (7, 6):  # saved at step 4, logged 5-6, killed; then saved at 8, logged up to 9, killed
        with pytest.raises(KeyboardInterrupt):
            args = make_args(tmp_path, tiny_tokenizer_dir, data, *flags, "--from_resume", 1)
            run_stage(args, loss_fn=CrashAt(crash_at))
    _, _, summary = run_stage(make_args(tmp_path, tiny_tokenizer_dir, data, *flags, "--from_resume", 1))
    steps = [r["step"] for r in read_metrics(tmp_path / "out" / "logs" / "pretrain_32.jsonl")]
    assert steps == list(range(1, 13)) and summary["steps"] == 12


def test_from_resume_auto_and_ddp_timeout_flags():
    p = engine.build_parser("x")
    assert p.parse_args(["--from_resume", "auto"]).from_resume == 1
    assert p.parse_args([]).ddp_timeout == 180
    with pytest.raises(SystemExit):
        p.parse_args(["--from_resume", "2"])


def test_no_temp_files_left_after_a_clean_run(tmp_path, tiny_tokenizer_dir):
    data = write_pretrain(tmp_path / "pre.jsonl", 8)
    run_stage(make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 2, "--max_steps", 3,
                        "--save_interval", 1))
    assert not glob.glob(str(tmp_path / "**" / "*.tmp*"), recursive=True)
