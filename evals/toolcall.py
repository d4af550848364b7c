"""Tool use on held-out questions: the full loop (model → tool call → tool result → model), scored for the right
tool, arguments valid against the tool's schema, a correct final answer, and false calls on prompts that need no
tool; the same questions are also asked without tools.

Questions (all held out from every training file): arithmetic word problems from reason_heldout.jsonl, facts about
held-out people from qa_heldout.jsonl, two-step chains about held-out people and prompts that need no tool from
tool_heldout.jsonl.
"""
import json
import os

from dataset.world.reasoning import REASON_TOOL
from evals.answers import check_fact_answer, check_reasoning_answer
from evals.qa import chat_replies
from toolcall.loop import run_tool_loop
from toolcall.world import world_toolbox

KINDS = ("arithmetic", "fact", "chain", "none")


def load_items(world_dir: str, n_per_kind: int | None = None) -> list[dict]:
    """{"kind", "lang", "question", "answer", "expected" (tool names in order)} per held-out question, and "group"
    (the problem kind of arithmetic, the wording of facts: echo / paraphrase, the task of chains: age / weekday /
    date_after) for the report's breakdown."""
    def rows(name):
        with open(os.path.join(world_dir, name), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def user(row):
        return next(m["content"] for m in row["conversations"] if m["role"] == "user")

    items = {k: [] for k in KINDS}
    for r in rows("reason_heldout.jsonl"):
        items["arithmetic"].append({"kind": "arithmetic", "lang": r["lang"], "question": user(r),
                                    "answer": r["answer"], "expected": [REASON_TOOL[r["kind"]]], "group": r["kind"]})
    for r in rows("qa_heldout.jsonl"):
        items["fact"].append({"kind": "fact", "lang": r["lang"], "question": user(r), "answer": r["answer"],
                              "expected": ["lookup_person"], "group": r["kind"]})
    for r in rows("tool_heldout.jsonl"):
        kind = "none" if r["kind"] == "none" else "chain"
        item = {"kind": kind, "lang": r["lang"], "question": user(r), "answer": r["answer"],
                "expected": r["tools_expected"]}
        if kind == "chain":
            item["group"] = r["kind"].removeprefix("chain_")
        items[kind].append(item)
    return [it for k in KINDS for it in items[k][:n_per_kind]]


def _correct(item, reply: str) -> bool:
    if item["kind"] == "fact":
        return check_fact_answer(reply, item["answer"])
    return check_reasoning_answer(reply, item["answer"])


def evaluate_tool_use(model, tokenizer, items: list[dict], people: list[dict], max_turns: int = 3,
                      max_new_tokens: int = 96, batch_size: int = 32, device="cpu", with_baseline: bool = True,
                      template_kwargs: dict | None = None) -> dict:
    box = world_toolbox(people)
    tools = box.schemas()

    def reply_fn(conversations):
        return chat_replies(model, tokenizer, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size,
                            device=device)

    convs = [[{"role": "system", "content": "", "tools": tools}, {"role": "user", "content": it["question"]}]
             for it in items]
    traces = run_tool_loop(reply_fn, convs, box, max_turns=max_turns)
    plain = reply_fn([[{"role": "user", "content": it["question"]}] for it in items]) if with_baseline else None

    report, samples = {}, []
    for kind in KINDS:
        idx = [i for i, it in enumerate(items) if it["kind"] == kind]
        if not idx:
            continue
        n = len(idx)
        called = [bool(traces[i].calls) or traces[i].malformed > 0 for i in idx]
        row = {"n": n, "called": sum(called) / n}
        if kind == "none":
            row["false_call"] = row["called"]
        else:
            right = [[c["name"] for c in traces[i].calls] == items[i]["expected"] for i in idx]
            with_calls = [i for i in idx if traces[i].calls]
            valid = [all(c["known"] and c["valid"] for c in traces[i].calls) for i in with_calls]
            row.update(right_tool=sum(right) / n,
                       args_valid=sum(valid) / len(with_calls) if with_calls else 0.0,
                       correct=sum(_correct(items[i], traces[i].final) for i in idx) / n)
            if plain is not None:
                row["correct_without_tools"] = sum(_correct(items[i], plain[i]) for i in idx) / n
            for lang in ("zh", "en"):
                sub = [i for i in idx if items[i]["lang"] == lang]
                if sub:
                    row[f"correct_{lang}"] = sum(_correct(items[i], traces[i].final) for i in sub) / len(sub)
            by = {}
            for i in idx:
                if "group" in items[i]:
                    by.setdefault(items[i]["group"], []).append(_correct(items[i], traces[i].final))
            if by:
                row["correct_by"] = {k: sum(v) / len(v) for k, v in sorted(by.items())}
        report[kind] = row
        for i in idx[:2]:
            samples.append({"kind": kind, "question": items[i]["question"], "answer": items[i]["answer"],
                            "calls": [{k: c[k] for k in ("name", "arguments", "result")} for c in traces[i].calls],
                            "final": traces[i].final, "without_tools": plain[i] if plain is not None else None})
    report["samples"] = samples
    return report


def format_report(report: dict) -> str:
    lines = [f"{'kind':<11} {'n':>4} {'right tool':>10} {'args valid':>10} {'correct':>8} {'no tools':>8} "
             f"{'called':>7}"]
    for kind in KINDS:
        r = report.get(kind)
        if not r:
            continue
        pct = lambda k: f"{100 * r[k]:.1f}%" if k in r else "—"  # noqa: E731
        lines.append(f"{kind:<11} {r['n']:>4} {pct('right_tool'):>10} {pct('args_valid'):>10} {pct('correct'):>8} "
                     f"{pct('correct_without_tools'):>8} {pct('called'):>7}")
    for kind, by_what in (("arithmetic", "problem"), ("fact", "wording"), ("chain", "task")):
        if by := report.get(kind, {}).get("correct_by"):
            lines.append(f"{kind} correct by {by_what}: "
                         + ", ".join(f"{k} {100 * v:.1f}%" for k, v in by.items()))
    if "none" in report:
        lines.append(f"false tool calls on prompts that need none: {100 * report['none']['false_call']:.1f}%")
    return "\n".join(lines)
