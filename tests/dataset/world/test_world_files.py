"""Tests for dataset/world/files.py and the CLI: determinism, stats, sizes and the schema of every chat file."""
import os
import subprocess
import sys

from dataset.world import approx_tokens, make_world
from dataset.world.files import TRAINING_FILES, training_chars
from dataset.world.people import LANGS
from evals.answers import check_answer, check_fact_answer
from world_helpers import (JSONL_FILES, ROOT, all_files, check_messages, generated, out,  # noqa: F401  (fixtures)
                           read_jsonl)


# ---------------------------------------------------------------------------------------------------------------------
# determinism and speed
# ---------------------------------------------------------------------------------------------------------------------


def test_generation_is_fast(generated):
    assert generated[2] < 5.0


def test_same_seed_gives_identical_bytes(out, tmp_path):
    again = tmp_path / "again"
    make_world(again, seed=0)
    assert all_files(out) == all_files(again)
    for rel in all_files(out):
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_cli_under_another_hash_seed_gives_identical_bytes(out, tmp_path):
    # A separate process with a different PYTHONHASHSEED catches any dependence on set/dict-of-str ordering.
    cli_out = tmp_path / "cli"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-m", "dataset.world", "--out_dir", str(cli_out), "--seed", "0"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    for rel in all_files(out):
        assert (out / rel).read_bytes() == (cli_out / rel).read_bytes(), rel


def test_different_seed_gives_different_world(out, tmp_path):
    other = tmp_path / "seed1"
    make_world(other, seed=1)
    for rel in ("world.json", "pretrain.jsonl", "sft.jsonl", "qa_heldout.jsonl"):
        assert (out / rel).read_bytes() != (other / rel).read_bytes(), rel


def test_the_generator_never_imports_evals():
    # dataset/ must stand alone: evals/ imports dataset/, never the other way round.
    code = ("import sys, dataset.world, dataset.choice_format; "
            "bad = sorted(m for m in sys.modules if m == 'evals' or m.startswith('evals.')); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ---------------------------------------------------------------------------------------------------------------------
# stats and sizes
# ---------------------------------------------------------------------------------------------------------------------


def test_stats_describe_every_file(generated):
    out, stats, _ = generated
    assert sorted(stats["files"]) == all_files(out)
    for rel in JSONL_FILES:
        n_lines = len((out / rel).read_text(encoding="utf-8").splitlines())
        assert stats["files"][rel]["lines"] == n_lines, rel
    assert stats["n_train_people"] == stats["n_test_people"] == 100


def test_default_sizes_fit_the_quickstart_budget(generated):
    files = generated[1]["files"]
    assert 100_000 <= files["pretrain.jsonl"]["approx_tokens"] <= 300_000
    assert 50_000 <= files["sft.jsonl"]["approx_tokens"] <= 150_000
    assert 200 <= files["qa_heldout.jsonl"]["lines"] <= 400


def test_approx_tokens_counts_cjk_words_and_digits():
    assert approx_tokens("张伟") == 2
    assert approx_tokens("1995") == 4
    assert approx_tokens("hello world") == round(2 * 1.3)


# ---------------------------------------------------------------------------------------------------------------------
# schemas
# ---------------------------------------------------------------------------------------------------------------------


def test_chat_files_parse_and_match_schema(out):
    for rel in ("sft.jsonl", "lora_identity.jsonl", "reason.jsonl", "reason_direct.jsonl"):
        rows = read_jsonl(out / rel)
        assert rows, rel
        for row in rows:
            assert set(row) == {"conversations"}, rel
            check_messages(row["conversations"])


def test_eval_files_parse_and_match_schema(out):
    keys = {
        "qa_heldout.jsonl": {"conversations", "answer", "lang", "kind", "person", "attribute"},
        "qa_train_sample.jsonl": {"conversations", "answer", "lang", "kind", "person", "attribute"},
        "lora_identity_heldout.jsonl": {"conversations", "answer", "lang", "kind"},
        "reason_heldout.jsonl": {"conversations", "answer", "lang", "kind"},
    }
    for rel, expected in keys.items():
        rows = read_jsonl(out / rel)
        assert rows, rel
        for row in rows:
            assert set(row) == expected, rel
            check_messages(row["conversations"])
            assert row["lang"] in LANGS
            assert check_answer(row["conversations"][-1]["content"], row["answer"]), row
            if rel.startswith("qa_"):  # fact QA is scored on the first sentence
                assert check_fact_answer(row["conversations"][-1]["content"], row["answer"]), row


def test_training_chars_read_training_files_only(out):
    assert all((out / name).is_file() for name in TRAINING_FILES)
    assert not any("heldout" in name or "sample" in name for name in TRAINING_FILES)
    chars = training_chars(out)
    assert all(ord(ch) > 127 for ch in chars) and list(chars) == sorted(set(chars))
    for ch in "二五✓多":  # weekday names, option marks, arithmetic problems
        assert ch in chars
    # a character only a held-out file uses (the new identity's held-out phrasings) stays out
    assert "吧" in (out / "lora_identity_heldout.jsonl").read_text(encoding="utf-8") and "吧" not in chars
