"""tool_sft.jsonl, tool_heldout.jsonl and agent_rl.jsonl: the world's questions answered through tools.

    system: tools (calculator, weekday, days_after, lookup_person)          ← on the system message, as upstream's rows
    user:   Xiaoming has 3 boxes of pears with 5 in each box. … How many pears are left?
    assistant: <tool_call>{"name": "calculator", "arguments": {"expression": "3 * 5 - 4"}}</tool_call>
    tool:   11
    assistant: <answer>\\n11\\n</answer>

Four kinds, both languages: arithmetic word problems (the reasoning files' TRAIN number combinations; their held-out
combinations stay unseen; weekdays and dates through days_after), one fact about a person (the birth date twice as
often as each other attribute; echo wordings, the tool rows' own TOOL_QUESTIONS, every bio sentence as a question
and each attribute's nouns in a set of frames, each wording in turn; the held-out paraphrase wordings stay unseen),
two-step chains (look up a birth date, then compute an age or a weekday; in 1 of 75 chains the date some days
later) and prompts that need no tool, answered directly though tools are offered; a tenth offer no tools and are
answered directly. Facts and chains ask about directory-only people (build_directory, DIRECTORY_SHARE), so the model
learns to copy the name it is asked about into the call; a fact row picks the looked-up value in turn, so every
value comes back from a lookup (and is copied into an answer) in a fair share of the rows. A fifth of the fact and
chain questions open the way users open them ("请问…", "Quick question: …"). A third of the rows switch thinking off
(an empty think block) so both template modes are trained.

tool_heldout.jsonl holds the chains about HELD-OUT people and fresh no-tool prompts, a third of them of a kind few
tool_sft rows show (the birth date, then the date some days after it; agent_rl.jsonl asks it as often, so agentic RL
has a composition to learn); the evaluation takes its arithmetic and single facts from reason_heldout.jsonl and
qa_heldout.jsonl, so answers with and without tools are compared on the same questions. agent_rl.jsonl holds chains
about a second set of directory-only people that no tool_sft row names (so RL practises copying names no call has
shown, the skill the held-out questions test), with the ground truth as upstream's `gt` list.
"""
import re

from dataset.tool_messages import tools_block
from dataset.world.common import msg, seeded_rng
from dataset.world.identity import BASE_IDENTITY
from dataset.world.people import (ATTRIBUTE_VALUES, ATTRIBUTES, CITIES, LANGS, answer_sentence, bio_question,
                                  make_people, person_name, render_question)
from dataset.world.reasoning import (LAST_YEAR, REASON_KINDS, direct_reply, reasoning_tool_call, render_reason,
                                     split_reason_keys)
from dataset.world.templates import (ASK_PREFIXES, ATTRIBUTE_NOUNS, BIO_QUESTION_WH, BIO_TEMPLATES, ECHO_QUESTIONS,
                                     GREETINGS, NOUN_FRAMES, PARAPHRASE_QUESTIONS, TOOL_QUESTIONS, TRANSLATE_TO_EN,
                                     TRANSLATE_TO_EN_ANSWER, TRANSLATE_TO_ZH, TRANSLATE_TO_ZH_ANSWER)
from toolcall.world import world_toolbox

CHAIN_QUESTIONS = {
    "age": {"zh": ["{n}在{y}年满多少岁？", "到{y}年，{n}满几岁？"],
            "en": ["How old does {n} turn in {y}?", "What age does {n} reach in {y}?"]},
    "weekday": {"zh": ["{n}出生那天是星期几？", "{n}是星期几出生的？"],
                "en": ["On what day of the week was {n} born?", "Which weekday was {n} born on?"]},
    "date_after": {"zh": ["{n}出生{d}天后是哪一天？", "从{n}出生那天算起，{d}天后是几月几日？"],
                   "en": ["What date is {d} days after {n} was born?",
                          "{d} days after {n} was born, what was the date?"]},
}
# Two-step kinds. Tool SFT shows "date_after" (the birth date, then days_after from it) in a handful of rows, a cold
# start: a model that never saw it answers with the birth date after one call and RL has nothing to reinforce; one
# that saw it in eight rows over 2,000 steps gets it right a fifth to a third of the time, and agentic RL learns more
# from those rollouts (with eleven rows tool SFT alone gets it right 50-80% of the time, with a tenth of the chains
# nearly always, and leaves RL little to do; with too few rows it gets it right a few per cent of the time and RL's
# gain depends on which rare success it happens to sample; docs/results.md). The held-out tasks and the RL prompts
# ask all three alike.
CHAINS = ("age", "weekday", "date_after")
# Every 75th chain row (8 of the default 3,000 rows): a fixed count rather than a draw, since a few rows more or less
# move the cold start a lot; odd, so that both languages take turns.
DATE_AFTER_SFT_EVERY = 75
THINKING_OFF_SHARE = 1 / 3
# Share of the fact and chain rows whose question opens with one of ASK_PREFIXES.
ASK_PREFIX_SHARE = 0.2
# Share of the arithmetic rows whose numbers range far beyond the reasoning problems': with the tool doing the
# arithmetic, the model's job is to copy the numbers into the expression, and numbers it cannot have memorised
# make it learn copying rather than the train combinations.
WIDE_SHARE = 0.5
# Share of the fact and chain rows about directory-only people. Calls that name the few train-half people over and
# over teach their names as likely outputs, and a held-out person's name then gets "completed" into a trained one
# ("Lin Yuexia" → "Lin Jiazi"); a call about someone seen nowhere else can only be right by copying.
DIRECTORY_SHARE = 1.0



def _held_out_fragments() -> list[str]:
    """The longest fixed piece of each held-out paraphrase wording ("Where was ", " go to college?"): no training
    question may contain one, so the paraphrases stay unseen wordings."""
    return [max(re.split(r"\{[np]\}", t), key=len)
            for lang in LANGS for ts in PARAPHRASE_QUESTIONS[lang].values() for t in ts]


def noun_wordings(lang: str, attr: str) -> list[str]:
    """Every frame of NOUN_FRAMES with every noun of the attribute, less those that contain a held-out fragment."""
    fragments = _held_out_fragments()
    out = [f.replace("{a}", noun).replace("{wh}", BIO_QUESTION_WH[lang][attr])
           for f in NOUN_FRAMES[lang] for noun in ATTRIBUTE_NOUNS[lang][attr]]
    return [w for w in out if not any(frag in w for frag in fragments)]


# The wordings of the single-fact rows: the echo questions, the tool rows' own and every bio sentence turned into a
# question, so that each word the bios tie to an attribute also leads to that attribute in a call; and, in a third
# of the rows (NOUN_SHARE), the attribute's nouns in every frame.
FACT_WORDINGS = {lang: {attr: list(dict.fromkeys(ECHO_QUESTIONS[lang][attr] + TOOL_QUESTIONS[lang][attr]
                                                 + [bio_question(t, lang, attr) for t in BIO_TEMPLATES[lang][attr]]))
                        for attr in ATTRIBUTES} for lang in LANGS}
NOUN_WORDINGS = {lang: {attr: noun_wordings(lang, attr) for attr in ATTRIBUTES} for lang in LANGS}
NOUN_SHARE = 1 / 3
# The attributes a fact row asks about, in turn, the birth date twice as often: most rows that look it up go on to a second
# call (all 600 chains do), and a model that has seen few stop after it calls weekday on "Which day …?".
FACT_ATTRIBUTES = ATTRIBUTES + ("birth_date",)


def wide_key(kind: str, rng, held_out: set) -> tuple:
    """A problem of `kind` with numbers from a wide range (never one of the held-out keys)."""
    while True:
        if kind == "boxes":
            a, b = rng.randint(2, 40), rng.randint(2, 40)
            key = (a, b, rng.randint(1, a * b - 1))
        elif kind == "buy_give":
            a, b = rng.randint(2, 99), rng.randint(1, 99)
            key = (a, b, rng.randint(1, a + b - 1))
        elif kind == "shopping":
            p, n = rng.randint(1, 99), rng.randint(2, 20)
            key = (p, n, rng.choice([pay for pay in (10, 20, 50, 100, 200, 500, 1000, 2000) if pay >= p * n]))
        elif kind == "age":
            y1 = rng.randint(1900, 2020)
            key = (y1, rng.randint(1, LAST_YEAR - y1))
        elif kind == "weekday":
            key = (rng.randint(1, 7), rng.randint(1, 99))
        else:  # date: the month leaves little room, so the reasoning problem space itself
            m, w, r = rng.randint(1, 12), rng.randint(1, 2), rng.randint(0, 6)
            key = (m, rng.randint(1, 28 - 7 * w - r), w, r)
        if (kind, key) not in held_out:
            return key


def tool_boilerplate() -> list[str]:
    """The fixed text tool chats repeat — the tools block as the chat template writes it and each call's opening —
    for a tokenizer corpus: merged into few tokens, it keeps tool prompts and calls short, without the tool rows'
    questions and names changing how everything else tokenizes."""
    schemas = world_toolbox([{"name_zh": "", "name_en": ""}]).schemas()
    texts = [tools_block(schemas)]
    for t in schemas:
        fn = t["function"]
        texts += [f'<tool_call>{{"name": "{fn["name"]}", "arguments": {{"{key}": "'
                  for key in fn["parameters"]["properties"]]
    return texts


def build_directory(people: list[dict], seed, n: int, exclude=(), label: str = "directory") -> list[dict]:
    """n people who exist only in lookup_person's directory (no bio, no question anywhere else). Tool rows about
    them teach COPYING a name into a call: with the world's few train-half people alone, a small model learns to
    write the names it has seen rather than the one it was asked about. Their names recombine the world's own
    surnames and given names (never a world person's full name): the tokenizer has whole-word pieces for the world's
    given names ("ĠYuexia"), and a held-out name is copied only if calls have copied those pieces — directory names
    spelled from other syllables teach copying of other pieces (measured in docs/results.md, "Which pieces get
    copied"). Attributes are drawn at random; no fact of a world person is involved. `exclude`: earlier directory
    people whose names stay unused; `label` names the draw and becomes the people's split."""
    rng = seeded_rng(seed, label)
    surnames = [(p["name_zh"][0], p["name_en"].split()[0]) for p in people]
    given = [(p["name_zh"][1:], p["name_en"].split()[1]) for p in people]
    taken = {p[key] for p in (*people, *exclude) for key in ("name_zh", "name_en")}
    world_en = [p["name_en"] for p in people]
    out = []
    for p in make_people(f"{seed}:{label}", n):
        for _attempt in range(1000):
            (s_zh, s_en), (g_zh, g_en) = rng.choice(surnames), rng.choice(given)
            name_zh, name_en = s_zh + g_zh, f"{s_en} {g_en}"
            # not a world person's name, nor the start of one ("Yuan Wenmin" / "Yuan Wenming"): no other file may
            # mention a directory-only person, and a lookup must not be one letter from another person
            if name_zh not in taken and name_en not in taken and not any(
                    w.startswith(name_en) or name_en.startswith(w) for w in world_en):
                break
        else:
            break  # the world's name pieces are used up
        taken |= {name_zh, name_en}
        out.append({**p, "id": len(exclude) + len(out), "name_zh": name_zh, "name_en": name_en, "split": label})
    return out


def _call(tool: str, **arguments) -> dict:
    return {"type": "function", "function": {"name": tool, "arguments": arguments}}


def _assistant(content: str, thinking_off: bool, calls: list | None = None) -> dict:
    m = msg("assistant", content)
    if calls:
        m["tool_calls"] = calls
    if thinking_off:
        m["reasoning_content"] = ""
    return m


def _answer(value: str) -> str:
    return f"<answer>\n{value}\n</answer>"


def _tool_chat(tools, question, steps, final, thinking_off):
    """[system+tools, user, (assistant call, tool result)*, assistant final]; steps: [(call, result), ...]."""
    msgs = [{"role": "system", "content": "", "tools": tools}, msg("user", question)]
    for call, result in steps:
        msgs += [_assistant("", thinking_off, [call]), msg("tool", result)]
    return msgs + [_assistant(final, thinking_off)]


def calc_chat(box, kind, key, lang, rng, thinking_off=False):
    """An arithmetic word problem answered through the calculator, or days_after for weekdays and dates."""
    question, _steps, final = render_reason(kind, key, lang, rng)
    tool, arguments = reasoning_tool_call(kind, key, lang)
    result = box.run(tool, arguments)
    if result != final:
        raise AssertionError(f"{tool}{arguments} gives {result!r}, the problem's answer is {final!r}")
    return _tool_chat(box.schemas(), question, [(_call(tool, **arguments), result)], _answer(final),
                      thinking_off), final


def lookup_chat(box, person, attr, lang, question, thinking_off=False):
    """A fact looked up and answered with the tool's result alone: a sentence that restates the fact ("Chen Linjia
    majored in …") lets a model that read about the person complete it from memory instead of from the result."""
    name = person_name(person, lang)
    result = box.run("lookup_person", {"name": name, "attribute": attr})
    return _tool_chat(box.schemas(), question, [(_call("lookup_person", name=name, attribute=attr), result)],
                      _answer(result), thinking_off)


def chain_chat(box, person, kind, lang, rng, thinking_off=False):
    """(chat, ground truth) for a two-step question: birth date, then age in a year, the weekday of birth or the date
    some days after it."""
    name = person_name(person, lang)
    birth = box.run("lookup_person", {"name": name, "attribute": "birth_date"})
    steps = [(_call("lookup_person", name=name, attribute="birth_date"), birth)]
    born = person["birth_date"]["year"]
    if kind == "age":
        year = rng.randint(born + 1, min(born + 45, LAST_YEAR))
        question = rng.choice(CHAIN_QUESTIONS["age"][lang]).format(n=name, y=year)
        expression = f"{year} - {born}"
        truth = box.run("calculator", {"expression": expression})
        steps.append((_call("calculator", expression=expression), truth))
    elif kind == "weekday":
        question = rng.choice(CHAIN_QUESTIONS["weekday"][lang]).format(n=name)
        truth = box.run("weekday", {"date": birth})
        steps.append((_call("weekday", date=birth), truth))
    else:
        days = rng.randint(10, 60)
        question = rng.choice(CHAIN_QUESTIONS["date_after"][lang]).format(n=name, d=days)
        truth = box.run("days_after", {"start": birth, "weeks": 0, "days": days})
        steps.append((_call("days_after", start=birth, weeks=0, days=days), truth))
    return _tool_chat(box.schemas(), question, steps, _answer(truth), thinking_off), truth


def no_tool_chat(box, lang, rng, thinking_off=False):
    """A prompt that needs no tool (greeting, identity, a city's name in the other language), answered directly."""
    pick = rng.randrange(4)
    if pick == 0:
        q, a = rng.choice(GREETINGS[lang]), BASE_IDENTITY["greeting_reply"][lang]
    elif pick == 1:
        q, a = rng.choice(BASE_IDENTITY["questions"][lang]), rng.choice(BASE_IDENTITY["answers"][lang])
    else:
        zh, en = rng.choice(CITIES)
        if pick == 2:
            q, a = TRANSLATE_TO_EN[lang].format(zh=zh), TRANSLATE_TO_EN_ANSWER[lang].format(zh=zh, en=en)
        else:
            q, a = TRANSLATE_TO_ZH[lang].format(en=en), TRANSLATE_TO_ZH_ANSWER[lang].format(zh=zh, en=en)
    return [{"role": "system", "content": "", "tools": box.schemas()}, msg("user", q),
            _assistant(a, thinking_off)]


def plain_chat(person, kind, key, lang, rng):
    """No tools offered: the question is answered directly (a fact, or an arithmetic answer block), so a model that
    learned tools still tells offered tools from none."""
    if person is not None:
        attr = rng.choice(ATTRIBUTES)
        question = render_question(rng.choice(ECHO_QUESTIONS[lang][attr]), person, lang)
        return [msg("user", question), msg("assistant", answer_sentence(person, attr, lang))]
    question, _steps, final = render_reason(kind, key, lang, rng)
    return [msg("user", question), msg("assistant", direct_reply(final))]


def build_tool_data(people, seed, n_sft, n_heldout, n_agent, directory=(), agent_directory=()) -> tuple[list, list,
                                                                                                    list]:
    """(tool_sft, tool_heldout, agent_rl). tool_sft mixes the kinds 3 : 3 : 2 : 1 : 1 (arithmetic : fact : chain :
    no tool needed : no tool offered); facts and chains ask about directory-only people (DIRECTORY_SHARE).
    agent_rl asks about agent_directory's people (else like tool_sft's facts and chains)."""
    box = world_toolbox(list(people) + list(directory) + list(agent_directory))
    train = [p for p in people if p["split"] == "train"]

    def askable(r):  # whom a fact or chain row asks about (see DIRECTORY_SHARE)
        return r.choice(directory) if directory and r.random() < DIRECTORY_SHARE else r.choice(train)

    # A small model copies the values it has seen come back from a lookup, not any value: with people drawn at
    # random, some universities or majors were never a tool result (0-1 of ~900 fact rows) and those are the ones
    # whose copy fails ("Philosophy" answered as "Physics"). So a fact row picks the VALUE in turn (each value of
    # the attribute once per round, per language), then a directory person who holds it.
    holders = {attr: {} for attr in ATTRIBUTE_VALUES}
    for p in directory:
        for attr, by_value in holders.items():
            by_value.setdefault(p[attr]["en"], []).append(p)
    rounds = {}

    def fact_person(r, attr, lang):
        if attr not in holders or not directory or r.random() >= DIRECTORY_SHARE:
            return askable(r)
        return r.choice(holders[attr][in_turn(r, ("value", lang, attr), holders[attr])])

    def in_turn(r, key, choices):  # each of choices once per round, in a fresh random order each round
        left = rounds.get(key)
        if not left:
            left = rounds[key] = sorted(choices)
            r.shuffle(left)
        return left.pop()

    test = [p for p in people if p["split"] == "test"]
    train_keys, heldout_keys = split_reason_keys(seeded_rng(seed, "reason"))
    held_out = {(kind, key) for kind, keys in heldout_keys.items() for key in keys}
    rng = seeded_rng(seed, "tool_sft")
    rows, n_chains = [], 0
    for i in range(n_sft):
        lang, off = LANGS[i % 2], rng.random() < THINKING_OFF_SHARE
        slot = (i // 2) % 10
        if slot < 3:
            kind = REASON_KINDS[rng.randrange(len(REASON_KINDS))]
            key = wide_key(kind, rng, held_out) if rng.random() < WIDE_SHARE else rng.choice(train_keys[kind])
            chat, _ = calc_chat(box, kind, key, lang, rng, off)
        elif slot < 6:
            attr = in_turn(rng, ("attribute", lang), FACT_ATTRIBUTES)
            person = fact_person(rng, attr, lang)
            pool = "noun" if rng.random() < NOUN_SHARE else "sentence"  # wordings in turn, like the values
            wording = in_turn(rng, (pool, lang, attr), (NOUN_WORDINGS if pool == "noun" else FACT_WORDINGS)[lang][attr])
            question = render_question(wording, person, lang)
            chat = lookup_chat(box, person, attr, lang, question, off)
        elif slot < 8:
            n_chains += 1
            kind = "date_after" if n_chains % DATE_AFTER_SFT_EVERY == 0 else rng.choice(("age", "weekday"))
            chat, _ = chain_chat(box, askable(rng), kind, lang, rng, off)
        elif slot < 9:
            chat = no_tool_chat(box, lang, rng, off)
        else:
            kind = REASON_KINDS[rng.randrange(len(REASON_KINDS))]
            chat = plain_chat(rng.choice(train) if rng.random() < 0.5 else None, kind, rng.choice(train_keys[kind]),
                              lang, rng)
        if 3 <= slot < 8 and rng.random() < ASK_PREFIX_SHARE:
            chat[1]["content"] = rng.choice(ASK_PREFIXES[lang]) + chat[1]["content"]
        rows.append({"conversations": chat})
    rng.shuffle(rows)

    held_rng, heldout = seeded_rng(seed, "tool_heldout"), []
    for i in range(n_heldout):
        lang, kind = LANGS[i % 2], (*CHAINS, "none")[(i // 2) % (len(CHAINS) + 1)]
        if kind == "none":
            chat, truth, tools = no_tool_chat(box, lang, held_rng), None, []
        else:
            chat, truth = chain_chat(box, held_rng.choice(test), kind, lang, held_rng)
            tools = [m["tool_calls"][0]["function"]["name"] for m in chat if m.get("tool_calls")]
        heldout.append({"conversations": chat, "kind": "chain_" + kind if kind != "none" else "none", "lang": lang,
                        "answer": truth, "tools_expected": tools})

    agent_rng, agent = seeded_rng(seed, "agent_rl"), []
    for i in range(n_agent):
        lang, kind = LANGS[i % 2], CHAINS[(i // 2) % len(CHAINS)]
        person = agent_rng.choice(agent_directory) if agent_directory else askable(agent_rng)
        chat, truth = chain_chat(box, person, kind, lang, agent_rng)
        agent.append({"conversations": chat[:2] + chat[-1:], "gt": [truth]})
    return rows, heldout, agent
