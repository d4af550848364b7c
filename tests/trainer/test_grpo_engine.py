"""GRPO through the shared engine: data parallel equals one process, resume equals an uninterrupted run, and the
recipes' command lines (train_grpo.py, train_ppo.py) run, save, resume and refuse bad flags."""
import json
import os
import sys

import pytest
import torch

from test_distributed import REPO, TINY, free_port, run_cmd  # same folder: pytest puts it on sys.path

pytestmark = pytest.mark.slow
WORKER = os.path.join(REPO, "tests", "trainer", "grpo_check.py")
TOKENIZER = os.path.join(REPO, "model")


def write_prompts(path, n=8):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            conv = [{"role": "user", "content": f"{i} + {i % 3} = ?"}, {"role": "assistant", "content": "x"}]
            f.write(json.dumps({"conversations": conv, "answer": str(i + i % 3)}) + "\n")
    return str(path)


def test_two_processes_equal_one(tmp_path):
    data = write_prompts(tmp_path / "rl.jsonl")
    flags = [*TINY, "--tokenizer_dir", TOKENIZER, "--data_path", data, "--max_steps", "2", "--learning_rate", "0.5",
             "--log_interval", "1", "--save_interval", "1000", "--seed", "3"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_cmd([sys.executable, WORKER, "--result", one / "r.json", "--out_dir", one, "--checkpoint_dir", one / "c",
             "--batch_size", "4", *flags])
    run_cmd([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", 2, "--master_addr", "127.0.0.1",
             "--master_port", free_port(), WORKER, "--result", two / "r.json", "--out_dir", two, "--checkpoint_dir", two / "c", "--batch_size", "2",
             *flags])
    p1, p2 = torch.load(str(one / "r.json") + ".params.pt"), torch.load(str(two / "r.json") + ".params.pt")
    assert p1.shape == p2.shape
    assert (p1 - p2).abs().max().item() < 1e-5
    # and the run did move the weights (the equality is not two untouched models)
    curve = [json.loads(line) for line in open(one / "logs" / "grpo_32.jsonl")]
    assert curve[0]["adv_abs"] > 0 and curve[-1]["kl"] > 0


def grpo_cli(tmp_path, *extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_prompts(tmp_path / "rl.jsonl", 16)
    out = tmp_path / "out"
    return run_cmd([sys.executable, os.path.join(REPO, "train_grpo.py"), *TINY, "--tokenizer_dir", TOKENIZER,
                    "--data_path", data, "--out_dir", out, "--checkpoint_dir", out / "c", "--batch_size", "2",
                    "--num_generations", "4", "--max_gen_len", "8", "--reward_funcs", "repetition,length",
                    "--learning_rate", "1e-3", "--log_interval", "1", "--save_interval", "2", "--seed", "1",
                    "--from_weight", "none", *extra]), out


def test_resume_reproduces_uninterrupted_run(tmp_path):
    _, full = grpo_cli(tmp_path / "a", "--max_steps", "4")
    grpo_cli(tmp_path / "b", "--max_steps", "4", "--stop_after_steps", "2")
    out, resumed = grpo_cli(tmp_path / "b", "--max_steps", "4", "--from_resume", "1")
    assert "resumed" in out
    curve = lambda d: [json.loads(line) for line in open(d / "logs" / "grpo_32.jsonl")]  # noqa: E731
    a, b = curve(full), curve(resumed)
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        for key in ("loss", "reward", "kl", "completion_len"):
            assert ra[key] == pytest.approx(rb[key], abs=1e-6), (ra["step"], key)
    wa = torch.load(full / "grpo_32.pth", weights_only=True)
    wb = torch.load(resumed / "grpo_32.pth", weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ppo_cli_saves_policy_and_resumes_critic(tmp_path):
    data = write_prompts(tmp_path / "rl.jsonl", 16)
    out = tmp_path / "out"
    base = [sys.executable, os.path.join(REPO, "train_ppo.py"), *TINY, "--tokenizer_dir", TOKENIZER, "--data_path",
            data, "--out_dir", out, "--checkpoint_dir", out / "c", "--batch_size", "2", "--num_generations", "2",
            "--max_gen_len", "8", "--reward_funcs", "repetition", "--learning_rate", "1e-3", "--save_interval", "2",
            "--from_weight", "none", "--max_steps", "4"]
    run_cmd([*base, "--stop_after_steps", "2"])
    state = torch.load(out / "c" / "ppo_32_resume.pth", weights_only=True)
    assert any(k.startswith("critic.") for k in state["model"]) and "value_head.weight" in state["model"]
    text = run_cmd([*base, "--from_resume", "1"])
    assert "resumed" in text
    weights = torch.load(out / "ppo_32.pth", weights_only=True)
    assert "lm_head.weight" in weights and not any(k.startswith(("critic", "value_head", "actor")) for k in weights)


@pytest.mark.parametrize("flags, message", [
    (["--reward_funcs", "answr"], "unknown reward 'answr'"),
    (["--reward_weights", "1,2,3"], "3 values for 2 --reward_funcs"),
    (["--reward_weights", "1,nan"], "must be finite"),
    (["--num_generations", "0"], "--num_generations must be >= 1"),
    (["--num_iterations", "0"], "--num_iterations must be > 0"),
    (["--epsilon", "-0.1"], "--epsilon must be > 0"),
    (["--temperature", "0"], "--temperature must be > 0"),
    (["--rollout_backend", "openai"], "needs --rollout_url"),
    (["--rollout_backend", "openai", "--rollout_url", "http://127.0.0.1:9/v1", "--rollout_weights_dir", "/tmp"],
     "needs --rollout_api_key"),
    (["--reward_model_path", "/nonexistent/rm"], "--reward_model_path"),
])
def test_bad_flags_are_named(tmp_path, flags, message, refusal):
    check_refused(refusal, "train_grpo.py", tmp_path, flags, message)


@pytest.mark.parametrize("flags, message", [
    (["--ppo_epochs", "0"], "--ppo_epochs must be > 0"),
    (["--lam", "0"], "--lam must be > 0"),
    (["--reward_funcs", "nope"], "unknown reward 'nope'"),
])
def test_bad_ppo_flags_are_named(tmp_path, flags, message, refusal):
    check_refused(refusal, "train_ppo.py", tmp_path, flags, message)


def check_refused(refusal, script, tmp_path, flags, message):
    data = write_prompts(tmp_path / "rl.jsonl")
    said = refusal(script, *TINY, "--tokenizer_dir", TOKENIZER, "--data_path", data, "--out_dir", tmp_path,
                   "--from_weight", "none", "--reward_funcs", "answer,format", *flags)
    assert message in said, said[-2000:]
