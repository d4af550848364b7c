"""Multiple-choice items: the C-Eval-layout exam (exam/{dev,val,test}/*.csv) and the choice practice for training.

Practice items use exactly the exam's prompt format (dataset/choice_format.py), so the answer-with-a-letter
convention the exam is scored by is learned in pretraining and SFT.
"""
import random

from dataset.choice_format import LETTERS, format_question
from dataset.world.common import seeded_rng
from dataset.world.people import ATTRIBUTES, LANGS, render_question, wrong_values
from dataset.world.templates import ECHO_QUESTIONS

EXAM_HEADER = ["id", "question", "A", "B", "C", "D", "answer"]
EXAM_SUBJECTS = ("world_people_zh", "world_people_en", "world_arithmetic")


def _balanced_letters(n: int, rng: random.Random) -> list[str]:
    letters = (list(LETTERS) * (n // 4 + 1))[:n]
    rng.shuffle(letters)
    return letters


def _mc_row(question: str, correct: str, distractors: list[str], letter: str, rng: random.Random) -> dict:
    options = list(distractors)
    rng.shuffle(options)
    options.insert(LETTERS.index(letter), correct)
    return {"question": question, **dict(zip(LETTERS, options)), "answer": letter}


def choice_items(train_people, people, rng, per_person) -> list[tuple[str, str, str]]:
    """(lang, prompt, letter): multiple-choice practice about train-half people in exactly the exam's prompt format,
    so the answer-with-a-letter convention the exam is scored by is learned (pretraining text and SFT both use it)."""
    items = []
    for person in train_people:
        for _ in range(per_person):
            lang, attr = rng.choice(LANGS), rng.choice(ATTRIBUTES)
            question = render_question(rng.choice(ECHO_QUESTIONS[lang][attr]), person, lang)
            distractors = wrong_values(person, attr, lang, people, rng)
            row = _mc_row(question, person[attr][lang], distractors, rng.choice(LETTERS), rng)
            items.append((lang, format_question(row["question"], [row[k] for k in LETTERS]), row["answer"]))
    return items


def _people_exam_items(people, lang, rng) -> list:
    facts = [(p, a) for p in people for a in ATTRIBUTES]  # ALL people: the exam probes pretraining knowledge
    rng.shuffle(facts)
    items = []
    for person, attr in facts:
        question = render_question(ECHO_QUESTIONS[lang][attr][0], person, lang)
        correct = person[attr][lang]
        distractors = wrong_values(person, attr, lang, people, rng)
        items.append((question, correct, distractors))
    return items


def _arithmetic_exam_items(rng) -> list:
    items = []
    for a in range(1, 10):
        for b in range(1, 10):
            items.append((f"{a} + {b} = ?", a + b))
            items.append((f"{a} × {b} = ?", a * b))
            if a >= b:
                items.append((f"{a} - {b} = ?", a - b))
            for c in range(1, min(a + b, 9) + 1, 4):  # two-step, never negative
                items.append((f"{a} + {b} - {c} = ?", a + b - c))
    rng.shuffle(items)
    out = []
    for question, value in items:
        wrong = [value + off for off in (-3, -2, -1, 1, 2, 3) if value + off >= 0]
        out.append((question, str(value), [str(x) for x in rng.sample(wrong, 3)]))
    return out


def build_exam(people, seed, n_val, n_test) -> dict[str, dict[str, list[dict]]]:
    """subject -> split -> rows.  dev has 5 rows (C-Eval's few-shot examples); test rows carry no answer."""
    exam = {}
    for subject in EXAM_SUBJECTS:
        rng = seeded_rng(seed, "exam:" + subject)
        items = _arithmetic_exam_items(rng) if subject == "world_arithmetic" \
            else _people_exam_items(people, subject.rsplit("_", 1)[1], rng)
        exam[subject], start = {}, 0
        for split, n in (("dev", 5), ("val", n_val), ("test", n_test)):
            letters = _balanced_letters(n, rng)
            rows = []
            for i in range(n):
                question, correct, distractors = items[(start + i) % len(items)]
                row = {"id": i, **_mc_row(question, correct, distractors, letters[i], rng)}
                if split == "test":
                    del row["answer"]
                rows.append(row)
            exam[subject][split], start = rows, start + n
    return exam
