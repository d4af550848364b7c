"""tool_sft.jsonl / tool_heldout.jsonl / agent_rl.jsonl (dataset/world/tools.py): every call's result is what the
tool returns, answers are right, and nothing held out leaks into training rows."""
import random
from collections import Counter

from dataset.validate import validate_sft
from dataset.world.people import ATTRIBUTE_VALUES, ATTRIBUTES, LANGS, bio_question, render_question
from dataset.world.reasoning import (REASON_KINDS, REASON_TOOL, build_reason, reasoning_tool_call, render_reason,
                                     split_reason_keys)
from dataset.world.templates import ASK_PREFIXES, ATTRIBUTE_NOUNS, BIO_TEMPLATES, NOUN_FRAMES
from dataset.world.tools import DATE_AFTER_SFT_EVERY, FACT_WORDINGS, NOUN_WORDINGS
from toolcall.world import directory_of, world_toolbox
from world_helpers import generated, out, people_of, read_jsonl, world  # noqa: F401  (fixtures)


def calls_and_results(conv):
    """[(name, arguments, result)] in order, checking every call is answered by the next tool message."""
    pairs = []
    for j, m in enumerate(conv):
        for call in m.get("tool_calls", []):
            assert conv[j + 1]["role"] == "tool"
            pairs.append((call["function"]["name"], call["function"]["arguments"], conv[j + 1]["content"]))
    return pairs


def names(people):
    return {p["name_zh"] for p in people} | {p["name_en"] for p in people}


def test_tool_sft_rows_are_valid_and_consistent(out, world):
    rows = read_jsonl(out / "tool_sft.jsonl")
    box = world_toolbox(directory_of(world))
    held_out_names = names(people_of(world, "test"))
    _, _, reason_heldout, _ = build_reason(0, 2000, 200)
    held_questions = {r["conversations"][0]["content"] for r in reason_heldout}
    kinds = {"calculator": 0, "days_after": 0, "lookup_person": 0, "chain": 0, "none": 0, "no_tools_offered": 0}
    directory_names = names([p for p in world["directory"] if p["split"] == "directory"])
    agent_only = names([p for p in world["directory"] if p["split"] == "agent_directory"])
    asked_directory, chain_tools = 0, {"calculator": 0, "weekday": 0, "days_after": 0}
    fact_questions, opened, fact_attrs = set(), Counter(), Counter()
    for r in rows:
        conv = r["conversations"]
        assert validate_sft(r) is None
        if conv[0]["role"] != "system":  # no tools offered: answered directly
            kinds["no_tools_offered"] += 1
            assert len(conv) == 2 and not any(n in conv[0]["content"] for n in held_out_names | directory_names)
            continue
        asked_directory += any(n in conv[1]["content"] for n in directory_names)
        assert conv[0]["role"] == "system" and [t["function"]["name"] for t in conv[0]["tools"]] == \
            ["calculator", "weekday", "days_after", "lookup_person"]
        question = conv[1]["content"]
        opening = next((o for lang in LANGS for o in ASK_PREFIXES[lang] if question.startswith(o)), "")
        question = question[len(opening):]
        assert question not in held_questions and not any(n in question for n in held_out_names | agent_only)
        pairs = calls_and_results(conv)
        for name, args, result in pairs:
            assert box.run(name, args) == result  # the row shows what the tool really returns
        assert conv[-1]["role"] == "assistant" and "tool_calls" not in conv[-1]
        opened[("none" if not pairs else "chain" if len(pairs) == 2 else pairs[0][0]) if opening else "plain"] += 1
        if not pairs:
            kinds["none"] += 1
        elif len(pairs) == 2:
            kinds["chain"] += 1
            assert pairs[0][0] == "lookup_person" and pairs[0][1]["attribute"] == "birth_date"
            chain_tools[pairs[1][0]] += 1
            assert conv[-1]["content"] == f"<answer>\n{pairs[1][2]}\n</answer>"
        else:
            kinds[pairs[0][0]] += 1
            if pairs[0][0] == "lookup_person":
                fact_questions.add(question)
                fact_attrs[pairs[0][1]["attribute"]] += 1
            # the answer is the tool's result itself, never a sentence the model could complete from memory
            assert conv[-1]["content"] == f"<answer>\n{pairs[0][2]}\n</answer>"
    # arithmetic: counts, years and money through the calculator, weekdays and dates (2 of 6 kinds) through days_after
    assert len(rows) == 3000 and kinds["calculator"] + kinds["days_after"] == 900
    assert 250 < kinds["days_after"] < 350
    assert {k: kinds[k] for k in ("lookup_person", "chain", "none", "no_tools_offered")} == {
        "lookup_person": 900, "chain": 600, "none": 300, "no_tools_offered": 300}
    # the birth date is asked twice as often as each other attribute (2 of 7 fact rows)
    assert 0.22 < fact_attrs["birth_date"] / 900 < 0.36 and all(80 < fact_attrs[a] < 180 for a in ATTRIBUTES[1:])
    # a fifth of the fact and chain questions open with "请问" or "Quick question: " (ASK_PREFIXES), no other row does
    assert 0.12 < opened["lookup_person"] / 900 < 0.28 and 0.12 < opened["chain"] / 600 < 0.28
    assert set(opened) == {"plain", "lookup_person", "chain"}
    # a fixed handful of chains go on to days_after (a date some days after the birth): a cold start for agentic RL
    assert chain_tools["days_after"] == 600 // DATE_AFTER_SFT_EVERY == 8
    assert asked_directory == 1500  # every fact and chain row asks about a directory-only person
    # fact questions come in the bios' own words too: the question forms of the bio templates are asked (some five
    # times each, so a draw may miss one or two)
    people = world["directory"]
    bio_worded = {(lang, bio_question(t, lang, attr)) for lang in LANGS for attr in ATTRIBUTES
                  for t in BIO_TEMPLATES[lang][attr]}
    seen = {(lang, w) for lang, w in bio_worded if any(render_question(w, p, lang) in fact_questions for p in people)}
    assert len(bio_worded) == 84 and len(seen) >= 0.95 * len(bio_worded)
    # directory-only people appear in no other world file
    other = (out / "pretrain.jsonl").read_text(encoding="utf-8") + (out / "sft.jsonl").read_text(encoding="utf-8")
    assert len(directory_names) == 2000 and len(agent_only) == 600  # 1,000 and 300 people, zh and en names
    assert not any(n in other for n in directory_names | agent_only)
    assert not (directory_names | agent_only) & names(world["people"]) and not directory_names & agent_only
    # a third of the rows switch thinking off (an empty think block on each assistant turn), the rest leave it out
    off = sum(conv[-1].get("reasoning_content") == "" for conv in (r["conversations"] for r in rows))
    assert 0.22 < off / len(rows) < 0.38


def test_heldout_chains_are_about_held_out_people_and_agent_rows_about_rl_only_people(out, world):
    box = world_toolbox(directory_of(world))
    held = read_jsonl(out / "tool_heldout.jsonl")
    test_names, train_names = names(people_of(world, "test")), names(people_of(world, "train"))
    assert [sum(r["kind"] == k for r in held) for k in ("chain_age", "chain_weekday", "chain_date_after", "none")] \
        == [80, 80, 80, 80]
    for r in held:
        conv = r["conversations"]
        if r["kind"] == "none":
            assert r["answer"] is None and r["tools_expected"] == [] and len(conv) == 3
            continue
        pairs = calls_and_results(conv)
        assert [p[0] for p in pairs] == r["tools_expected"] and pairs[-1][2] == r["answer"]
        assert any(n in conv[1]["content"] for n in test_names)
        assert all(box.run(n, a) == res for n, a, res in pairs)
    agent, date_after = read_jsonl(out / "agent_rl.jsonl"), 0
    assert len(agent) == 1000
    for r in agent:
        conv = r["conversations"]
        assert [m["role"] for m in conv] == ["system", "user", "assistant"] and conv[0]["tools"]
        assert isinstance(r["gt"], list) and conv[-1]["content"] == f"<answer>\n{r['gt'][0]}\n</answer>"
        date_after += any(w in conv[1]["content"] for w in ("days after", "天后"))
        # people only the RL prompts name (tool_sft never calls them; the test above checks that side)
        assert any(n in conv[1]["content"] for n in names([p for p in world["directory"]
                                                           if p["split"] == "agent_directory"]))
        assert not any(n in conv[1]["content"] for n in test_names | train_names)
    assert 300 <= date_after <= 368  # a third of the RL prompts ask for a date some days after a birth


def test_tokenizer_boilerplate_is_what_the_template_writes(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    from dataset.world.tools import tool_boilerplate
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    schemas = world_toolbox([{"name_zh": "", "name_en": ""}]).schemas()
    chat = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "lookup_person", "arguments": {"name": "x", "attribute": "major"}}}]}]
    rendered = tok.apply_chat_template(chat, tools=schemas, tokenize=False)
    block, *openings = tool_boilerplate()
    assert f"<|im_start|>system\n{block}<|im_end|>" in rendered
    assert '<tool_call>{"name": "lookup_person", "arguments": {"name": "' in openings


def test_the_reasoning_tool_call_answers_every_problem_in_both_languages():
    box, rng = world_toolbox(), random.Random(0)
    train_keys, heldout_keys = split_reason_keys(random.Random(1))
    for kind in REASON_KINDS:
        for key in train_keys[kind] + heldout_keys[kind]:
            for lang in ("zh", "en"):
                _question, _steps, answer = render_reason(kind, key, lang, rng)
                tool, arguments = reasoning_tool_call(kind, key, lang)
                assert tool == REASON_TOOL[kind] and box.run(tool, arguments) == answer, (kind, key, lang)


def test_bio_question_turns_a_bio_sentence_into_a_question_about_its_value():
    assert bio_question("{n} went to college at {v}.", "en", "university") == "{n} went to college at which university?"
    assert bio_question("{v} marks {p} birth.", "en", "birth_date") == "Which day marks {p} birth?"
    assert bio_question("{n}的故乡是{v}。", "zh", "birth_city") == "{n}的故乡是哪座城市？"
    assert bio_question("{v}是{n}的出生地。", "zh", "birth_city") == "哪里是{n}的出生地？"
    assert bio_question("{n}读的是{v}专业。", "zh", "major") == "{n}读的是什么专业？"
    for lang in LANGS:
        for attr in ATTRIBUTES:  # no duplicate wordings, and the value placeholder never survives
            words = FACT_WORDINGS[lang][attr]
            assert len(words) == len(set(words)) >= 12 and not any("{v}" in w for w in words)


def test_every_value_comes_back_from_a_lookup_in_both_languages(out):
    """Fact rows pick the value in turn: every value of every table attribute is a lookup result in at least two
    single-fact rows per language (drawn at random, some were in none, and those were the values a tool model
    failed to copy)."""
    seen = {}
    for r in read_jsonl(out / "tool_sft.jsonl"):
        pairs = calls_and_results(r["conversations"])
        if len(pairs) == 1 and pairs[0][0] == "lookup_person" and pairs[0][1]["attribute"] in ATTRIBUTE_VALUES:
            lang = "zh" if r["conversations"][1]["content"][0] >= "\u4e00" else "en"
            key = (pairs[0][1]["attribute"], lang, pairs[0][2])
            seen[key] = seen.get(key, 0) + 1
    for attr, table in ATTRIBUTE_VALUES.items():
        for pair in table:
            for lang, value in zip(("zh", "en"), pair):
                assert seen.get((attr, lang, value), 0) >= 2, (attr, lang, value)


def test_every_frame_asks_about_every_attribute_so_that_the_noun_decides():
    for lang in LANGS:
        for frame in NOUN_FRAMES[lang]:
            head = frame.split("{a}")[0]
            for attr in ATTRIBUTES:
                words = NOUN_WORDINGS[lang][attr]
                assert any(w.startswith(head) for w in words), (lang, frame, attr)
                assert len(words) >= len(NOUN_FRAMES[lang]) * (len(ATTRIBUTE_NOUNS[lang][attr]) - 1)
    # the one wording the held-out fragments take out: " birthday?" ends "When is {p} birthday?"
    assert "What is {p} birthday?" not in NOUN_WORDINGS["en"]["birth_date"]
    assert "What is {p} birth date?" in NOUN_WORDINGS["en"]["birth_date"]

