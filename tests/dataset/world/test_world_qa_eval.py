"""Tests for dataset/world/qa_eval.py: balanced, true questions about the right half; paraphrases never trained."""
import re
from collections import Counter

from dataset.world.people import ATTRIBUTES, LANGS, render_question
from dataset.world.templates import BIO_TEMPLATES, ECHO_QUESTIONS, PARAPHRASE_QUESTIONS
from world_helpers import all_texts, generated, out, read_jsonl, user_texts, world  # noqa: F401  (fixtures)


def _paraphrases(world):
    return {render_question(t, p, lang)
            for p in world["people"] for lang in LANGS
            for attr in ATTRIBUTES for t in PARAPHRASE_QUESTIONS[lang][attr]}


def _longest_fragment(template):
    return max(re.split(r"\{[np]\}", template), key=len)


def test_paraphrase_wording_is_never_trained(out, world):
    trained = (all_texts(read_jsonl(out / "sft.jsonl")) + all_texts(read_jsonl(out / "dpo.jsonl"))
               + all_texts(read_jsonl(out / "tool_sft.jsonl")) + all_texts(read_jsonl(out / "agent_rl.jsonl"))
               + [r["text"] for r in read_jsonl(out / "pretrain.jsonl")])
    assert not _paraphrases(world) & set(trained)
    corpus = "\n".join(trained)
    bio_text = "\n".join(t for lang in LANGS for ts in BIO_TEMPLATES[lang].values() for t in ts)
    for lang in LANGS:
        for attr in ATTRIBUTES:
            for template in PARAPHRASE_QUESTIONS[lang][attr]:
                fragment = _longest_fragment(template)
                assert len(fragment.strip()) >= 3, template
                assert fragment not in corpus, (template, fragment)
                assert fragment not in bio_text, (template, fragment)


# The words the paraphrases lean on (as the question has it, as a bio sentence has it): the bios in the pretraining
# text teach each for its attribute, so the paraphrases are unseen wordings, not unseen words.
PARAPHRASE_WORDS = {
    "zh": {"birth_date": [("生日", "生日")], "birth_city": [("故乡", "故乡"), ("哪里人", "人。")],
           "university": [("高校", "高校"), ("培养", "培养")], "major": [("学科", "学科"), ("领域", "领域")],
           "employer": [("效力", "效力"), ("聘用", "聘用")], "work_city": [("办公", "办公"), ("职业生涯", "职业生涯")]},
    "en": {"birth_date": [("birthday", "birthday")], "birth_city": [("birthplace", "birthplace")],
           "university": [("attend", "attended"), ("go to college", "went to college")],
           "major": [("field of study", "field of study"), ("specialize", "specialized")],
           "employer": [("hired", "hired"), ("position", "position")],
           "work_city": [("workplace", "workplace"), ("hold a job", "holds a job")]},
}


def test_the_words_of_the_paraphrases_are_taught_by_the_bios_of_their_attribute():
    for lang in LANGS:
        for attr in ATTRIBUTES:
            questions, bios = " ".join(PARAPHRASE_QUESTIONS[lang][attr]), " ".join(BIO_TEMPLATES[lang][attr])
            for in_question, in_bio in PARAPHRASE_WORDS[lang][attr]:
                assert in_question in questions and in_bio in bios, (lang, attr, in_question, in_bio)


def test_qa_heldout_is_balanced_true_and_about_test_people(out, world):
    rows = read_jsonl(out / "qa_heldout.jsonl")
    by_name = {p["name_" + lang]: p for p in world["people"] for lang in LANGS}
    for row in rows:
        person = by_name[row["person"]]
        assert person["split"] == "test"
        assert row["answer"] == person[row["attribute"]][row["lang"]]
        assert row["kind"] in ("echo", "paraphrase")
    cells = Counter((r["lang"], r["kind"]) for r in rows)
    assert len(cells) == 4 and max(cells.values()) - min(cells.values()) <= 1
    attrs = Counter(r["attribute"] for r in rows)
    assert set(attrs) == set(ATTRIBUTES) and max(attrs.values()) - min(attrs.values()) <= 4


def test_echo_questions_use_the_sft_templates(out, world):
    sft_users = set(user_texts(read_jsonl(out / "sft.jsonl")))
    for rel in ("qa_heldout.jsonl", "qa_train_sample.jsonl"):
        for row in read_jsonl(out / rel):
            question = row["conversations"][0]["content"]
            templates = (ECHO_QUESTIONS if row["kind"] == "echo" else PARAPHRASE_QUESTIONS)[row["lang"]]
            name = row["person"]
            generic = question.replace(name + "'s", "{p}").replace(name, "{n}")
            assert generic in templates[row["attribute"]], question
            if rel == "qa_train_sample.jsonl" and row["kind"] == "echo":
                assert question in sft_users  # the train sample measures fitting of what SFT showed


def test_qa_train_sample_is_about_train_people(out, world):
    rows = read_jsonl(out / "qa_train_sample.jsonl")
    by_name = {p["name_" + lang]: p for p in world["people"] for lang in LANGS}
    assert 150 <= len(rows) <= 250
    for row in rows:
        person = by_name[row["person"]]
        assert person["split"] == "train" and row["answer"] == person[row["attribute"]][row["lang"]]
