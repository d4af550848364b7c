"""Tests for dataset/world/exam.py: the C-Eval layout, balanced and correct answer letters, both halves examined."""
import re
from collections import Counter

from dataset.world.exam import EXAM_SUBJECTS
from dataset.world.people import ATTRIBUTES, LANGS, render_question
from dataset.world.templates import ECHO_QUESTIONS
from world_helpers import generated, out, read_csv, world  # noqa: F401  (fixtures)


def test_exam_layout_and_answers(out, world):
    truth = {}
    for p in world["people"]:
        for lang in LANGS:
            for attr in ATTRIBUTES:
                truth[render_question(ECHO_QUESTIONS[lang][attr][0], p, lang)] = p[attr][lang]
    for subject in EXAM_SUBJECTS:
        for split, n in (("dev", 5), ("val", 200), ("test", 200)):
            rows = read_csv(out / "exam" / split / f"{subject}_{split}.csv")
            header = ["id", "question", "A", "B", "C", "D"] + ([] if split == "test" else ["answer"])
            assert rows[0] == header
            body = rows[1:]
            assert len(body) == n and [r[0] for r in body] == [str(i) for i in range(n)]
            for r in body:
                assert len(r) == len(header) and len(set(r[2:6])) == 4, r
            if split == "test":
                continue
            letters = Counter(r[6] for r in body)
            assert set(letters) <= set("ABCD")
            assert max(letters.values()) - min(letters.get(x, 0) for x in "ABCD") <= 1
            for r in body:
                correct = r[2 + "ABCD".index(r[6])]
                if subject == "world_arithmetic":
                    assert eval(r[1].removesuffix(" = ?").replace("×", "*")) == int(correct)
                else:
                    assert truth[r[1]] == correct, r


def test_exam_covers_both_halves(out, world):
    names = {p["name_zh"]: p["split"] for p in world["people"]}
    splits = Counter(names[re.match(r"\w{3}", r[1]).group(0)]
                     for r in read_csv(out / "exam/val/world_people_zh_val.csv")[1:])
    assert splits["train"] > 50 and splits["test"] > 50
