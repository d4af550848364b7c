"""Chats with tools, in the shapes upstream minimind-3's SFT rows and OpenAI's API use, normalised for the template.

A row may carry: a system message with ``tools`` (a list or its JSON string), assistant messages with
``tool_calls`` (a list or its JSON string; each ``{"name", "arguments"}`` or OpenAI's ``{"type": "function",
"function": {...}}``) and ``reasoning_content``, and ``tool`` messages holding a tool's result. normalize_messages
turns the JSON strings into lists and a missing assistant content into "", once, when a row is read; the renderer
(dataset/chat_tokens.py) hands ``tools`` to the chat template as its ``tools=`` argument.
"""
import json

from model.tokenizer_train import TOOL_TOKENS
from toolcall.registry import call_arguments


def _json_list(value, where: str) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where} is a string but not valid JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list (or its JSON string), got {type(value).__name__}")
    return value


def _function(item, where: str, hint: str = "") -> dict:
    """The function part of a tool or a call: the item itself, or OpenAI's {"type": "function", "function": {...}}."""
    fn = item.get("function", item) if isinstance(item, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise ValueError(f"{where} must be an object with a string 'name'{hint}")
    return fn


def check_tools(value, where: str) -> list:
    tools = _json_list(value, where)
    for j, tool in enumerate(tools):
        _function(tool, f"{where}[{j}]", " (or OpenAI's {'type': 'function', 'function': {...}})")
    return tools


def check_tool_calls(value, where: str) -> list:
    calls = _json_list(value, where)
    for j, call in enumerate(calls):
        fn = _function(call, f"{where}[{j}]")
        try:
            call_arguments(fn.get("arguments", {}))
        except ValueError as e:
            raise ValueError(f"{where}[{j}] {e}") from None
    return calls


def uses_tools(messages: list[dict]) -> bool:
    return any(m.get("role") == "tool" or m.get("tool_calls") or m.get("tools") for m in messages)


def normalize_messages(messages: list[dict]) -> list[dict]:
    """Messages with JSON-string fields parsed and an assistant's missing content as "" (validated rows only)."""
    out = []
    for j, m in enumerate(messages):
        if "tools" in m or "tool_calls" in m or m.get("content") is None:
            m = dict(m)
            if m.get("content") is None:
                m["content"] = ""
            if "tools" in m:
                m["tools"] = check_tools(m["tools"], f"messages[{j}] 'tools'")
            if "tool_calls" in m:
                m["tool_calls"] = check_tool_calls(m["tool_calls"], f"messages[{j}] 'tool_calls'")
        out.append(m)
    return out


def template_arguments(messages: list[dict]) -> tuple[list[dict], dict]:
    """(messages, extra apply_chat_template arguments): a system message's ``tools`` become ``tools=``."""
    if messages and messages[0].get("role") == "system" and messages[0].get("tools"):
        first = {k: v for k, v in messages[0].items() if k != "tools"}
        return [first] + list(messages[1:]), {"tools": messages[0]["tools"]}
    return messages, {}


def require_tool_tokens(tokenizer, what: str = "tool calls"):
    """A clear error for a tokenizer without the tool tokens (e.g. a MiniMind2 folder), instead of tool tags
    silently split into pieces the model never learns to stop on."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in TOOL_TOKENS if t not in vocab]
    if missing:
        name = getattr(tokenizer, "name_or_path", "") or "this tokenizer"
        raise ValueError(f"{what} need the tool tokens {', '.join(TOOL_TOKENS)}, which {name} lacks "
                         f"({', '.join(missing)}); use the tokenizer shipped in model/ or train one with "
                         "train_tokenizer.py")


def tools_block(tools: list[dict]) -> str:
    """The system-turn text our chat template writes for `tools` (its header and one signature line per tool)."""
    from transformers.utils.chat_template_utils import render_jinja_template

    from model.tokenizer_train import CHAT_TEMPLATE
    rendered, _ = render_jinja_template(conversations=[[{"role": "user", "content": ""}]], tools=tools,
                                        chat_template=CHAT_TEMPLATE)
    return rendered[0].split("<|im_end|>", 1)[0].removeprefix("<|im_start|>system\n")


def chat_texts(messages: list[dict]):
    """The strings our chat template writes for a (validated) chat — contents, reasoning, the tools block and each
    call as <tool_call> text — for training a tokenizer on chats without rendering them whole (call arguments as
    the template's tojson writes them: ", " and ": " separators, non-ASCII kept)."""
    for m in normalize_messages(messages):
        if m.get("tools"):
            yield tools_block(m["tools"])
        if m.get("reasoning_content"):
            yield m["reasoning_content"]
        if m["content"]:
            yield m["content"]
        for call in m.get("tool_calls") or []:
            fn = call.get("function", call)
            args = fn.get("arguments", {})
            args = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
            yield f'<tool_call>{{"name": {json.dumps(fn["name"], ensure_ascii=False)}, "arguments": {args}}}</tool_call>'
