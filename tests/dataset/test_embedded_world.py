"""Tests for dataset/embedded_world.py: determinism, file schemas, and the train/held-out separation the quickstart's
numbers depend on.  One world is generated per module (well under a second) and shared by most tests."""

import csv
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # normally the rootdir conftest does this; keep the file runnable on its own
    sys.path.insert(0, str(ROOT))

from dataset import embedded_world as ew  # noqa: E402

JSONL_FILES = [
    "pretrain.jsonl", "pretrain_heldout.jsonl", "sft.jsonl", "qa_heldout.jsonl", "qa_train_sample.jsonl", "dpo.jsonl",
    "dpo_heldout.jsonl", "lora_identity.jsonl", "lora_identity_heldout.jsonl", "reason.jsonl", "reason_direct.jsonl",
    "reason_heldout.jsonl",
]
ROLES = {"system", "user", "assistant"}


# ---------------------------------------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    start = time.perf_counter()
    stats = ew.make_world(out, seed=0)
    return out, stats, time.perf_counter() - start


@pytest.fixture(scope="module")
def out(generated):
    return generated[0]


@pytest.fixture(scope="module")
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


# ---------------------------------------------------------------------------------------------------------------------
# determinism and speed
# ---------------------------------------------------------------------------------------------------------------------


def test_generation_is_fast(generated):
    assert generated[2] < 5.0


def test_same_seed_gives_identical_bytes(out, tmp_path):
    again = tmp_path / "again"
    ew.make_world(again, seed=0)
    assert all_files(out) == all_files(again)
    for rel in all_files(out):
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_cli_under_another_hash_seed_gives_identical_bytes(out, tmp_path):
    # A separate process with a different PYTHONHASHSEED catches any dependence on set/dict-of-str ordering.
    cli_out = tmp_path / "cli"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-m", "dataset.embedded_world", "--out_dir", str(cli_out), "--seed", "0"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    for rel in all_files(out):
        assert (out / rel).read_bytes() == (cli_out / rel).read_bytes(), rel


def test_different_seed_gives_different_world(out, tmp_path):
    other = tmp_path / "seed1"
    ew.make_world(other, seed=1)
    for rel in ("world.json", "pretrain.jsonl", "sft.jsonl", "qa_heldout.jsonl"):
        assert (out / rel).read_bytes() != (other / rel).read_bytes(), rel


# ---------------------------------------------------------------------------------------------------------------------
# stats and sizes
# ---------------------------------------------------------------------------------------------------------------------


def test_stats_describe_every_file(generated):
    out, stats, _ = generated
    assert sorted(stats["files"]) == all_files(out)
    for rel in JSONL_FILES:
        n_lines = len((out / rel).read_text(encoding="utf-8").splitlines())
        assert stats["files"][rel]["lines"] == n_lines, rel
    assert stats["n_train_people"] == stats["n_test_people"] == 100


def test_default_sizes_fit_the_quickstart_budget(generated):
    files = generated[1]["files"]
    assert 100_000 <= files["pretrain.jsonl"]["approx_tokens"] <= 300_000
    assert 50_000 <= files["sft.jsonl"]["approx_tokens"] <= 150_000
    assert 200 <= files["qa_heldout.jsonl"]["lines"] <= 400


def test_pretrain_documents_are_short(out):
    for row in read_jsonl(out / "pretrain.jsonl"):
        assert set(row) == {"text"}
        assert 0 < ew.approx_tokens(row["text"]) < 256


def test_pretrain_heldout_is_fresh(out):
    seen = {r["text"] for r in read_jsonl(out / "pretrain.jsonl")}
    heldout = read_jsonl(out / "pretrain_heldout.jsonl")
    assert heldout and all(set(r) == {"text"} and r["text"] not in seen for r in heldout)


def test_approx_tokens_counts_cjk_words_and_digits():
    assert ew.approx_tokens("张伟") == 2
    assert ew.approx_tokens("1995") == 4
    assert ew.approx_tokens("hello world") == round(2 * 1.3)


# ---------------------------------------------------------------------------------------------------------------------
# the world itself
# ---------------------------------------------------------------------------------------------------------------------


def test_names_are_unique_and_never_contain_a_value(world):
    people = world["people"]
    assert len(people) == 200
    for key in ("name_zh", "name_en"):
        names = [p[key] for p in people]
        assert len(set(names)) == len(names)
        assert not any(a != b and b.startswith(a) for a in names for b in names), "a name is a prefix of another"
    values = [v for table in ew.ATTRIBUTE_VALUES.values() for pair in table for v in pair]
    for p in people:
        assert not any(v.casefold() in (p["name_zh"] + " " + p["name_en"]).casefold() for v in values)


def test_attribute_tables_are_bilingual_and_unambiguous():
    # 20-40 values per attribute, and no value contains another one (case-insensitive), so check_answer on one value
    # can never be satisfied by a different value.  birth_city and work_city share the city table on purpose.
    tables = {id(t): t for t in ew.ATTRIBUTE_VALUES.values()}.values()
    for table in tables:
        assert 20 <= len(table) <= 40
    for lang in (0, 1):
        values = [pair[lang].casefold() for table in tables for pair in table]
        assert len(set(values)) == len(values)
        assert not [(a, b) for a in values for b in values if a != b and a in b]


def test_templates_are_varied():
    for lang in ew.LANGS:
        for attr in ew.ATTRIBUTES:
            assert len(set(ew.BIO_TEMPLATES[lang][attr])) >= 5
            assert ew.ECHO_QUESTIONS[lang][attr] and ew.PARAPHRASE_QUESTIONS[lang][attr]


def test_people_split_in_halves_with_all_attributes(world):
    assert len(people_of(world, "train")) == len(people_of(world, "test")) == 100
    for p in world["people"]:
        for attr in ew.ATTRIBUTES:
            assert p[attr]["zh"] and p[attr]["en"]


# ---------------------------------------------------------------------------------------------------------------------
# schemas
# ---------------------------------------------------------------------------------------------------------------------


def test_chat_files_parse_and_match_schema(out):
    for rel in ("sft.jsonl", "lora_identity.jsonl", "reason.jsonl", "reason_direct.jsonl"):
        rows = read_jsonl(out / rel)
        assert rows, rel
        for row in rows:
            assert set(row) == {"conversations"}, rel
            check_messages(row["conversations"])


def test_sft_has_the_promised_variety(out):
    rows = read_jsonl(out / "sft.jsonl")
    convs = [r["conversations"] for r in rows]
    assert any(c[0]["role"] == "system" for c in convs)
    assert sum(1 for c in convs if sum(m["role"] == "user" for m in c) >= 2) > 100, "multi-turn conversations"
    replies = " ".join(m["content"] for c in convs for m in c if m["role"] == "assistant")
    assert "我是MiniMind" in replies and "I am MiniMind" in replies
    users = user_texts(rows)
    assert "What is 3 plus 4?" in users or "Compute 3 + 4." in users
    assert any("翻译成英文" in u for u in users) and any(u.startswith("Tell me about") for u in users)


def test_eval_files_parse_and_match_schema(out):
    keys = {
        "qa_heldout.jsonl": {"conversations", "answer", "lang", "kind", "person", "attribute"},
        "qa_train_sample.jsonl": {"conversations", "answer", "lang", "kind", "person", "attribute"},
        "lora_identity_heldout.jsonl": {"conversations", "answer", "lang", "kind"},
        "reason_heldout.jsonl": {"conversations", "answer", "lang", "kind"},
    }
    for rel, expected in keys.items():
        rows = read_jsonl(out / rel)
        assert rows, rel
        for row in rows:
            assert set(row) == expected, rel
            check_messages(row["conversations"])
            assert row["lang"] in ew.LANGS
            assert ew.check_answer(row["conversations"][-1]["content"], row["answer"]), row
            if rel.startswith("qa_"):  # fact QA is scored on the first sentence
                assert ew.check_fact_answer(row["conversations"][-1]["content"], row["answer"]), row


def test_dpo_files_parse_and_match_schema(out):
    for rel in ("dpo.jsonl", "dpo_heldout.jsonl"):
        rows = read_jsonl(out / rel)
        assert rows, rel
        for row in rows:
            assert {"chosen", "rejected"} <= set(row)
            check_messages(row["chosen"])
            check_messages(row["rejected"])
            assert row["chosen"][:-1] == row["rejected"][:-1], "same prompt"
            assert row["chosen"][-1]["content"] != row["rejected"][-1]["content"]


# ---------------------------------------------------------------------------------------------------------------------
# train / held-out separation
# ---------------------------------------------------------------------------------------------------------------------


def test_heldout_people_never_appear_in_training_chat(out, world):
    test_people = people_of(world, "test")
    for rel in ("sft.jsonl", "dpo.jsonl", "qa_train_sample.jsonl", "lora_identity.jsonl", "reason.jsonl"):
        assert names_in(all_texts(read_jsonl(out / rel)), test_people) == [], rel
    # sanity check of the helper: the train half does show up in SFT
    assert len(names_in(all_texts(read_jsonl(out / "sft.jsonl")), people_of(world, "train"))) == 200


def test_pretrain_qa_text_is_only_about_train_people(out, world):
    qa_docs = [r["text"] for r in read_jsonl(out / "pretrain.jsonl") if r["text"].startswith(("问：", "Q: "))]
    assert len(qa_docs) == 200  # 100 train people x 2 languages x qa_copies=1
    assert names_in(qa_docs, people_of(world, "test")) == []


def test_every_person_has_bios_in_pretrain(out, world):
    text = "\n".join(r["text"] for r in read_jsonl(out / "pretrain.jsonl"))
    for p in world["people"]:
        assert text.count(p["name_zh"]) >= 5 and text.count(p["name_en"]) >= 5


def _paraphrases(world):
    return {ew.render_question(t, p, lang)
            for p in world["people"] for lang in ew.LANGS
            for attr in ew.ATTRIBUTES for t in ew.PARAPHRASE_QUESTIONS[lang][attr]}


def _longest_fragment(template):
    return max(re.split(r"\{[np]\}", template), key=len)


def test_paraphrase_wording_is_never_trained(out, world):
    trained = (all_texts(read_jsonl(out / "sft.jsonl")) + all_texts(read_jsonl(out / "dpo.jsonl"))
               + [r["text"] for r in read_jsonl(out / "pretrain.jsonl")])
    assert not _paraphrases(world) & set(trained)
    corpus = "\n".join(trained)
    bio_text = "\n".join(t for lang in ew.LANGS for ts in ew.BIO_TEMPLATES[lang].values() for t in ts)
    for lang in ew.LANGS:
        for attr in ew.ATTRIBUTES:
            for template in ew.PARAPHRASE_QUESTIONS[lang][attr]:
                fragment = _longest_fragment(template)
                assert len(fragment.strip()) >= 3, template
                assert fragment not in corpus, (template, fragment)
                assert fragment not in bio_text, (template, fragment)


def test_qa_heldout_is_balanced_true_and_about_test_people(out, world):
    rows = read_jsonl(out / "qa_heldout.jsonl")
    by_name = {p["name_" + lang]: p for p in world["people"] for lang in ew.LANGS}
    for row in rows:
        person = by_name[row["person"]]
        assert person["split"] == "test"
        assert row["answer"] == person[row["attribute"]][row["lang"]]
        assert row["kind"] in ("echo", "paraphrase")
    cells = Counter((r["lang"], r["kind"]) for r in rows)
    assert len(cells) == 4 and max(cells.values()) - min(cells.values()) <= 1
    attrs = Counter(r["attribute"] for r in rows)
    assert set(attrs) == set(ew.ATTRIBUTES) and max(attrs.values()) - min(attrs.values()) <= 4


def test_echo_questions_use_the_sft_templates(out, world):
    sft_users = set(user_texts(read_jsonl(out / "sft.jsonl")))
    for rel in ("qa_heldout.jsonl", "qa_train_sample.jsonl"):
        for row in read_jsonl(out / rel):
            question = row["conversations"][0]["content"]
            templates = (ew.ECHO_QUESTIONS if row["kind"] == "echo" else ew.PARAPHRASE_QUESTIONS)[row["lang"]]
            name = row["person"]
            generic = question.replace(name + "'s", "{p}").replace(name, "{n}")
            assert generic in templates[row["attribute"]], question
            if rel == "qa_train_sample.jsonl" and row["kind"] == "echo":
                assert question in sft_users  # the train sample measures fitting of what SFT showed


def test_qa_train_sample_is_about_train_people(out, world):
    rows = read_jsonl(out / "qa_train_sample.jsonl")
    by_name = {p["name_" + lang]: p for p in world["people"] for lang in ew.LANGS}
    assert 150 <= len(rows) <= 250
    for row in rows:
        person = by_name[row["person"]]
        assert person["split"] == "train" and row["answer"] == person[row["attribute"]][row["lang"]]


def test_dpo_heldout_answers_are_true(out, world):
    by_name = {p["name_" + lang]: p for p in world["people"] for lang in ew.LANGS}
    for row in read_jsonl(out / "dpo_heldout.jsonl"):
        person = by_name[row["person"]]
        assert person["split"] == "test"
        assert row["answer"] == person[row["attribute"]][row["lang"]]
        assert ew.check_answer(row["chosen"][-1]["content"], row["answer"])
        chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
        kind = row["rejected_kind"]  # what the rejected reply does wrong, for the per-kind preference accuracy
        assert (kind == "repeat") == (chosen in rejected)
        assert kind in ("wrong", "hedge", "repeat")
        if kind != "repeat":  # a wrong fact or a hedge never states the true value
            assert not ew.check_answer(rejected, row["answer"]), row


def test_lora_heldout_phrasings_are_new(out):
    trained = set(user_texts(read_jsonl(out / "lora_identity.jsonl")) + user_texts(read_jsonl(out / "sft.jsonl")))
    heldout = read_jsonl(out / "lora_identity_heldout.jsonl")
    assert len(heldout) >= 20
    assert {r["lang"] for r in heldout} == set(ew.LANGS)
    for row in heldout:
        question = [m for m in row["conversations"] if m["role"] == "user"][-1]["content"]
        assert question not in trained
    rows = read_jsonl(out / "lora_identity.jsonl")
    identity_questions = {q for lang in ew.LANGS for _, q in ew.LORA_IDENTITY["train_questions"][lang]}
    identity = [r for r in rows if r["conversations"][-2]["content"] in identity_questions]
    assert identity and all("小溪" in r["conversations"][-1]["content"] or "Xiaoxi" in r["conversations"][-1]["content"]
                            for r in identity)
    # the rest is replay: the SFT chats, none of them teaching the old identity back
    sft = read_jsonl(out / "sft.jsonl")
    no_old_identity = [r for r in sft if not any("MiniMind" in m["content"] and "你好" not in m["content"]
                                                 and "Hello" not in m["content"] for m in r["conversations"])]
    assert not any("MiniMind" in m["content"] for r in rows for m in r["conversations"] if m["role"] == "assistant")
    replay = [r for r in rows if r["conversations"][-2]["content"] not in identity_questions
              and "MiniMind" not in r["conversations"][-2]["content"]]
    assert len(replay) == len(no_old_identity) and len(replay) < len(sft)


# ---------------------------------------------------------------------------------------------------------------------
# reasoning
# ---------------------------------------------------------------------------------------------------------------------

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
    assert set(Counter(r["kind"] for r in heldout)) == set(ew.REASON_KINDS)
    for row in heldout:
        think, answer = ew.split_reasoning(row["conversations"][-1]["content"])
        assert answer == row["answer"]
        check_trace(think)


def test_reason_problem_spaces_are_split_not_shared():
    # Held-out problems must need arithmetic that was never worked out in training: check the key split directly.
    rows_train, _, rows_heldout = ew.build_reason(seed=0, n_train=600, n_heldout=120)
    assert not set(user_texts(rows_train)) & set(user_texts(rows_heldout))
    for kind in ew.REASON_KINDS:
        assert len(ew.reason_problem_space(kind)) >= 40, kind


# ---------------------------------------------------------------------------------------------------------------------
# exam
# ---------------------------------------------------------------------------------------------------------------------


def test_exam_layout_and_answers(out, world):
    truth = {}
    for p in world["people"]:
        for lang in ew.LANGS:
            for attr in ew.ATTRIBUTES:
                truth[ew.render_question(ew.ECHO_QUESTIONS[lang][attr][0], p, lang)] = p[attr][lang]
    for subject in ew.EXAM_SUBJECTS:
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


# ---------------------------------------------------------------------------------------------------------------------
# helpers used by evaluators
# ---------------------------------------------------------------------------------------------------------------------


def test_check_answer():
    assert ew.check_answer("Zhang Wei was born in  hangzhou .", "Hangzhou")
    assert ew.check_answer("He was born on March 12,\n1995.", "March 12, 1995")
    assert ew.check_answer("张伟出生在杭州。", "杭州")
    assert not ew.check_answer("张伟出生在苏州。", "杭州")
    assert not ew.check_answer("anything", "")


def test_check_fact_answer_reads_the_first_sentence_only():
    dump = "Luo Guiran was born on December 8, 2004. Luo Guiran works for Qiming Pharmaceuticals."
    assert ew.check_answer(dump, "Qiming Pharmaceuticals") and not ew.check_fact_answer(dump, "Qiming Pharmaceuticals")
    assert ew.check_fact_answer(dump, "December 8, 2004")
    assert ew.check_fact_answer("He was born in Xi'an", "Xi'an")  # no final period
    assert not ew.check_fact_answer("蒋丽丽出生在兰州。蒋丽丽在厦门工作。", "厦门")
    assert ew.first_sentence("  Hi! I am here.") == "Hi!"


def test_split_reasoning():
    assert ew.split_reasoning("<think>\n1+1=2。\n</think>\n<answer>\n2\n</answer>") == ("1+1=2。", "2")
    assert ew.split_reasoning("<answer>\n17\n</answer>") == (None, "17")
    assert ew.split_reasoning("so <answer> 7 </answer> trailing") == (None, "7")
    assert ew.split_reasoning("no tags") == (None, None)
