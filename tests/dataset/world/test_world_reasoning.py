"""Tests for dataset/world/reasoning.py: correct traces, matching direct answers, held-out problems never trained."""
import re
from collections import Counter

from dataset.world.reasoning import REASON_KINDS, build_reason, reason_problem_space
from evals.answers import split_reasoning
from world_helpers import generated, out, read_jsonl, user_texts  # noqa: F401  (fixtures)

THINK_RE = re.compile(r"\A<think>\n(.+)\n</think>\n<answer>\n(.+)\n</answer>\Z", re.S)
DIRECT_RE = re.compile(r"\A<answer>\n(.+)\n</answer>\Z", re.S)
EQUATION_RE = re.compile(r"(\d+(?:\s*[-+×]\s*\d+)+)\s*=\s*(\d+)")


def check_trace(think):
    equations = EQUATION_RE.findall(think)
    assert equations, think
    for lhs, rhs in equations:
        assert eval(lhs.replace("×", "*")) == int(rhs), (lhs, rhs)  # lhs holds only digits and + - *
    for a, b, c, d in re.findall(r"从(\d+)年到(\d+)年：(\d+)-(\d+)=", think) + re.findall(
            r"From (\d+) to (\d+): (\d+) - (\d+) =", think):
        assert (a, b) == (d, c), think  # the age step subtracts the right years


def test_reason_traces_are_well_formed_and_correct(out):
    reason, direct = read_jsonl(out / "reason.jsonl"), read_jsonl(out / "reason_direct.jsonl")
    assert len(reason) == len(direct) == 2000
    for r, d in zip(reason, direct):
        assert r["conversations"][:-1] == d["conversations"][:-1], "same questions, same order"
        m, md = THINK_RE.match(r["conversations"][-1]["content"]), DIRECT_RE.match(d["conversations"][-1]["content"])
        assert m and md
        assert m.group(2) == md.group(1)
        check_trace(m.group(1))


def test_reason_heldout_is_new_and_consistent(out):
    train_questions = set(user_texts(read_jsonl(out / "reason.jsonl")))
    heldout = read_jsonl(out / "reason_heldout.jsonl")
    questions = user_texts(heldout)
    assert len(set(questions)) == len(questions) == 200
    assert not set(questions) & train_questions
    assert set(Counter(r["kind"] for r in heldout)) == set(REASON_KINDS)
    for row in heldout:
        think, answer = split_reasoning(row["conversations"][-1]["content"])
        assert answer == row["answer"]
        check_trace(think)


def test_reason_problem_spaces_are_split_not_shared():
    # Held-out problems must need arithmetic that was never worked out in training: check the key split directly.
    rows_train, _, rows_heldout, _ = build_reason(seed=0, n_train=600, n_heldout=120)
    assert not set(user_texts(rows_train)) & set(user_texts(rows_heldout))
    for kind in REASON_KINDS:
        assert len(reason_problem_space(kind)) >= 40, kind
