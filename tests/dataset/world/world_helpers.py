"""Shared fixtures and readers for the tests of dataset/world/: one world (default arguments, seed 0) is generated
once per test session (a few seconds) and shared by every test that reads it; no test writes into it.

Test modules import the fixtures from here (a conftest.py in this folder would shadow the root one for
`from conftest import ...` in other test folders).
"""
import csv
import json
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # normally the rootdir conftest does this; keep the helpers importable on their own
    sys.path.insert(0, str(ROOT))

from dataset.world import make_world  # noqa: E402

JSONL_FILES = [
    "pretrain.jsonl", "pretrain_heldout.jsonl", "sft.jsonl", "qa_heldout.jsonl", "qa_train_sample.jsonl", "dpo.jsonl",
    "dpo_heldout.jsonl", "lora_identity.jsonl", "lora_identity_heldout.jsonl", "reason.jsonl", "reason_direct.jsonl",
    "reason_heldout.jsonl",
]
ROLES = {"system", "user", "assistant"}


_GENERATED = []  # pytest makes a fixture per module that imports it; this keeps it to one world per session


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    if not _GENERATED:
        out = tmp_path_factory.mktemp("world")
        start = time.perf_counter()
        stats = make_world(out, seed=0)
        _GENERATED.append((out, stats, time.perf_counter() - start))
    return _GENERATED[0]


@pytest.fixture(scope="session")
def out(generated):
    return generated[0]


@pytest.fixture(scope="session")
def world(out):
    return json.loads((out / "world.json").read_text(encoding="utf-8"))


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def all_files(root):
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())


def people_of(world, split):
    return [p for p in world["people"] if p["split"] == split]


def user_texts(rows, key="conversations"):
    return [m["content"] for r in rows for m in r[key] if m["role"] == "user"]


def all_texts(rows):
    texts = []
    for r in rows:
        if "text" in r:
            texts.append(r["text"])
        for key in ("conversations", "chosen", "rejected"):
            texts += [m["content"] for m in r.get(key, [])]
    return texts


def names_in(texts, people):
    """The names (zh or en) of `people` that occur anywhere in `texts` (plain substring search: conservative, fast;
    no name is a prefix of another, see test_names_are_unique_and_never_contain_a_value)."""
    joined = "\n".join(texts)
    return [name for p in people for name in (p["name_zh"], p["name_en"]) if name in joined]


def check_messages(msgs):
    assert msgs, "empty conversation"
    assert all(set(m) == {"role", "content"} and m["role"] in ROLES for m in msgs)
    assert all(isinstance(m["content"], str) and m["content"].strip() for m in msgs)
    body = msgs[1:] if msgs[0]["role"] == "system" else msgs
    assert all(m["role"] != "system" for m in body), "system only as the first message"
    assert [m["role"] for m in body] == ["user", "assistant"] * (len(body) // 2), "user/assistant must alternate"
    assert body[-1]["role"] == "assistant"
