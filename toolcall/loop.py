"""The tool loop at the text level: model → tool calls → tool results → model, up to max_turns, for a batch of
conversations at once (used by the tool-use evaluation; RL rollouts keep token-level records, trainer/agent.py)."""
from dataclasses import dataclass, field
from typing import Callable

from toolcall.parse import parse_reply
from toolcall.registry import ToolBox


@dataclass
class ToolTrace:
    messages: list[dict]  # the conversation with every assistant turn and tool result appended
    calls: list[dict] = field(default_factory=list)  # {"name", "arguments", "result", "ok", "known", "valid"}
    final: str = ""  # the last reply without calls ("" when the turns ran out)
    finished: bool = False
    malformed: int = 0  # replies whose tool-call text did not parse


def run_tool_loop(reply_fn: Callable[[list[list[dict]]], list[str]], conversations: list[list[dict]],
                  toolbox: ToolBox, max_turns: int = 3) -> list[ToolTrace]:
    """reply_fn maps a batch of conversations to one reply text each (greedy or sampled)."""
    traces = [ToolTrace(list(c)) for c in conversations]
    active = list(range(len(traces)))
    for _turn in range(max_turns):
        if not active:
            break
        replies = reply_fn([traces[i].messages for i in active])
        still = []
        for i, text in zip(active, replies):
            trace, parsed = traces[i], parse_reply(text)
            if parsed.error:
                trace.malformed += 1
            if not parsed.tool_calls:
                trace.messages.append({"role": "assistant", "content": text})
                trace.final, trace.finished = text, True
                continue
            trace.messages.append({"role": "assistant", "content": parsed.content,
                                   "tool_calls": [{"type": "function", "function": c} for c in parsed.tool_calls],
                                   **({"reasoning_content": parsed.reasoning} if parsed.reasoning is not None else {})})
            for call in parsed.tool_calls:
                record = toolbox.call(call["name"], call["arguments"])
                trace.calls.append(record)
                trace.messages.append({"role": "tool", "content": record["result"]})
            still.append(i)
        active = still
    return traces
