"""dpo.jsonl and dpo_heldout.jsonl: the right one-sentence answer against a wrong, rambling or repeated one.

The rejected replies are the typical failures of a small chat model, so preference training teaches that the value
matters and that one sentence is enough.
"""
from dataset.world.common import msg
from dataset.world.people import ATTRIBUTES, LANGS, answer_sentence, other_value, person_name, render_question
from dataset.world.templates import ECHO_QUESTIONS, HEDGE_ANSWERS


def dpo_pair(person, attr, lang, people, rng) -> dict:
    q = render_question(rng.choice(ECHO_QUESTIONS[lang][attr]), person, lang)
    good = answer_sentence(person, attr, lang)
    r = rng.random()
    if r < 0.6:  # a fluent but wrong fact: teaches that the VALUE matters
        kind, bad = "wrong", answer_sentence(person, attr, lang, value=other_value(person, attr, lang, people, rng))
    elif r < 0.8:  # rambling, no answer
        kind, bad = "hedge", rng.choice(HEDGE_ANSWERS[lang]).format(n=person_name(person, lang))
    else:  # the right fact, but repeated (a typical small-model failure)
        kind, bad = "repeat", ("" if lang == "zh" else " ").join([good] * rng.randint(3, 5))
    prompt = [msg("user", q)]
    return {"chosen": prompt + [msg("assistant", good)], "rejected": prompt + [msg("assistant", bad)],
            "rejected_kind": kind}


def build_dpo(people, rng, n, heldout: bool) -> list[dict]:
    split = "test" if heldout else "train"
    half = [p for p in people if p["split"] == split]
    facts = [(p, a, lang) for p in half for a in ATTRIBUTES for lang in LANGS]
    rng.shuffle(facts)
    rows = []
    if not facts:
        return rows
    for i in range(n):  # cycles through all facts before repeating one
        person, attr, lang = facts[i % len(facts)]
        row = dpo_pair(person, attr, lang, people, rng)
        kind = row.pop("rejected_kind")
        if heldout:
            row.update(answer=person[attr][lang], lang=lang, person=person_name(person, lang), attribute=attr,
                       rejected_kind=kind)
        rows.append(row)
    return rows
