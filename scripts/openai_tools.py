"""Tools and thinking between OpenAI's Chat Completions shapes and the model's text, for scripts/serve_openai_api.py.
Going in: a checked request's messages and switches as the chat template takes them (template_messages,
template_kwargs). Coming out: the reply's text read into reasoning_content, content and tool_calls, either whole
(read_reply) or while it is generated (settled, ReplyReader), so that the streamed deltas add up to the non-streamed
message exactly. The requests themselves are checked in scripts/openai_request.py; the calls are found by
toolcall/parse.py."""
import json
import re
import uuid

from scripts.openai_request import ChatRequest, Message, is_text
from toolcall.parse import parse_reply


def template_messages(messages: list[Message]) -> list[dict]:
    """The messages as the chat template takes them (model/tokenizer_train.py): a plain message is just {"role",
    "content"}, as it always was; OpenAI's tool calls become {"name", "arguments": {...}} so that the template
    writes the arguments the way training data has them, not in the client's spacing."""
    out = []
    for m in messages:
        d = {"role": m.role, "content": m.content if m.content is not None else ""}
        if m.role == "assistant" and m.reasoning_content is not None:
            d["reasoning_content"] = m.reasoning_content
        if m.role == "assistant" and m.tool_calls:
            d["tool_calls"] = [{"type": "function", "function": {"name": c.function.name,
                                                                 "arguments": json.loads(c.function.arguments)}}
                               for c in m.tool_calls]
        out.append(d)
    return out


def template_kwargs(req: ChatRequest) -> dict:
    kwargs = {}
    if req.tools and req.choice() != "none":  # "none": the model is not told of the tools, so it answers itself
        kwargs["tools"] = [{"type": "function", "function": {
            k: v for k, v in (("name", t.function.name), ("description", t.function.description),
                              ("parameters", t.function.parameters)) if v is not None}} for t in req.tools]
    if (thinking := req.thinking()) is not None:
        kwargs["enable_thinking"] = thinking
    return kwargs


THINK, END_THINK, TOOL_CALL = "<think>", "</think>", "<tool_call>"
OPEN_THINK = re.compile(r"\A\s*<think>")
THINK_BLOCK = re.compile(r"\A\s*<think>(.*?)</think>\s*", re.S)  # as toolcall/parse.py finds it


def tag_start(text: str, tag: str) -> int:
    """The length of the longest end of `text` that could be the start of `tag` (held back until more text says)."""
    return next((n for n in range(min(len(tag) - 1, len(text)), 0, -1) if text.endswith(tag[:n])), 0)


def read_reply(text: str, tool_calls: bool) -> tuple[str | None, str, list[dict]]:
    """(reasoning, content, calls) of a whole reply: toolcall/parse.py's reading (calls only when `tool_calls`),
    except that a think block the reply never closed (cut by max_tokens) is all reasoning."""
    if (m := OPEN_THINK.match(text)) and END_THINK not in text[m.end():]:
        return text[m.end():].strip("\n"), "", []
    if tool_calls:
        r = parse_reply(text)
        # a name with an escaped lone surrogate cannot be sent as UTF-8: the reply then did not make a call
        if all(is_text(c["name"]) for c in r.tool_calls):
            return r.reasoning, r.content, r.tool_calls
    m = THINK_BLOCK.match(text)
    return (m.group(1).strip("\n") if m else None), text[m.end() if m else 0:].strip(), []


def settled(text: str, tool_calls: bool) -> tuple[str, str]:
    """What read_reply's reasoning and content of `text` + anything will begin with: the parts of a reply being
    written that can be streamed already. Held back: a start that may yet become <think>, a tag split over tokens,
    trailing whitespace (a reading strips it), and everything from the first <tool_call> on (whether it is a call,
    or malformed and so content, is only known at the end, where parse_reply reads the whole reply; a model trained
    on our template ends its turn right after its calls, so little waits)."""
    lead = text.lstrip()
    if THINK.startswith(lead):  # nothing yet, or maybe the start of a think block
        return "", ""
    if lead.startswith(THINK):
        body = lead[len(THINK):]
        if (end := body.find(END_THINK)) < 0:
            return body[:len(body) - tag_start(body, END_THINK)].strip("\n"), ""
        reasoning, rest = body[:end].strip("\n"), body[end + len(END_THINK):]
    else:
        reasoning, rest = "", lead
    if tool_calls:
        rest = rest[:i] if (i := rest.find(TOOL_CALL)) >= 0 else rest[:len(rest) - tag_start(rest, TOOL_CALL)]
    return reasoning, rest.strip()


def arguments_json(arguments: dict) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if is_text(text) else json.dumps(arguments)  # an escaped lone surrogate stays escaped


class ReplyReader:
    """One reply read into OpenAI's message: `feed` takes the text as it is generated and returns the deltas
    (reasoning_content, content) that are settled; `finish` reads the whole reply and returns the message and the
    deltas that complete the stream (the rest of the text, then each tool call). Streamed deltas thus add up to the
    non-streamed message exactly: both are read_reply's reading of the same text."""

    def __init__(self, tool_calls: bool, opened_think: bool):
        self.tool_calls = tool_calls
        # the prompt ended inside an open think block (thinking switched on): the reply continues it
        self.text = THINK + "\n" if opened_think else ""
        self.sent = {"reasoning_content": "", "content": ""}

    def catch_up(self, reasoning: str, content: str) -> list[dict]:
        deltas = []
        for key, now in (("reasoning_content", reasoning), ("content", content)):
            if len(now) > len(self.sent[key]):
                deltas.append({key: now[len(self.sent[key]):]})
                self.sent[key] = now
        return deltas

    def feed(self, piece: str) -> list[dict]:
        self.text += piece
        return self.catch_up(*settled(self.text, self.tool_calls))

    def finish(self) -> tuple[dict, list[dict]]:
        reasoning, content, calls = read_reply(self.text, self.tool_calls)
        calls = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                  "function": {"name": c["name"], "arguments": arguments_json(c["arguments"])}} for c in calls]
        message = {"role": "assistant", "content": content or (None if calls else ""), "reasoning_content": reasoning}
        if calls:
            message["tool_calls"] = calls
        deltas = self.catch_up(reasoning or "", content)
        for i, c in enumerate(calls):
            deltas.append({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                           "function": {"name": c["function"]["name"], "arguments": ""}}]})
            deltas.append({"tool_calls": [{"index": i, "function": {"arguments": c["function"]["arguments"]}}]})
        return message, deltas
