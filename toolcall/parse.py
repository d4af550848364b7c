"""Reading a generated reply: its <think> block, its <tool_call> blocks and the text a user should see.

A reply whose tool-call JSON is malformed keeps its whole text as content and lists no calls (with the reason), so
a caller (the API server, an evaluation, an RL rollout) never fails on what a model wrote.
"""
import json
import re
from dataclasses import dataclass, field

from toolcall.registry import call_arguments

_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
_THINK = re.compile(r"\A\s*<think>(.*?)</think>\s*", re.S)


@dataclass
class ParsedReply:
    content: str  # the text without the think block and the tool calls
    reasoning: str | None = None  # the think block's text (None: no think block)
    tool_calls: list[dict] = field(default_factory=list)  # [{"name": str, "arguments": dict}]
    error: str | None = None  # why tool-call text was not accepted as calls


def parse_call(text: str) -> dict:
    """One call's JSON → {"name", "arguments"}; ValueError with the reason otherwise."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"tool call is not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"]:
        raise ValueError("tool call must be an object with a non-empty string 'name'")
    try:
        args = call_arguments(obj.get("arguments", {}))
    except ValueError as e:
        raise ValueError(f"tool call {e}") from None
    return {"name": obj["name"], "arguments": args}


def parse_reply(text: str) -> ParsedReply:
    reasoning = None
    if m := _THINK.match(text):
        reasoning, text = m.group(1).strip("\n"), text[m.end():]
    blocks = _CALL.findall(text)
    if not blocks:
        if "<tool_call>" in text:
            return ParsedReply(text.strip(), reasoning, [], "unclosed <tool_call>")
        return ParsedReply(text.strip(), reasoning)
    try:
        calls = [parse_call(b) for b in blocks]
    except ValueError as e:
        return ParsedReply(text.strip(), reasoning, [], str(e))
    return ParsedReply(_CALL.sub("", text).strip(), reasoning, calls)
