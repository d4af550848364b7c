"""Tool calling and reasoning through the OpenAI-compatible server: request checks, the reply read into
reasoning_content / content / tool_calls, streamed deltas that add up to the non-streamed message, and a complete
tool loop driven by the official `openai` SDK against a real server process.

A random tiny model never writes a tool call, so generation is scripted: ScriptedModel is a torch module whose
logits put all the mass on the next token of a reply chosen from the prompt, run by the server's own Engine and
generator (nothing in the server knows it is scripted). The real process is this file run as a script (see the end):
it builds the same app around a ScriptedModel and serves it with uvicorn, a test-only wrapper that lives here rather
than a hidden flag in the production server.
"""
import json
import os
import random
import re
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from model.tokenizer import load_tokenizer
from scripts.openai_tools import ReplyReader, read_reply
from scripts.serve_openai_api import Engine, create_app
from toolcall.parse import parse_reply

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY, CONTEXT = "sk-tools", 4096
AUTH = {"authorization": f"Bearer {KEY}"}
CHAT_PATH = "/v1/chat/completions"
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}
NOW = {"type": "function", "function": {"name": "now", "description": "The time now."}}
TOOLS = [ADD, NOW]
ASK = [{"role": "user", "content": "What is 17 + 25?"}]
CALL = '<tool_call>{"name": "add", "arguments": {"a": 17, "b": 25}}</tool_call>'


class ScriptedModel(torch.nn.Module):
    """Writes the reply script(prompt text) gives: a list of text segments, each tokenized on its own (so a test
    decides where tokens split the text), then <|im_end|>. Every step's logits are -1e9 but 0 for the next token,
    so any sampling settings pick it. The prompts it was given (token ids) are kept in `prompts`."""

    def __init__(self, tokenizer, script):
        super().__init__()
        self.tokenizer, self.script, self.prompts, self.todo = tokenizer, script, [], []
        self.config = SimpleNamespace(eos_token_id=tokenizer.eos_token_id)

    def forward(self, input_ids, **_):
        if input_ids.shape[1] > 1:  # the prompt (a step feeds one token)
            ids = input_ids[0].tolist()
            self.prompts.append(ids)
            self.todo = [i for segment in self.script(self.tokenizer.decode(ids))
                         for i in self.tokenizer.encode(segment, add_special_tokens=False)]
            self.todo.append(self.tokenizer.eos_token_id)
        token = self.todo.pop(0) if self.todo else self.tokenizer.eos_token_id
        logits = torch.full((1, 1, len(self.tokenizer)), -1e9)
        logits[0, 0, token] = 0.0
        return SimpleNamespace(logits=logits)


def app_args(**changes):
    return SimpleNamespace(**{**dict(api_key=KEY, max_body_bytes=1 << 20, body_timeout=5.0, max_new_tokens=256,
                                     temperature=0.85, top_p=0.85, top_k=0, repetition_penalty=1.0, weights_dir=None,
                                     load_from=None, quantize="none"), **changes})


def scripted_app(tokenizer, script):
    model = ScriptedModel(tokenizer, script if callable(script) else lambda _prompt: script)
    return model, create_app(Engine(model, tokenizer, "cpu", CONTEXT), app_args(), "m")


@pytest.fixture(scope="module")
def tok(tiny_tokenizer_dir):
    return load_tokenizer(tiny_tokenizer_dir)


@pytest.fixture
def serve(tok):
    """serve(script) → (model, client): an in-process app whose model writes `script` (segments, or a function of
    the prompt text returning them)."""
    from starlette.testclient import TestClient
    clients = []

    def make(script, tokenizer=None):
        model, app = scripted_app(tokenizer or tok, script)
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        return model, client

    yield make
    for client in clients:
        client.close()


def post(client, status=200, **body):
    r = client.post(CHAT_PATH, json={"messages": ASK, **body}, headers=AUTH)
    assert r.status_code == status, r.text
    return r.json()


def stream_chunks(client, **body):
    r = client.post(CHAT_PATH, json={"messages": ASK, "stream": True, **body}, headers=AUTH)
    assert r.status_code == 200, r.text
    events = [line[len("data: "):] for line in r.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def reassemble(chunks) -> tuple[dict, str]:
    """The message and finish_reason that a stream's deltas add up to, the way OpenAI clients add them."""
    message, calls = {"role": None, "content": "", "reasoning_content": ""}, {}
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    for c in chunks:
        delta = c["choices"][0]["delta"]
        message["role"] = message["role"] or delta.get("role")
        message["content"] += delta.get("content") or ""
        message["reasoning_content"] += delta.get("reasoning_content") or ""
        for tc in delta.get("tool_calls") or []:
            call = calls.setdefault(tc["index"], {"id": None, "type": None, "function": {"name": "", "arguments": ""}})
            call["id"] = tc.get("id") or call["id"]
            call["type"] = tc.get("type") or call["type"]
            call["function"]["name"] += tc.get("function", {}).get("name") or ""
            call["function"]["arguments"] += tc.get("function", {}).get("arguments") or ""
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message, chunks[-1]["choices"][0]["finish_reason"]


def without_ids(message: dict) -> dict:
    """The message with its call ids blanked (each reply draws new ones), null content and reasoning as ""."""
    out = {**message, "content": message["content"] or "", "reasoning_content": message.get("reasoning_content") or ""}
    if "tool_calls" in message:
        assert all(re.fullmatch(r"call_[0-9a-f]{24}", c["id"]) for c in message["tool_calls"])
        out["tool_calls"] = [{**c, "id": None} for c in message["tool_calls"]]
    return out


def assert_stream_matches(client, **body):
    """The streamed deltas add up to the non-streamed message, finish_reason included; returns that message."""
    whole = post(client, **body)["choices"][0]
    chunks = stream_chunks(client, **body)
    message, finish = reassemble(chunks)
    assert without_ids(message) == without_ids(whole["message"])
    assert finish == whole["finish_reason"]
    assert all(set(c["choices"][0]["delta"]) <= {"role", "content", "reasoning_content", "tool_calls"}
               for c in chunks)
    return whole


# --- the reading itself -----------------------------------------------------------------------------------------

FRAGMENTS = ["<think>", "</think>", "<tool_call>", "</tool_call>", CALL[len("<tool_call>"):-len("</tool_call>")],
             '{"name": "now"}', '{"name": 5}', "{oops", "\n", " ", "\n\n", "x", "Hello", "<", "</", "think",
             "tool_call>", "<tool", "_call>", "</th", "ink>", "}", "<3"]


def random_reply(rng: random.Random) -> str:
    """Half the time fragments in any order; else a reply in the shape a model writes: think block, text, calls
    (now and then a malformed one), text."""
    if rng.random() < 0.5:
        return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 12)))
    space = ["", " ", "\n", "\n\n"]
    parts = [rng.choice(space), "<think>", rng.choice(["", "\nhm\n", "a <b> c"]), "</think>"] if rng.random() < 0.6 \
        else []
    parts += [rng.choice(space), rng.choice(["", "Sure.", "x < y"])]
    for _ in range(rng.randint(0, 3)):
        parts += [rng.choice(space), rng.choice([CALL, '<tool_call>{"name": "now"}</tool_call>'] * 10 +
                                                ['<tool_call>{"name": 5}</tool_call>', "<tool_call>{"])]
    return "".join(parts + [rng.choice(space), rng.choice(["", "done"])])


def test_settled_text_never_has_to_be_taken_back():
    """Whatever the text and wherever tokens split it, what is streamed as it comes is a prefix of the final
    reading, and the deltas (as they come, then at the end) add up to the non-streamed message exactly."""
    rng, seen = random.Random(0), {"calls": 0, "reasoning": 0, "content": 0}
    for n in range(3000):
        text = random_reply(rng)
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 8))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        tools, opened = n % 2 == 0, n % 3 == 0
        reader, got = ReplyReader(tools, opened), {"reasoning_content": "", "content": ""}
        for piece in pieces:
            for delta in reader.feed(piece):
                (key, value), = delta.items()
                assert value, delta
                got[key] += value
        message, deltas = reader.finish()
        calls = []
        for delta in deltas:
            if "tool_calls" in delta:
                calls += delta["tool_calls"]
            else:
                (key, value), = delta.items()
                got[key] += value
        full = ("<think>\n" if opened else "") + text
        reasoning, content, parsed = read_reply(full, tools)
        assert got == {"reasoning_content": reasoning or "", "content": content}, (pieces, tools, opened)
        assert message["reasoning_content"] == reasoning and (message["content"] or "") == content
        assert [json.loads(c["function"]["arguments"]) for c in calls[1::2]] == [c["arguments"] for c in parsed]
        seen["calls"] += bool(parsed)
        seen["reasoning"] += bool(reasoning)
        seen["content"] += bool(content)
    assert min(seen.values()) > 200, seen  # the random texts reach every kind of reply


def test_read_reply_agrees_with_toolcall_parse():
    for text in [CALL, "Sure.\n" + CALL + "\n" + CALL.replace("17", "1"), "<think>\nhm\n</think>\n\n" + CALL,
                 "<think>\nhm\n</think>\nplain", "no call", "<tool_call>{bad</tool_call>", "<tool_call>{\"name\": 1"]:
        r = parse_reply(text)
        assert read_reply(text, True) == (r.reasoning, r.content, r.tool_calls)
    # never closed (cut by max_tokens): all of it is reasoning, not content with a stray <think>
    assert read_reply("<think>\nstill thinking", True) == ("still thinking", "", [])
    # without tools nothing is taken for a call
    assert read_reply("a " + CALL, False) == (None, "a " + CALL, [])


# --- replies through the app ------------------------------------------------------------------------------------

def template_ids(tokenizer, messages, **kwargs):
    """The prompt the chat template makes of `messages`, as ids."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)
    return tokenizer.encode(text, add_special_tokens=False)


def test_a_tool_call_reply_has_openai_shape(serve):
    model, client = serve(["<tool_call>", '{"name": "add", "arguments": {"a": 17, "b": 25}}', "</tool_call>"])
    r = post(client, tools=TOOLS)
    choice = r["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"] is None and message["reasoning_content"] is None
    (call,) = message["tool_calls"]
    assert set(call) == {"id", "type", "function"} and call["type"] == "function"
    assert re.fullmatch(r"call_[0-9a-f]{24}", call["id"])
    assert call["function"] == {"name": "add", "arguments": '{"a": 17, "b": 25}'}
    assert r["usage"]["completion_tokens"] == len(model.tokenizer.encode(CALL, add_special_tokens=False))
    # the tools were in the prompt, as the template writes them
    assert model.prompts[-1] == template_ids(model.tokenizer, ASK, tools=TOOLS)


def test_two_calls_with_text_and_arguments_in_any_shape(serve):
    _, client = serve(["Let me see.\n", CALL, "\n", '<tool_call>{"name": "now", "arguments": "{}"}</tool_call>'])
    message = assert_stream_matches(client, tools=TOOLS)["message"]
    assert message["content"] == "Let me see."
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]] == \
        [("add", '{"a": 17, "b": 25}'), ("now", "{}")]
    assert len({c["id"] for c in message["tool_calls"]}) == 2


@pytest.mark.parametrize("reply", [
    '<tool_call>{"name": "add", "arguments": {a: 17}}</tool_call>',  # not JSON
    '<tool_call>{"name": "add", "arguments": [1]}</tool_call>',  # arguments not an object
    '<tool_call>{"arguments": {}}</tool_call>',  # no name
    '<tool_call>{"name": "add", "arguments": {"a": 1}}',  # never closed
    CALL + '\n<tool_call>{"name": "now", "arguments": "{oops"}</tool_call>',  # one good call, one bad: no calls
    '<tool_call>{"name": "\\ud800", "arguments": {}}</tool_call>',  # a name that is not text
])
def test_malformed_tool_json_comes_back_as_content(serve, reply):
    _, client = serve([reply])
    r = assert_stream_matches(client, tools=TOOLS)
    assert r["finish_reason"] == "stop" and "tool_calls" not in r["message"]
    assert r["message"]["content"] == reply


def test_arguments_that_are_not_text_are_sent_escaped(serve):
    _, client = serve(['<tool_call>{"name": "add", "arguments": {"a": "\\udc00 \u5317"}}</tool_call>'])
    (call,) = assert_stream_matches(client, tools=TOOLS)["message"]["tool_calls"]
    assert call["function"]["arguments"] == '{"a": "\\udc00 \\u5317"}'  # valid JSON, and sendable as UTF-8


def test_reasoning_is_split_off_plain_and_streamed(serve):
    # thinking switched on: the prompt opens the think block, the reply closes it
    _, client = serve(["I should", " add.\n", "</th", "ink>", "\n", "It is 42."])
    r = assert_stream_matches(client, chat_template_kwargs={"enable_thinking": True})
    assert r["message"]["reasoning_content"] == "I should add." and r["message"]["content"] == "It is 42."
    assert r["finish_reason"] == "stop" and "tool_calls" not in r["message"]
    chunks = stream_chunks(client, chat_template_kwargs={"enable_thinking": True})
    kinds = [k for c in chunks[1:] for k in c["choices"][0]["delta"]]
    assert kinds[0] == "reasoning_content" and "content" in kinds
    assert kinds.index("content") > max(i for i, k in enumerate(kinds) if k == "reasoning_content")
    assert sum(k == "reasoning_content" for k in kinds) >= 2  # it streams as it comes, not at the end

    # a model that opens a think block itself, with tools: reasoning, then a call
    _, client = serve(["<", "think>\nneed ", "the sum\n</think>\n\n", CALL])
    r = assert_stream_matches(client, tools=TOOLS)
    assert r["message"]["reasoning_content"] == "need the sum" and r["message"]["content"] is None
    assert r["finish_reason"] == "tool_calls"

    # cut by max_tokens mid-thought: what there is is reasoning, and the reply ended by length
    _, client = serve(["one two three four five six seven eight"])
    r = assert_stream_matches(client, open_thinking=True, max_tokens=3)
    assert r["finish_reason"] == "length" and r["message"]["content"] == ""
    assert r["message"]["reasoning_content"] and "one two three".startswith(r["message"]["reasoning_content"])


def test_logprobs_still_come_with_a_read_reply(serve):
    _, client = serve(["<think>\nhm\n</think>\n", "Hi ", "<", "tool_call>", '{"name": "now"}', "</tool_call>"])
    body = dict(tools=TOOLS, logprobs=True, top_logprobs=2, return_tokens_as_token_ids=True)
    whole = post(client, **body)["choices"][0]
    entries = whole["logprobs"]["content"]
    assert len(entries) == post(client, **body)["usage"]["completion_tokens"] + 1  # and <|im_end|>'s
    assert entries[-1]["token"] == "token_id:2" and all(e["logprob"] > -1e-3 for e in entries)
    streamed = [e for c in stream_chunks(client, **body) for e in (c["choices"][0].get("logprobs") or
                                                                    {"content": []})["content"]]
    assert streamed == entries


def test_a_plain_request_gets_the_text_as_it_is(serve):
    reply = ["  <think>\nx\n</think>\n", CALL, "  "]
    _, client = serve(reply)
    r = post(client)
    assert r["choices"][0]["message"] == {"role": "assistant", "content": "".join(reply)}
    assert r["choices"][0]["finish_reason"] == "stop"
    chunks = stream_chunks(client)
    assert all(set(c["choices"][0]["delta"]) <= {"role", "content"} for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "".join(reply)
    # tools with tool_choice "none": the model is not told of them, and its text is not read for calls
    model, client = serve([CALL])
    r = post(client, tools=TOOLS, tool_choice="none")
    assert r["choices"][0]["message"]["content"] == CALL and r["choices"][0]["finish_reason"] == "stop"
    assert model.prompts[-1] == template_ids(model.tokenizer, ASK)


@pytest.mark.parametrize("choice", ["auto", "required", {"type": "function", "function": {"name": "add"}}])
def test_tool_choice_is_accepted_but_not_enforced(serve, choice):
    model, client = serve(lambda prompt: [CALL] if "# Tools" in prompt else ["no tools"])
    r = post(client, tools=TOOLS, tool_choice=choice)
    assert r["choices"][0]["finish_reason"] == "tool_calls"
    assert model.prompts[-1] == template_ids(model.tokenizer, ASK, tools=TOOLS)
    # not constrained: a reply without a call comes back as the model wrote it, even for "required"
    _, client = serve(["I will not."])
    r = post(client, tools=TOOLS, tool_choice=choice)["choices"][0]
    assert r["message"]["content"] == "I will not." and r["finish_reason"] == "stop"


def test_the_thinking_switch_changes_the_prompt(serve):
    model, client = serve(lambda prompt: ["hm\n</think>\n", "ok"] if prompt.endswith("<think>\n") else ["ok"])
    for fields, thinking in [({}, None), ({"chat_template_kwargs": {"enable_thinking": True}}, True),
                             ({"chat_template_kwargs": {"enable_thinking": False}}, False),
                             ({"chat_template_kwargs": {"open_thinking": True}}, True),
                             ({"open_thinking": True}, True), ({"open_thinking": False}, False),
                             ({"open_thinking": True, "chat_template_kwargs": {"enable_thinking": True}}, True),
                             ({"chat_template_kwargs": {"something_else": 1}}, None)]:
        r = post(client, **fields)
        expected = template_ids(model.tokenizer, ASK, **({} if thinking is None else {"enable_thinking": thinking}))
        assert model.prompts[-1] == expected, fields
        text = model.tokenizer.decode(model.prompts[-1])
        assert text.endswith({None: "assistant\n", True: "<think>\n", False: "<think>\n\n</think>\n"}[thinking])
        assert r["choices"][0]["message"]["content"] == "ok"
        assert ("reasoning_content" in r["choices"][0]["message"]) == (thinking is not None)


def test_a_tool_history_renders_as_the_template_writes_it(serve):
    model, client = serve(["It is 42."])
    history = ASK + [
        {"role": "assistant", "content": None, "reasoning_content": "need the sum", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a":17,  "b":25}'}},
            {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "tool", "tool_call_id": "call_2", "content": "noon"}]
    r = client.post(CHAT_PATH, json={"messages": history, "tools": TOOLS}, headers=AUTH)
    assert r.status_code == 200, r.text
    canonical = ASK + [
        {"role": "assistant", "content": "", "reasoning_content": "need the sum", "tool_calls": [
            {"type": "function", "function": {"name": "add", "arguments": {"a": 17, "b": 25}}},
            {"type": "function", "function": {"name": "now", "arguments": {}}}]},
        {"role": "tool", "content": "42"}, {"role": "tool", "content": "noon"}]
    assert model.prompts[-1] == template_ids(model.tokenizer, canonical, tools=TOOLS)
    text = model.tokenizer.decode(model.prompts[-1])
    assert '<tool_call>{"name": "add", "arguments": {"a": 17, "b": 25}}</tool_call>' in text
    assert "<tool_response>42</tool_response>\n<tool_response>noon</tool_response>" in text


def test_a_tokenizer_without_tool_tokens_refuses_tools(serve, no_tool_tokenizer_dir):
    _, client = serve(["fine"], tokenizer=load_tokenizer(no_tool_tokenizer_dir))  # MiniMind2-style: no tool tokens
    for fields, param in [({"tools": TOOLS}, "tools"),
                          ({"messages": ASK + [{"role": "assistant", "tool_calls": [
                              {"id": "c", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
                              {"role": "tool", "tool_call_id": "c", "content": "1"}]}, "messages")]:
        error = post(client, 400, **fields)["error"]
        assert error["param"] == param and "<tool_call>" in error["message"] and error["message"].startswith(param)
    assert post(client)["choices"][0]["message"]["content"] == "fine"  # a plain chat still works


def assistant_calls(*calls, content=None):
    return {"role": "assistant", "content": content, "tool_calls": list(calls)}


def fn_call(arguments='{"a": 1}', **changes):
    return {"id": "c1", "type": "function", "function": {"name": "add", "arguments": arguments}, **changes}


RESULT = {"role": "tool", "tool_call_id": "c1", "content": "1"}


@pytest.mark.parametrize("fields, param", [
    ({"tools": "x"}, "tools"),
    ({"tools": [1]}, "tools[0]"),
    ({"tools": [{"type": "function"}]}, "tools[0].function"),
    ({"tools": [{"type": "web", "function": {"name": "f"}}]}, "tools[0].type"),
    ({"tools": [{"type": "function", "function": {"name": "two words"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "x" * 65}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": 5}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}, "tools[0].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "f", "description": 5}}]}, "tools[0].function.description"),
    ({"tools": [ADD, NOW, ADD]}, "tools[2].function.name"),
    ({"tools": TOOLS, "tool_choice": 5}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": "any"}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": ["auto"]}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": {"type": "x", "function": {"name": "add"}}}, "tool_choice.type"),
    ({"tools": TOOLS, "tool_choice": {"type": "function"}}, "tool_choice.function"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": 5}}}, "tool_choice.function.name"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "sub"}}},
     "tool_choice.function.name"),
    ({"tool_choice": {"type": "function", "function": {"name": "add"}}}, "tool_choice.function.name"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [], "tool_choice": "required"}, "tool_choice"),
    ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ({"chat_template_kwargs": "x"}, "chat_template_kwargs"),
    ({"chat_template_kwargs": {"enable_thinking": "yes"}}, "chat_template_kwargs.enable_thinking"),
    ({"chat_template_kwargs": {"enable_thinking": 1}}, "chat_template_kwargs.enable_thinking"),
    ({"open_thinking": "true"}, "open_thinking"),
    ({"open_thinking": False, "chat_template_kwargs": {"enable_thinking": True}}, "open_thinking"),
    # messages
    ({"messages": [RESULT]}, "messages[0].role"),
    ({"messages": ASK + [RESULT]}, "messages[1].role"),
    ({"messages": ASK + [{"role": "assistant", "content": "hi"}, RESULT]}, "messages[2].role"),
    ({"messages": ASK + [assistant_calls(fn_call()), {"role": "tool", "content": "1"}]}, "messages[2].tool_call_id"),
    ({"messages": ASK + [assistant_calls(fn_call()), {**RESULT, "tool_call_id": 5}]}, "messages[2].tool_call_id"),
    ({"messages": ASK + [assistant_calls(fn_call()), {**RESULT, "content": None}]}, "messages[2].content"),
    ({"messages": ASK + [assistant_calls(fn_call()), {**RESULT, "content": 5}]}, "messages[2].content"),
    ({"messages": ASK + [{"role": "assistant", "content": None}]}, "messages[1].content"),
    ({"messages": ASK + [{"role": "assistant"}]}, "messages[1].content"),
    ({"messages": ASK + [{"role": "assistant", "content": "x", "tool_calls": []}]}, None),  # fine: no calls
    ({"messages": [{"role": "user", "content": "x", "tool_calls": [fn_call()]}]}, "messages[0].tool_calls"),
    ({"messages": ASK + [assistant_calls(fn_call(arguments="[1]"))]}, "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [assistant_calls(fn_call(arguments="{oops"))]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [assistant_calls(fn_call(arguments='"{}"'))]}, "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [assistant_calls(fn_call(arguments={"a": 1}))]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [assistant_calls(fn_call(arguments="[" * 100_000 + "]" * 100_000))]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [assistant_calls(fn_call(arguments='{"a": "\\ud800"}'))]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [assistant_calls(fn_call(arguments='{"a": ' + "1" * 5000 + "}"))]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [assistant_calls({"type": "function", "function": {"name": "add", "arguments": "{}"}})]},
     "messages[1].tool_calls[0].id"),
    ({"messages": ASK + [assistant_calls(fn_call(type="custom"))]}, "messages[1].tool_calls[0].type"),
    ({"messages": ASK + [assistant_calls({"id": "c", "function": {"name": "", "arguments": "{}"}})]},
     "messages[1].tool_calls[0].function.name"),
    ({"messages": ASK + [assistant_calls({"id": "c", "function": {"name": "add"}})]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [assistant_calls({"id": "c"})]}, "messages[1].tool_calls[0].function"),
    ({"messages": ASK + [{"role": "assistant", "content": None, "tool_calls": "x"}]}, "messages[1].tool_calls"),
    ({"messages": ASK + [{"role": "assistant", "content": "x", "reasoning_content": 5}]},
     "messages[1].reasoning_content"),
])
def test_bad_tool_fields_get_400_naming_the_field(serve, fields, param):
    _, client = serve(["ok"])
    r = client.post(CHAT_PATH, json={"messages": ASK, **fields}, headers=AUTH)
    if param is None:
        assert r.status_code == 200, r.text
        return
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["param"] == param and error["message"].startswith(param), error


# --- the official SDK against a real server process -------------------------------------------------------------

def loop_script(prompt: str) -> list[str]:
    """The scripted side of a tool loop: asked "a + b", call add(a, b); given a tool result, answer with it. With
    thinking on (the prompt opens a think block), think first."""
    think = ["I need ", "the sum.", "\n</think>\n"] if prompt.endswith("<think>\n") else []
    if results := re.findall(r"<tool_response>(.*?)</tool_response>", prompt, re.S):
        return think + ["The sum is ", results[-1], "."]
    if not (asked := re.findall(r"(\d+) \+ (\d+)", prompt)) or "# Tools" not in prompt:
        return think + ["I cannot add without a tool."]
    a, b = asked[-1]
    return think + ["<tool_call>", '{"name": "add", ', f'"arguments": {{"a": {a}, "b": {b}}}}}', "</tool_call>"]


def add(a: int, b: int) -> int:  # the tool, run by the client
    return a + b


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_tokenizer_dir):
    from test_serve_openai_api import wait_healthy  # same folder: pytest puts it on sys.path
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("tools_server") / "server.log"
    with log.open("w") as f:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), tiny_tokenizer_dir, str(port)], cwd=REPO,
                                stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO})
    srv = SimpleNamespace(proc=proc, url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_healthy(srv)
        yield srv
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI
    return OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)


@pytest.mark.parametrize("thinking", [None, True])
def test_openai_sdk_runs_a_tool_loop(client, thinking):
    extra = {} if thinking is None else {"extra_body": {"chat_template_kwargs": {"enable_thinking": thinking}}}
    messages = [{"role": "system", "content": "You are MiniMind."}, {"role": "user", "content": "What is 17 + 25?"}]
    r = client.chat.completions.create(model="minimind", messages=messages, tools=TOOLS, **extra)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    if thinking:
        assert choice.message.reasoning_content == "I need the sum."
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "add" and call.id.startswith("call_")
    messages.append(choice.message)  # the SDK's own message object, as OpenAI's guide does it
    result = add(**json.loads(call.function.arguments))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": str(result)})
    final = client.chat.completions.create(model="minimind", messages=messages, tools=TOOLS, **extra)
    assert final.choices[0].finish_reason == "stop" and not final.choices[0].message.tool_calls
    assert final.choices[0].message.content == "The sum is 42."
    assert r.usage.prompt_tokens < final.usage.prompt_tokens


def test_openai_sdk_runs_a_streamed_tool_loop(client):
    messages = [{"role": "user", "content": "What is 100 + 23?"}]
    # create(stream=True): add the deltas up by hand, as most clients do
    calls, content, reasoning, finish = {}, "", "", None
    for chunk in client.chat.completions.create(model="minimind", messages=messages, tools=TOOLS, stream=True,
                                                stream_options={"include_usage": True},
                                                extra_body={"open_thinking": True}):
        if not chunk.choices:
            assert chunk.usage.completion_tokens > 0
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        reasoning += getattr(delta, "reasoning_content", None) or ""
        for tc in delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": tc.id, "name": "", "arguments": ""})
            call["name"] += tc.function.name or ""
            call["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and content == "" and reasoning == "I need the sum."
    (call,) = calls.values()
    assert call["name"] == "add" and json.loads(call["arguments"]) == {"a": 100, "b": 23}
    messages += [{"role": "assistant", "content": None, "reasoning_content": reasoning, "tool_calls": [
        {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": str(add(**json.loads(call["arguments"])))}]

    # the SDK's stream helper, which adds tool-call deltas up itself
    strict = [{"type": "function", "function": {**ADD["function"], "strict": True}}]
    with client.chat.completions.stream(model="minimind", messages=messages[:1], tools=strict) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in events
    (parsed,) = final.choices[0].message.tool_calls
    assert parsed.function.name == "add" and parsed.function.parsed_arguments == {"a": 100, "b": 23}

    answer = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="minimind", messages=messages, tools=TOOLS, stream=True) if c.choices)
    assert answer == "The sum is 123."


def test_openai_sdk_gets_400_for_bad_tools(client):
    from openai import BadRequestError
    with pytest.raises(BadRequestError) as e:
        client.chat.completions.create(model="minimind", messages=ASK, tools=TOOLS,
                                       tool_choice={"type": "function", "function": {"name": "subtract"}})
    assert e.value.body["param"] == "tool_choice.function.name"


def serve_scripted(tokenizer_dir: str, port: int):
    """The real server process of the SDK tests: the production app (create_app, Engine) around a ScriptedModel
    that plays loop_script. Test-only: the production server has no way to run a scripted model."""
    import uvicorn
    _, app = scripted_app(load_tokenizer(tokenizer_dir), loop_script)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    serve_scripted(sys.argv[1], int(sys.argv[2]))
