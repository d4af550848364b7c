"""choice_reason.jsonl and rlaif_choice.jsonl: multiple-choice questions answered by first recalling, then choosing.

    user:      <question>\\nA. …\\nB. …\\nC. …\\nD. …\\n答案：            (the exam's own prompt format)
    assistant: <think>\\n<the fact as a sentence, or the sum>\\nA. … ✗\\nB. … ✓\\nC. … ✗\\nD. … ✗\\n</think>\\n<answer>\\nB\\n</answer>

A small model that knows a fact still fails to map it onto a letter when asked for the letter at once (the exam
sits at chance); written out first, the value is in context and choosing becomes finding the option that repeats
it. Recalled alone, the value does not lead a small model to its letter (measured: the letter stays at chance), so
the trace then walks the options, copying each and marking whether it is the recalled value: every step is a copy
or a comparison, and the letter to answer is the one on the marked line. choice_reason.jsonl teaches that format (SFT), rlaif_choice.jsonl holds fresh items with the letter as the
reference answer (RL). People items are about the TRAIN half only; arithmetic items use two-digit numbers, while the
exam's arithmetic subject uses one-digit ones, so neither file holds an exam fact about a held-out person or an
exam sum.
"""
from dataset.choice_format import LETTERS, format_question
from dataset.world.common import msg, seeded_rng
from dataset.world.people import ATTRIBUTES, LANGS, answer_sentence, render_question, wrong_values
from dataset.world.templates import ECHO_QUESTIONS

MARKS = {True: "✓", False: "✗"}  # after each option in the trace: is it the recalled value?


def _options(correct: str, wrong: list[str], letter: str, rng) -> list[str]:
    options = list(wrong)
    rng.shuffle(options)
    options.insert(LETTERS.index(letter), correct)
    return options


def _person_item(person, people, rng):
    lang, attr = rng.choice(LANGS), rng.choice(ATTRIBUTES)
    question = render_question(rng.choice(ECHO_QUESTIONS[lang][attr]), person, lang)
    return question, person[attr][lang], wrong_values(person, attr, lang, people, rng), \
        answer_sentence(person, attr, lang)


def _arithmetic_item(rng):
    a, b = rng.randint(10, 19), rng.randint(1, 9)
    op = rng.choice("+-")
    value = a + b if op == "+" else a - b
    wrong = rng.sample([value + d for d in (-3, -2, -1, 1, 2, 3)], 3)
    return f"{a} {op} {b} = ?", str(value), [str(w) for w in wrong], f"{a} {op} {b} = {value}"


def build_choice_reason(people, seed, n_sft, n_rl, arithmetic_share: float = 0.25) -> tuple[list[dict], list[dict]]:
    train = [p for p in people if p["split"] == "train"]
    out = []
    for name, n in (("choice_reason", n_sft), ("rlaif_choice", n_rl)):
        rng, rows = seeded_rng(seed, name), []
        for i in range(n):
            if rng.random() < arithmetic_share:
                question, correct, wrong, recall = _arithmetic_item(rng)
            else:
                question, correct, wrong, recall = _person_item(rng.choice(train), people, rng)
            letter = LETTERS[i % 4]  # balanced letters: no letter is a free win
            options = _options(correct, wrong, letter, rng)
            prompt = format_question(question, options)
            walk = "\n".join(f"{x}. {o} {MARKS[x == letter]}" for x, o in zip(LETTERS, options))
            reply = f"<think>\n{recall}\n{walk}\n</think>\n<answer>\n{letter}\n</answer>"
            rows.append({"conversations": [msg("user", prompt), msg("assistant", reply)], "answer": letter})
        rng.shuffle(rows)
        out.append(rows)
    return out[0], out[1]
