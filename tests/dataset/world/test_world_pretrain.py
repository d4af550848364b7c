"""Tests for dataset/world/pretrain.py: short documents, a fresh held-out file, Q&A only about the train half."""
from dataset.world import approx_tokens
from world_helpers import generated, names_in, out, people_of, read_jsonl, world  # noqa: F401  (fixtures)


def test_pretrain_documents_are_short(out):
    for row in read_jsonl(out / "pretrain.jsonl"):
        assert set(row) == {"text"}
        assert 0 < approx_tokens(row["text"]) < 256


def test_pretrain_heldout_is_fresh(out):
    seen = {r["text"] for r in read_jsonl(out / "pretrain.jsonl")}
    heldout = read_jsonl(out / "pretrain_heldout.jsonl")
    assert heldout and all(set(r) == {"text"} and r["text"] not in seen for r in heldout)


def test_pretrain_qa_text_is_only_about_train_people(out, world):
    qa_docs = [r["text"] for r in read_jsonl(out / "pretrain.jsonl") if r["text"].startswith(("问：", "Q: "))]
    assert len(qa_docs) == 200  # 100 train people x 2 languages x qa_copies=1
    assert names_in(qa_docs, people_of(world, "test")) == []


def test_every_person_has_bios_in_pretrain(out, world):
    text = "\n".join(r["text"] for r in read_jsonl(out / "pretrain.jsonl"))
    for p in world["people"]:
        assert text.count(p["name_zh"]) >= 5 and text.count(p["name_en"]) >= 5


def test_pretrain_teaches_every_equation_the_worked_solutions_write(out):
    """Every equation of every reasoning problem's trace (train and held-out number combinations, both languages) is
    a fact in pretrain.jsonl, in the spelling the trace uses, and every fact there is true."""
    import random
    import re

    from dataset.world.reasoning import REASON_KINDS, reason_problem_space, render_reason
    equation = re.compile(r"\d+(?: ?[-+×] ?\d+)+ ?= ?\d+")
    written = set(equation.findall("\n".join(r["text"] for r in read_jsonl(out / "pretrain.jsonl"))))
    for fact in written:
        left, right = fact.replace("×", "*").split("=")
        assert eval(left) == int(right), fact  # noqa: S307 (digits and + - * only, matched above)
    rng, needed = random.Random(0), set()
    for kind in REASON_KINDS:
        for key in reason_problem_space(kind):
            for lang in ("zh", "en"):
                _, steps, _ = render_reason(kind, key, lang, rng)
                needed.update(e for step in steps for e in equation.findall(step))
    assert len(needed) > 1000 and sorted(needed - written) == []
