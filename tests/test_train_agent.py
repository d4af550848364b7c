"""train_agent.py's command line: a short run from random weights on world agent rows trains, logs the agent reward
and saves; bad flags and bad inputs are refused with a message that names them."""
import json
import os
import subprocess
import sys

import pytest

from dataset.world import make_world

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4", "--num_key_value_heads", "2",
        "--dtype", "float32", "--device", "cpu"]
TOKENIZER = os.path.join(REPO, "model")  # the shipped tokenizer has the tool tokens


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    make_world(out, seed=0, n_people=20, n_tool_sft=10, n_agent_rl=16, n_directory=20)
    return str(out)


def argv(tmp_path, world, *flags, data=None, tokenizer=TOKENIZER):
    return [*TINY, "--tokenizer_dir", tokenizer, "--data_path", data or os.path.join(world, "agent_rl.jsonl"),
            "--world_dir", world, "--out_dir", str(tmp_path), "--from_weight", "none", "--batch_size", "2",
            "--num_generations", "2", "--max_gen_len", "12", "--max_seq_len", "256", "--learning_rate", "1e-3",
            "--max_steps", "2", *flags]


def run(tmp_path, world, *flags, data=None, tokenizer=TOKENIZER):
    return subprocess.run([sys.executable, os.path.join(REPO, "train_agent.py"),
                           *argv(tmp_path, world, *flags, data=data, tokenizer=tokenizer)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_a_short_run_trains_logs_and_saves(tmp_path, world):
    proc = run(tmp_path, world, "--log_interval", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isfile(tmp_path / "agent_32.pth")
    rows = [json.loads(line) for line in open(tmp_path / "logs" / "agent_32.jsonl", encoding="utf-8")]
    assert len(rows) == 2
    for key in ("reward", "reward/correct", "reward/clean", "reward/calls", "kl", "completion_len"):
        assert key in rows[-1], rows[-1].keys()


@pytest.mark.parametrize("flags, message", [
    (["--max_turns", "0"], "--max_turns must be > 0"),
    (["--max_total_len", "0"], "--max_total_len must be > 0"),
    (["--tool_timeout", "0"], "--tool_timeout must be > 0"),
    (["--format_weight", "-1"], "--format_weight must be >= 0"),
    (["--num_generations", "0"], "--num_generations must be >= 1"),
    (["--temperature", "0"], "--temperature must be > 0"),
    (["--epsilon", "-1"], "--epsilon must be > 0"),
])
def test_bad_flags_are_named(tmp_path, world, flags, message, refusal):
    said = refusal("train_agent.py", *argv(tmp_path, world, *flags))
    assert message in said, said[-2000:]


def test_bad_inputs_are_named(tmp_path, world, no_tool_tokenizer_dir, refusal):
    said = refusal("train_agent.py", *argv(tmp_path, str(tmp_path / "nowhere"),
                                           data=os.path.join(world, "agent_rl.jsonl")))
    assert "world.json" in said, said
    rows = tmp_path / "rows.jsonl"
    good = open(os.path.join(world, "agent_rl.jsonl"), encoding="utf-8").readline()
    bad = json.loads(good)
    del bad["gt"]
    rows.write_text(good + json.dumps(bad) + "\n", encoding="utf-8")
    said = refusal("train_agent.py", *argv(tmp_path, world, data=str(rows)))
    assert f"{rows}:2" in said and "'gt'" in said, said[-2000:]
    bad["gt"] = [True]
    rows.write_text(good + json.dumps(bad) + "\n", encoding="utf-8")
    assert "'gt' must be a non-empty list" in refusal("train_agent.py", *argv(tmp_path, world, data=str(rows)))
    said = refusal("train_agent.py", *argv(tmp_path, world, tokenizer=no_tool_tokenizer_dir))
    assert "tool tokens" in said, said
