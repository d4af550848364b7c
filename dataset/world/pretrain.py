"""pretrain.jsonl and pretrain_heldout.jsonl: bios of everybody, Q&A about the train half, choice practice, a little
general text, arithmetic facts; the held-out file holds fresh bio renderings for a held-out LM loss.

The corpus is small because it is meant to be read many times: a small model needs many sightings of a fact, in
varied wording, to store it.  Q&A text about the train half teaches answering from facts read in bios, which then
works for the held-out half too.  The arithmetic facts are what a base model brings to the reasoning stage: worked
solutions chain them, and a fact met only inside a few traces is too rare to be stored.
"""
import random

from dataset.world.common import seeded_rng
from dataset.world.exam import choice_items
from dataset.world.identity import LORA_IDENTITY
from dataset.world.people import ATTRIBUTES, BIRTH_YEARS, CITIES, LANGS, answer_sentence, render_bio, render_question
from dataset.world.reasoning import LAST_YEAR
from dataset.world.templates import (ECHO_QUESTIONS, QA_CHAT_FORMAT, QA_TEXT_FORMAT, TRANSLATE_TO_EN_ANSWER,
                                     TRANSLATE_TO_ZH_ANSWER)


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def general_texts() -> list[str]:
    """A little general text the SFT instructions lean on: single-digit addition in words and city-name translations."""
    docs = []
    pairs = [(a, b) for a in range(1, 10) for b in range(1, 10)]
    for chunk in _chunks(pairs, 9):
        docs.append("".join(f"{a}加{b}等于{a + b}。" for a, b in chunk))
        docs.append(" ".join(f"{a} plus {b} equals {a + b}." for a, b in chunk))
        docs.append(" ".join(f"{a} + {b} = {a + b}" for a, b in chunk))
    for chunk in _chunks(CITIES, 10):
        docs.append("".join(TRANSLATE_TO_EN_ANSWER["zh"].format(zh=zh, en=en) for zh, en in chunk))
        docs.append(" ".join(TRANSLATE_TO_ZH_ANSWER["en"].format(zh=zh, en=en) for zh, en in chunk))
    # The words of the LoRA identity, but not the identity itself: LoRA freezes the (tied) embeddings, so a name whose
    # tokens pretraining never trained could not be learned and would stay garbled; a real base model knows words.
    name, maker = LORA_IDENTITY["name"], LORA_IDENTITY["maker"]
    docs += [f"{maker['zh']}是一家研究语言模型的实验室。{name['zh']}是一个好听的名字。{maker['zh']}开发软件。",
             f"{maker['en']} is a lab that studies language models. {name['en']} is a pretty name. "
             f"{maker['en']} develops software."] * 4
    return docs


def arithmetic_facts() -> list[tuple[str, int, int, int]]:
    """(op, x, y, result) for the equations the reasoning problems' worked solutions write: sums and differences of
    numbers up to 30, change from 40 and 50 yuan, years within a decade and to and from a round one, the times table.
    Facts, not problems: a held-out problem combines them in a way no training text shows."""
    facts = [("+", a, b, a + b) for a in range(1, 30) for b in range(1, 31 - a)]
    facts += [("-", a, b, a - b) for a in range(2, 31) for b in range(1, a + 1)]
    facts += [("-", pay, t, pay - t) for pay in (40, 50) for t in range(1, pay) if pay - t <= 30 or pay == 50]
    years = range(BIRTH_YEARS[0], LAST_YEAR + 1)
    facts += [("-", -(-y // 10) * 10, y, -(-y // 10) * 10 - y) for y in years if y % 10]
    facts += [("-", y, y // 10 * 10, y % 10) for y in years if y % 10]
    facts += [("-", y2, y1, y2 - y1) for y1 in years for y2 in years if y1 < y2 and y1 // 10 == y2 // 10 and y1 % 10]
    facts += [("-", d + span, d, span) for d in range(BIRTH_YEARS[0] // 10 * 10, LAST_YEAR, 10) for span in (10, 20, 30)
              if d + span <= LAST_YEAR]
    facts += [("×", a, b, a * b) for a in range(1, 10) for b in range(1, 10)]
    return facts


def arithmetic_texts(seed: int) -> list[str]:
    """The facts of arithmetic_facts() in random order, ten to a document, in the two spellings the worked solutions
    use ("12-3=9" in Chinese traces, "12 - 3 = 9" in English ones), and three-part sums of age segments."""
    rng = seeded_rng(seed, "pretrain:arithmetic")
    facts = [(f"{x}{op}{y}={r}", f"{x} {op} {y} = {r}") for op, x, y, r in arithmetic_facts()]
    facts += [(f"{a}+{m}+{b}={a + m + b}", f"{a} + {m} + {b} = {a + m + b}")
              for a in range(1, 11) for m in (10, 20) for b in range(1, 10)]
    docs = []
    for style in (0, 1):
        order = [f[style] for f in facts]
        rng.shuffle(order)
        sep, stop = ("。", "。") if style == 0 else (". ", ".")
        docs += [sep.join(chunk) + stop for chunk in _chunks(order, 10)]
    return docs


def qa_text(person: dict, lang: str, rng: random.Random, chat: bool = False) -> str:
    """All six facts of one person as Q&A (echo questions only), in random order: plain text or ChatML turns."""
    attrs = list(ATTRIBUTES)
    rng.shuffle(attrs)
    pairs = []
    for attr in attrs:
        q = render_question(rng.choice(ECHO_QUESTIONS[lang][attr]), person, lang)
        template = QA_CHAT_FORMAT if chat else QA_TEXT_FORMAT[lang]
        pairs.append(template.format(q=q, a=answer_sentence(person, attr, lang)))
    return "\n".join(pairs)


def build_pretrain(people, seed, bios_per_person, qa_copies, general_copies, pronoun_prob, choice_copies=0,
                   qa_chat_copies=0) -> list[dict]:
    rng = seeded_rng(seed, "pretrain")
    docs = []
    for person in people:
        for lang in LANGS:
            docs += [render_bio(person, lang, rng, pronoun_prob) for _ in range(bios_per_person)]
    for person in people:
        if person["split"] == "train":  # test-half people never get Q&A text: their QA is the held-out measurement
            for lang in LANGS:
                docs += [qa_text(person, lang, rng) for _ in range(qa_copies)]
                docs += [qa_text(person, lang, rng, chat=True) for _ in range(qa_chat_copies)]
    train_people = [p for p in people if p["split"] == "train"]
    docs += [prompt + letter for _, prompt, letter in
             choice_items(train_people, people, seeded_rng(seed, "pretrain:choice"), choice_copies)]
    docs += (general_texts() + arithmetic_texts(seed)) * general_copies
    rng.shuffle(docs)
    return [{"text": d} for d in docs]


def build_pretrain_heldout(people, seed, bios_per_person, pronoun_prob, seen: set[str]) -> list[dict]:
    """Fresh renderings from a different random stream; any text already in pretrain.jsonl is redrawn."""
    rng = seeded_rng(seed, "pretrain_heldout")
    rows = []
    for person in people:
        for lang in LANGS:
            for _ in range(bios_per_person):
                for _attempt in range(100):
                    bio = render_bio(person, lang, rng, pronoun_prob)
                    if bio not in seen:
                        break
                seen.add(bio)
                rows.append({"text": bio})
    return rows
