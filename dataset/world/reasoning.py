"""reason.jsonl, reason_direct.jsonl and reason_heldout.jsonl: small multi-step arithmetic word problems.

The same questions are answered with a <think> trace (reason) and without one (reason_direct), so the two training
runs differ only in the trace.  Each kind's number combinations are split between train and held-out, so held-out
problems need arithmetic the model never saw worked out.
"""
import random

from dataset.world.common import msg, seeded_rng
from dataset.world.people import BIRTH_YEARS, LANGS, MONTHS_EN

# ---------------------------------------------------------------------------------------------------------------------
# Reasoning problems: small numbers, 2-4 easy steps.  Actors are NOT world people (so no world fact is restated).
# ---------------------------------------------------------------------------------------------------------------------
REASON_KINDS = ("boxes", "buy_give", "shopping", "age", "weekday", "date")
REASON_HELDOUT_FRACTION = 0.15  # share of each kind's problem space (numbers) reserved for reason_heldout.jsonl
ACTORS = [("小明", "Xiaoming"), ("小红", "Xiaohong"), ("小刚", "Xiaogang"), ("小丽", "Xiaoli"), ("小华", "Xiaohua"),
          ("小军", "Xiaojun"), ("小芳", "Xiaofang"), ("小宇", "Xiaoyu")]
COUNT_ITEMS = [("苹果", "apples"), ("梨", "pears"), ("橘子", "oranges"), ("桃子", "peaches"), ("鸡蛋", "eggs"),
               ("包子", "buns")]
PRICED_ITEMS = [("笔", "支", "pen", "pens"), ("本子", "本", "notebook", "notebooks"), ("苹果", "个", "apple", "apples"),
                ("杯子", "个", "cup", "cups")]
WEEKDAYS = {"zh": ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"],
            "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]}
PAYMENTS = (10, 20, 50)
LAST_YEAR = 2025  # age questions never ask about a year after this one


def reason_problem_space(kind: str) -> list[tuple]:
    """All number combinations ("keys") of one problem kind.  Keys are split between train and held-out, so held-out
    problems need arithmetic the model never saw worked out."""
    if kind == "boxes":  # a boxes of b items, c given away
        return [(a, b, c) for a in range(2, 6) for b in range(2, 7) for c in range(1, min(9, a * b - 1) + 1)]
    if kind == "buy_give":  # have a, buy b, give c away
        return [(a, b, c) for a in range(2, 10) for b in range(1, 10) for c in range(1, min(9, a + b - 1) + 1)]
    if kind == "shopping":  # q items at price p, pay with a note
        return [(p, q, pay) for p in range(1, 10) for q in range(2, 6) for pay in PAYMENTS if pay >= p * q]
    if kind == "age":  # born in y1, age in y1 + d
        years = range(BIRTH_YEARS[0], BIRTH_YEARS[1] + 1)
        return [(y1, d) for y1 in years for d in range(1, 31) if y1 + d <= LAST_YEAR]
    if kind == "weekday":  # weekday index (1..7) and offset in days
        return [(start, k) for start in range(1, 8) for k in range(1, 14)]
    if kind == "date":  # month, day, whole weeks, extra days
        return [(m, d, w, r) for m in range(1, 13) for d in range(1, 28) for w in (1, 2) for r in range(0, 7)
                if d + 7 * w + r <= 28]
    raise ValueError(kind)


def _age_segments(y1: int, y2: int) -> list[tuple[int, int]]:
    """Split y1..y2 at round decades, e.g. 1995..2012 -> (1995,2000),(2000,2010),(2010,2012): each step is easy."""
    points = [y1]
    first_decade, last_decade = -(-y1 // 10) * 10, (y2 // 10) * 10
    if first_decade <= last_decade:
        for p in (first_decade, last_decade):
            if p > points[-1]:
                points.append(p)
    if y2 > points[-1]:
        points.append(y2)
    return list(zip(points, points[1:]))


def render_reason(kind: str, key: tuple, lang: str, rng: random.Random) -> tuple[str, list[str], str]:
    """Return (question, trace steps, final answer) for one problem."""
    actor = rng.choice(ACTORS)[0 if lang == "zh" else 1]
    zh = lang == "zh"
    if kind == "boxes":
        a, b, c = key
        item = rng.choice(COUNT_ITEMS)
        p, r = a * b, a * b - c
        if zh:
            q = f"{actor}有{a}盒{item[0]}，每盒{b}个。{actor}送出了{c}个，还剩多少个{item[0]}？"
            steps = [f"{a}盒，每盒{b}个：{a}×{b}={p}。", f"送出{c}个：{p}-{c}={r}。"]
        else:
            q = (f"{actor} has {a} boxes of {item[1]} with {b} in each box. {actor} gives away {c}. "
                 f"How many {item[1]} are left?")
            steps = [f"{a} boxes with {b} each: {a} × {b} = {p}.", f"After giving away {c}: {p} - {c} = {r}."]
        return q, steps, str(r)
    if kind == "buy_give":
        a, b, c = key
        item = rng.choice(COUNT_ITEMS)
        s, r = a + b, a + b - c
        if zh:
            q = f"{actor}有{a}个{item[0]}，又买了{b}个，然后送给朋友{c}个。{actor}现在有多少个{item[0]}？"
            steps = [f"买了{b}个：{a}+{b}={s}。", f"送出{c}个：{s}-{c}={r}。"]
        else:
            q = (f"{actor} has {a} {item[1]}, buys {b} more, and then gives {c} to a friend. "
                 f"How many {item[1]} does {actor} have now?")
            steps = [f"After buying {b}: {a} + {b} = {s}.", f"After giving away {c}: {s} - {c} = {r}."]
        return q, steps, str(r)
    if kind == "shopping":
        p, n, pay = key
        name_zh, unit, one_en, many_en = rng.choice(PRICED_ITEMS)
        t, r = p * n, pay - p * n
        if zh:
            q = f"一{unit}{name_zh}{p}元。{actor}买了{n}{unit}{name_zh}，付了{pay}元，应该找回多少元？"
            steps = [f"总价：{p}×{n}={t}元。", f"找回：{pay}-{t}={r}元。"]
        else:
            q = f"One {one_en} costs {p} yuan. {actor} buys {n} {many_en} and pays {pay} yuan. How much change is due?"
            steps = [f"Total cost: {p} × {n} = {t} yuan.", f"Change: {pay} - {t} = {r} yuan."]
        return q, steps, str(r)
    if kind == "age":
        y1, d = key
        y2 = y1 + d
        segments = _age_segments(y1, y2)
        parts = [b - a for a, b in segments]
        if zh:
            q = f"{actor}出生于{y1}年。在{y2}年，{actor}多少岁？"
            steps = [f"从{a}年到{b}年：{b}-{a}={b - a}年。" for a, b in segments]
            if len(parts) > 1:
                steps.append("+".join(map(str, parts)) + f"={d}。")
        else:
            q = f"{actor} was born in {y1}. How old was {actor} in {y2}?"
            steps = [f"From {a} to {b}: {b} - {a} = {b - a} years." for a, b in segments]
            if len(parts) > 1:
                steps.append(" + ".join(map(str, parts)) + f" = {d}.")
        return q, steps, str(d)
    if kind == "weekday":
        start, k = key
        names = WEEKDAYS[lang]
        s = start + k
        chain = [s]
        while chain[-1] > 7:
            chain.append(chain[-1] - 7)
        t = chain[-1]
        if zh:
            q = f"今天是{names[start - 1]}。{actor}{k}天后要去看电影，那天是星期几？"
            steps = [f"{names[start - 1]}是一周的第{start}天。", f"{start}+{k}={s}。"]
            steps += [f"{x}-7={x - 7}。" for x in chain[:-1]]
            steps.append(f"第{t}天是{names[t - 1]}。")
        else:
            q = (f"Today is {names[start - 1]}. {actor} will see a movie in {k} day{'s' if k > 1 else ''}. "
                 "What day of the week will that be?")
            steps = [f"{names[start - 1]} is day {start} of the week.", f"{start} + {k} = {s}."]
            steps += [f"{x} - 7 = {x - 7}." for x in chain[:-1]]
            steps.append(f"Day {t} is {names[t - 1]}.")
        return q, steps, names[t - 1]
    if kind == "date":
        m, d, w, r = key
        days = 7 * w + r
        d2 = d + days
        if zh:
            tail = f"{w}周零{r}天" if r else f"{w}周"
            q = f"今天是{m}月{d}日。再过{tail}是几月几日？"
            steps = [f"{w}周是{w}×7={7 * w}天。"]
            if r:
                steps.append(f"{7 * w}+{r}={days}天。")
            steps.append(f"{d}+{days}={d2}。")
            return q, steps, f"{m}月{d2}日"
        month = MONTHS_EN[m - 1]
        weeks = f"{w} week{'s' if w > 1 else ''}"
        tail = f"{weeks} and {r} day{'s' if r > 1 else ''}" if r else weeks
        q = f"Today is {month} {d}. What is the date {tail} from today?"
        steps = [f"{weeks} is {w} × 7 = {7 * w} days."]
        if r:
            steps.append(f"{7 * w} + {r} = {days} days.")
        steps.append(f"{d} + {days} = {d2}.")
        return q, steps, f"{month} {d2}"
    raise ValueError(kind)


def think_reply(steps: list[str], final: str) -> str:
    return "<think>\n" + "\n".join(steps) + "\n</think>\n<answer>\n" + final + "\n</answer>"


def direct_reply(final: str) -> str:
    return "<answer>\n" + final + "\n</answer>"


def split_reason_keys(rng: random.Random) -> tuple[dict, dict]:
    """(train keys, held-out keys) per kind; with seeded_rng(seed, "reason") the split every reasoning file uses."""
    train_keys, heldout_keys = {}, {}
    for kind in REASON_KINDS:
        keys = reason_problem_space(kind)
        rng.shuffle(keys)
        n_hold = max(1, round(len(keys) * REASON_HELDOUT_FRACTION))
        heldout_keys[kind], train_keys[kind] = keys[:n_hold], keys[n_hold:]
    return train_keys, heldout_keys


def calculator_expression(kind: str, key: tuple) -> str:
    """The one calculator expression that answers a problem (the tool-use data's call; weekday and date problems
    compute a day number that the reply then names)."""
    if kind == "boxes":
        return f"{key[0]} * {key[1]} - {key[2]}"
    if kind == "buy_give":
        return f"{key[0]} + {key[1]} - {key[2]}"
    if kind == "shopping":
        p, n, pay = key
        return f"{pay} - {p} * {n}"
    if kind == "age":
        return f"{key[0] + key[1]} - {key[0]}"
    if kind == "weekday":
        return f"({key[0]} + {key[1]} - 1) % 7 + 1"
    if kind == "date":
        m, d, w, r = key
        return f"{d} + {w} * 7 + {r}"
    raise ValueError(kind)


# The tool that answers each kind: the calculator for counts, years and money, days_after for weekdays and dates,
# whose answer is a name the calculator cannot write.
REASON_TOOL = {kind: ("days_after" if kind in ("weekday", "date") else "calculator") for kind in REASON_KINDS}


def reasoning_tool_call(kind: str, key: tuple, lang: str) -> tuple[str, dict]:
    """(tool, arguments) of the one call that answers a problem (REASON_TOOL[kind])."""
    if kind == "weekday":
        return "days_after", {"start": WEEKDAYS[lang][key[0] - 1], "weeks": 0, "days": key[1]}
    if kind == "date":
        m, d, w, r = key
        return "days_after", {"start": f"{m}月{d}日" if lang == "zh" else f"{MONTHS_EN[m - 1]} {d}", "weeks": w,
                              "days": r}
    return "calculator", {"expression": calculator_expression(kind, key)}


def build_reason(seed, n_train, n_heldout, n_rl=0) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """(reason, reason_direct, reason_heldout, rlaif): rlaif holds n_rl RL prompts drawn from the TRAIN number
    combinations (upstream's rlaif layout plus the reference answer), so reason_heldout stays unseen by RL too."""
    rng = seeded_rng(seed, "reason")
    train_keys, heldout_keys = split_reason_keys(rng)
    reason, direct, train_questions = [], [], set()
    for i in range(n_train):  # kinds and languages in rotation, so every mix is balanced
        kind, lang = REASON_KINDS[i % len(REASON_KINDS)], LANGS[(i // len(REASON_KINDS)) % 2]
        q, steps, final = render_reason(kind, rng.choice(train_keys[kind]), lang, rng)
        train_questions.add(q)
        reason.append({"conversations": [msg("user", q), msg("assistant", think_reply(steps, final))]})
        direct.append({"conversations": [msg("user", q), msg("assistant", direct_reply(final))]})
    heldout, seen = [], set()
    for i in range(n_heldout):
        kind, lang = REASON_KINDS[i % len(REASON_KINDS)], LANGS[(i // len(REASON_KINDS)) % 2]
        for _attempt in range(50):  # avoid duplicate held-out questions (keys already exclude train questions)
            q, steps, final = render_reason(kind, rng.choice(heldout_keys[kind]), lang, rng)
            if q not in seen and q not in train_questions:
                break
        seen.add(q)
        heldout.append({"conversations": [msg("user", q), msg("assistant", think_reply(steps, final))],
                        "answer": final, "lang": lang, "kind": kind})
    rl_rng, rlaif = seeded_rng(seed, "rlaif"), []
    for i in range(n_rl):
        kind, lang = REASON_KINDS[i % len(REASON_KINDS)], LANGS[(i // len(REASON_KINDS)) % 2]
        q, steps, final = render_reason(kind, rl_rng.choice(train_keys[kind]), lang, rl_rng)
        rlaif.append({"conversations": [msg("user", q), msg("assistant", think_reply(steps, final))],
                      "answer": final, "lang": lang, "kind": kind})
    return reason, direct, heldout, rlaif
