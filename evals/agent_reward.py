"""The reward of one agentic rollout (trainer/agent_rollout.py's AgentTrace), from the row's ground truth `gt`
(upstream's agent_rl field):
    correct  1 when every gt value is the final answer: the reply's <answer> block equals it (numbers compared as
             numbers), or, for a reply without one, the value occurs in it
    clean    format_weight when the rollout finished (a last reply without calls, within --max_turns and the
             length budget) and every call parsed, named a known tool and passed its argument schema
"""
import re

from evals.answers import split_reasoning

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _matches(value: str, reply: str) -> bool:
    _think, block = split_reasoning(reply)
    if block is None:
        return value.casefold() in reply.casefold()
    got, want = " ".join(block.split()).casefold(), " ".join(value.split()).casefold()
    if got == want:
        return True
    if _NUMBER.fullmatch(got) and _NUMBER.fullmatch(want):
        return abs(float(got) - float(want)) < 1e-6
    return False


def agent_reward(trace, gt: list[str], format_weight: float = 0.2) -> tuple[float, dict]:
    correct = float(trace.finished and all(_matches(v, trace.final) for v in gt))
    clean = float(trace.finished and trace.malformed == 0 and all(c["valid"] for c in trace.calls))
    return correct + format_weight * clean, {"correct": correct, "clean": clean, "calls": float(len(trace.calls)),
                                             "finished": float(trace.finished)}


