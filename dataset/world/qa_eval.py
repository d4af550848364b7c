"""qa_heldout.jsonl and qa_train_sample.jsonl: one fact question per line, with the expected value for scoring.

"echo" questions reuse the trained wording, "paraphrase" questions use wording no training file contains; both are
reported, so generalization to new wording is measured apart from recall.
"""
from dataset.world.common import msg
from dataset.world.people import ATTRIBUTES, LANGS, answer_sentence, person_name, render_question
from dataset.world.templates import ECHO_QUESTIONS, PARAPHRASE_QUESTIONS


def _spread(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` near-equal integers."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def build_qa_eval(people, rng, n) -> list[dict]:
    """n questions balanced over (lang, kind) and, inside each cell, over attributes; no (person, attr) repeats
    within a cell."""
    rows = []
    cells = [(lang, kind) for lang in LANGS for kind in ("echo", "paraphrase")]
    for (lang, kind), n_cell in zip(cells, _spread(n, len(cells))):
        templates = ECHO_QUESTIONS if kind == "echo" else PARAPHRASE_QUESTIONS
        for attr, n_attr in zip(ATTRIBUTES, _spread(n_cell, len(ATTRIBUTES))):
            chosen = rng.sample(people, min(n_attr, len(people)))
            for person in chosen:
                q = render_question(rng.choice(templates[lang][attr]), person, lang)
                rows.append({
                    "conversations": [msg("user", q), msg("assistant", answer_sentence(person, attr, lang))],
                    "answer": person[attr][lang], "lang": lang, "kind": kind,
                    "person": person_name(person, lang), "attribute": attr,
                })
    rng.shuffle(rows)
    return rows
