"""Hostile input never gets a 5xx from the OpenAI-compatible server.

A corpus of a few hundred hostile requests, built here by code (so it is the same on every run), goes over raw sockets
to ONE real server process: wrong types and out-of-range numbers for every field, deep nesting, invalid UTF-8 and lone
surrogates in every string, bodies within and over --max_body_bytes, header lies (Content-Length too short, too long,
negative, not a number), bad Authorization headers, unknown methods and paths. None may get a status >= 500, a stream
that started must end with [DONE] (after an error event if it failed), and the server must still serve afterwards.
A failure in the middle of a stream cannot be caused from outside (that would be a bug to fix), so it is injected
in-process with a model that breaks after two tokens.
"""
import json
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

import httpx
import pytest
import torch
from starlette.testclient import TestClient

from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.tokenizer import load_tokenizer
from scripts.serve_openai_api import Engine, create_app
from test_serve_openai_api import CONFIG, start_server, wait_healthy  # same folder: pytest puts it on sys.path

KEY, CONTEXT, MAX_BODY, BODY_TIMEOUT = "sk-fuzz", 512, 64 * 1024, 1.0
CHAT_PATH = "/v1/chat/completions"
USER = {"role": "user", "content": "hi"}


@dataclass
class Case:
    name: str
    raw: bytes  # the whole request, as sent on the wire


def http(method="POST", path=CHAT_PATH, body=b"", headers=None, auth=True, length=True, ctype=True,
         version=b"HTTP/1.1"):
    """A raw request. `headers` are (name, value) pairs, sent as given (bytes or str); Content-Length and Content-Type
    are added unless `length` / `ctype` is False or a header of that name is given."""
    hs = [(b"host", b"127.0.0.1"), (b"connection", b"close")]
    if auth:
        hs.append((b"authorization", f"Bearer {KEY}".encode()))
    given = [(k.encode() if isinstance(k, str) else k, v.encode() if isinstance(v, str) else v)
             for k, v in (headers or [])]
    if length and not any(k.lower() == b"content-length" for k, _ in given):
        hs.append((b"content-length", str(len(body)).encode()))
    if ctype and not any(k.lower() == b"content-type" for k, _ in given):
        hs.append((b"content-type", b"application/json"))
    head = b"%s %s %s\r\n" % (method.encode() if isinstance(method, str) else method,
                              path.encode() if isinstance(path, str) else path, version)
    return head + b"".join(k + b": " + v + b"\r\n" for k, v in hs + given) + b"\r\n" + body


def chat_body(**fields) -> bytes:
    return json.dumps({"messages": [USER], "max_tokens": 3, **fields}).encode()


def raw_json_field(name, literal: str) -> bytes:
    """A chat body with one field's value written as JSON text as-is (NaN, 1e999, 10**5000, -0, ...)."""
    return b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "%s": %s}' % (
        name.encode(), literal.encode())


def nest(depth: int, inner=b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def build_corpus() -> list[Case]:
    cases = []

    def add(name, raw):
        cases.append(Case(name, raw))

    def post(name, body, **kw):
        add(name, http(body=body, **kw))

    junk = [None, True, False, 0, -1, 1.5, "x", "", [], {}, [1], {"a": 1}, "0.5", [[USER]]]
    # wrong types for every field we read, and for the fields inside a message and stream_options
    for field in ["messages", "model", "stream", "stream_options", "temperature", "top_p", "max_tokens",
                  "max_completion_tokens", "seed", "n"]:
        for v in junk:
            post(f"type {field}={v!r}", json.dumps({"messages": [USER], "max_tokens": 3, field: v}).encode())
    for field in ["role", "content"]:
        for v in junk:
            post(f"type messages[0].{field}={v!r}", json.dumps({"messages": [{**USER, field: v}]}).encode())
    for v in junk:
        post(f"type include_usage={v!r}", chat_body(stream=True, stream_options={"include_usage": v}))
        post(f"type content part={v!r}", json.dumps({"messages": [{"role": "user", "content": [v]}]}).encode())
    # out-of-range numbers, written as raw JSON (Python's json takes NaN and Infinity)
    numbers = ["NaN", "Infinity", "-Infinity", "1e308", "-1e308", "1e999", "-0", "-0.0", "0", "1e-40", "1e-300",
               "5e-324", "1e-5", "2", "2.0000001", str(10 ** 30), str(2 ** 63), str(2 ** 63 - 1), str(-(2 ** 63)),
               "1" * 4301, "0." + "0" * 5000 + "1"]
    for field in ["temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "n"]:
        for literal in numbers:
            post(f"number {field}={literal[:20]}", raw_json_field(field, literal))
    for t, p in [(1e-40, None), (5e-324, None), (None, 1e-300), (None, 5e-324), (1e-40, 1e-300), (2, 1e-45)]:
        fields = {k: v for k, v in (("temperature", t), ("top_p", p)) if v is not None}
        for stream in (False, True):
            post(f"tiny temperature={t} top_p={p} stream={stream}", chat_body(stream=stream, **fields))
    # nesting, in an ignored field and in the fields we read
    for depth in [50, 900, 1000, 2000, 30_000]:
        post(f"nest ignored {depth}", b'{"messages": [{"role": "user", "content": "hi"}], "x": %s}' % nest(depth))
        post(f"nest messages {depth}", b'{"messages": %s}' % nest(depth))
        post(f"nest content {depth}", b'{"messages": [{"role": "user", "content": %s}]}' % nest(depth, b'"a"'))
        post(f"nest objects {depth}", b'{"a":' * depth + b"1" + b"}" * depth)
    # invalid UTF-8 and lone surrogates, in every string we read and some we ignore
    bad_strings = {"escaped high": rb"a \ud800 b", "escaped low": rb"\uDFFF", "reversed pair": rb"\ude00\ud83d",
                   "raw surrogate": b"a \xed\xa0\x80 b", "raw 0xff": b"\xff", "overlong": b"\xc0\x80",
                   "truncated": b"\xe4\xb8", "NUL": rb"\u0000", "valid pair": rb"\ud83d\ude00"}
    templates = {"content": b'{"messages": [{"role": "user", "content": "%s"}]}',
                 "role": b'{"messages": [{"role": "%s", "content": "hi"}]}',
                 "model": b'{"messages": [{"role": "user", "content": "hi"}], "model": "%s"}',
                 "content part": b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "%s"}]}]}',
                 "ignored": b'{"messages": [{"role": "user", "content": "hi"}], "user": "%s"}',
                 "stop": b'{"messages": [{"role": "user", "content": "hi"}], "stop": ["%s"]}',
                 "key": b'{"messages": [{"role": "user", "content": "hi"}], "%s": 1}',
                 "message key": b'{"messages": [{"role": "user", "content": "hi", "%s": 1}]}'}
    for where, template in templates.items():
        for what, s in bad_strings.items():
            post(f"string {where} {what}", template.replace(b"%s", s))
    for what, s in bad_strings.items():
        post(f"string streamed content {what}",
             b'{"messages": [{"role": "user", "content": "%s"}], "stream": true}'.replace(b"%s", s))
    # big bodies, within and over --max_body_bytes
    for n in [MAX_BODY - 100, MAX_BODY + 1, 4 * MAX_BODY]:
        post(f"body content {n}", json.dumps({"messages": [{"role": "user", "content": "x" * n}]}).encode())
    post("body 3000 messages", json.dumps({"messages": [USER] * 3000}).encode())
    post("body wide hanzi", json.dumps({"messages": [{"role": "user", "content": "北" * 20_000}]},
                                       ensure_ascii=False).encode())
    post("body 10k ints", json.dumps({"messages": [USER], "x": [0] * 10_000}).encode())
    # missing and extra fields, and the OpenAI fields we ignore, with junk in them
    def one(**message):
        return {"messages": [message]}

    for name, obj in [("empty object", {}), ("messages null", {"messages": None}), ("no role", one(content="hi")),
                      ("no content", one(role="user")), ("only system", one(role="system", content="")),
                      ("empty content", one(role="user", content="")), ("empty parts", one(role="user", content=[])),
                      ("image part", one(role="user", content=[{"type": "image_url", "image_url": {"url": "x"}}])),
                      ("developer role", one(role="developer", content="hi")),
                      ("tool role", one(role="tool", content="hi", tool_call_id="1")),
                      ("special tokens", one(role="user", content="<|im_start|>system<|im_end|>")),
                      ("extra in message", one(**USER, name=5, x=[1]))]:
        post(f"fields {name}", json.dumps({**obj, "max_tokens": 3}).encode())
    for field, values in {"n": [2, 0, 1, 10 ** 20], "stop": ["x", ["a", "b"], 5, [5], {"a": 1}, [""] * 100],
                          "logprobs": [True, "yes", None], "top_logprobs": [100, -1, "x"],
                          "tools": ["x", [1], [{"type": "function"}], [{"type": "function", "function": None}]],
                          "tool_choice": ["auto", 5, {"type": "x"}], "response_format": ["json", {"type": 5}],
                          "logit_bias": [{"1": 1e308}, [1]], "presence_penalty": ["x", 1e308],
                          "frequency_penalty": [float("inf")], "user": [5], "functions": [{}]}.items():
        for v in values:
            try:
                body = chat_body(**{field: v})
            except ValueError:
                continue
            post(f"extra {field}={str(v)[:40]}", body)
    # stream variants
    for stream in [True, False, None, "true", 1, 0]:
        for include_usage in [True, False]:
            post(f"stream={stream!r} usage={include_usage}",
                 chat_body(stream=stream, stream_options={"include_usage": include_usage}))
    post("stream with too long prompt", json.dumps({"messages": [{"role": "user", "content": "北京 " * CONTEXT}],
                                                    "stream": True}).encode())
    # not JSON, or not an object
    for body in [b"", b" ", b"null", b"[]", b'"str"', b"1", b"{", b"{}}", b"\xef\xbb\xbf" + chat_body(),
                 chat_body().decode().encode("utf-16"), chat_body().decode().encode("utf-32"), b"\x00" * 10,
                 b"messages=hi", b'{"messages": [{"role": "user", "content": "hi"}], "messages": 5}']:
        post(f"body {body[:12]!r}", body)
    # wrong content types (the body is JSON whatever the header says)
    for ctype in [b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x",
                  b"application/json; charset=latin-1", b"", b"\xff\xfe"]:
        post(f"content-type {ctype!r}", chat_body(), headers=[(b"content-type", ctype)])
    post("no content-type", chat_body(), ctype=False)
    # header lies
    body = chat_body()
    for name, value in [("short", str(len(body) - 5)), ("zero", "0"), ("negative", "-1"), ("not a number", "abc"),
                        ("float", "1.5"), ("plus", f"+{len(body)}"), ("huge", str(10 ** 20)),
                        ("over the limit", str(MAX_BODY + 1)), ("spaces", f" {len(body)} "),
                        ("long", str(len(body) + 10)), ("long stream", None)]:
        if name == "long stream":
            post(f"content-length {name}", chat_body(stream=True), headers=[("content-length", str(len(body) + 40))])
        else:
            post(f"content-length {name}", body, headers=[("content-length", value)])
    post("content-length twice", body, headers=[("content-length", str(len(body))), ("content-length", "3")])
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    post("chunked", chunked, length=False, headers=[("transfer-encoding", "chunked")])
    post("chunked and content-length", chunked, headers=[("transfer-encoding", "chunked"), ("content-length", "5")])
    post("chunked bad size", b"zz\r\n" + body + b"\r\n0\r\n\r\n", length=False, headers=[("transfer-encoding",
                                                                                            "chunked")])
    post("chunked no end", b"%x\r\n%s\r\n" % (len(body), body), length=False,
         headers=[("transfer-encoding", "chunked")])
    post("chunked over the limit", b"%x\r\n%s\r\n0\r\n\r\n" % (MAX_BODY + 10, b"x" * (MAX_BODY + 10)), length=False,
         headers=[("transfer-encoding", "chunked")])
    post("transfer-encoding gzip", body, headers=[("transfer-encoding", "gzip")])
    post("expect 100-continue", body, headers=[("expect", "100-continue")])
    post("header 20 KB", body, headers=[("x-junk", "a" * 20_000)])
    post("header obs-text", body, headers=[("x-junk", b"\xff\xfe\x80")])
    post("header no colon", body, headers=[(b"bad header line", b"")])
    # Authorization
    for name, value in [("scheme only", b"Bearer"), ("double space", f"Bearer  {KEY}".encode()),
                        ("lower scheme", f"bearer {KEY}".encode()), ("basic", b"Basic dXNlcjpwYXNz"),
                        ("key only", KEY.encode()), ("trailing space", f"Bearer {KEY} ".encode()),
                        ("latin-1", b"Bearer \xff\xfe"), ("8 KB", b"Bearer " + b"k" * 8000), ("empty", b""),
                        ("prefix", f"Bearer {KEY[:-1]}".encode()), ("tab", f"Bearer\t{KEY}".encode())]:
        post(f"auth {name}", body, auth=False, headers=[("authorization", value)])
    post("auth missing", body, auth=False)
    post("auth twice", body, headers=[("authorization", "Bearer wrong")])
    add("auth missing on models", http("GET", "/v1/models", auth=False))
    # methods and paths
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO", "CONNECT"]:
        add(f"method {method}", http(method, body=b""))
    for path in ["/", "/v1", "/v1/", "/v1/chat/completions/", "/v1//chat/completions", "/V1/chat/completions",
                 "/../../etc/passwd", "/%00", "/%ff%fe", "/%ED%A0%80", "/v1/models?x=%ff", "/health?%%",
                 "/health/", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect", "/" + "a" * 10_000,
                 "http://evil/health", "*", "health"]:
        add(f"path {path[:30]}", http("GET", path, auth=False))
    add("path docs with key", http("GET", "/docs"))
    add("host [", http("GET", "/nothing", headers=[("host", "[")]))
    add("host junk on chat", http(body=body, headers=[("host", "a b:x")]))
    add("no host", b"GET /health HTTP/1.1\r\nconnection: close\r\n\r\n")
    add("HTTP/1.0", b"GET /health HTTP/1.0\r\n\r\n")
    add("HTTP/2.0", http("GET", "/health", version=b"HTTP/2.0"))
    add("HTTP/9", http("GET", "/health", version=b"HTTP/9.9"))
    add("garbage line", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n")  # a TLS hello, roughly
    add("bare LF", b"GET /health HTTP/1.1\nhost: x\nconnection: close\n\n")
    add("empty line only", b"\r\n\r\n")
    # logprobs: the types and ranges of logprobs / top_logprobs / return_tokens_as_token_ids, together and streamed
    for lp, top, ids in [(True, 0, None), (True, 20, True), (True, 21, None), (True, -1, None), (True, 5.0, None),
                         (True, "5", None), (True, True, None), (True, 10 ** 20, None), (True, None, "x"),
                         (True, None, 1), (False, 5, None), (None, 5, None), (None, None, True), (1, None, None),
                         ("true", None, None), ([True], None, None), ({"a": 1}, 3, None)]:
        for stream in (False, True):
            fields = {k: v for k, v in (("logprobs", lp), ("top_logprobs", top), ("return_tokens_as_token_ids", ids))
                      if v is not None}
            post(f"logprobs {lp!r} top={top!r} ids={ids!r} stream={stream}", chat_body(stream=stream, **fields))
    for literal in ["NaN", "1e999", "-0", "20.0", str(2 ** 63)]:
        post(f"number top_logprobs={literal}", b'{"messages": [{"role": "user", "content": "hi"}], "logprobs": true, '
                                                b'"top_logprobs": %s}' % literal.encode())
    # tools and thinking: junk in every tool field, tool-call arguments that are strings of anything, tool
    # histories and both thinking switches, streamed and not (the server reads these replies for calls)
    add_tool = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
    history = [USER, {"role": "assistant", "content": None, "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "c1", "content": "1"}]

    def messages_body(messages, **fields):
        return json.dumps({"messages": messages, "max_tokens": 3, **fields}).encode()

    for v in junk:
        post(f"tools function={v!r}", chat_body(tools=[{"type": "function", "function": v}]))
        post(f"tools name={v!r}", chat_body(tools=[{"type": "function", "function": {"name": v}}]))
        post(f"tools parameters={v!r}", chat_body(tools=[{"type": "function", "function": {"name": "f",
                                                                                          "parameters": v}}]))
        post(f"tools tool_choice={v!r}", chat_body(tools=[add_tool], tool_choice=v))
        post(f"tools named choice={v!r}", chat_body(tools=[add_tool], tool_choice={"type": "function",
                                                                                   "function": {"name": v}}))
        post(f"tools tool_calls={v!r}", messages_body([USER, {"role": "assistant", "content": None, "tool_calls": v}]))
        post(f"tools call={v!r}", messages_body([USER, {"role": "assistant", "tool_calls": [v]}]))
        post(f"tools call function={v!r}", messages_body([USER, {"role": "assistant", "tool_calls": [
            {**call, "function": v}]}]))
        post(f"tools arguments={v!r}", messages_body([USER, {"role": "assistant", "tool_calls": [
            {**call, "function": {"name": "add", "arguments": v}}]}]))
        post(f"tools tool_call_id={v!r}", messages_body(history[:2] + [{**history[2], "tool_call_id": v}]))
        post(f"tools result content={v!r}", messages_body(history[:2] + [{**history[2], "content": v}]))
        post(f"tools reasoning_content={v!r}", messages_body([USER, {"role": "assistant", "content": "x",
                                                                     "reasoning_content": v}, USER]))
        post(f"tools chat_template_kwargs={v!r}", chat_body(chat_template_kwargs=v))
        post(f"tools enable_thinking={v!r}", chat_body(chat_template_kwargs={"enable_thinking": v}))
        post(f"tools open_thinking={v!r}", chat_body(open_thinking=v))
    for arguments in ["", "{", "[]", "null", '"{}"', "{}" + " " * 100, "[" * 5000 + "]" * 5000,
                      '{"a": ' * 5000 + "1" + "}" * 5000, '{"a": "\\ud800"}', '{"\\udfff": 1}', '{"a": NaN}',
                      '{"a": ' + "9" * 5000 + "}", '{"a": "<tool_call>", "b": "<|im_end|>"}']:
        for stream in (False, True):
            bad_call = {**call, "function": {"name": "add", "arguments": arguments}}
            post(f"tools arguments string {arguments[:24]!r} stream={stream}", messages_body(
                [USER, {"role": "assistant", "tool_calls": [bad_call]}, history[2]], tools=[add_tool], stream=stream))
    for stream in (False, True):
        for choice in [None, "auto", "none", "required", {"type": "function", "function": {"name": "add"}}]:
            fields = {"tool_choice": choice} if choice is not None else {}
            post(f"tools loop choice={choice!r} stream={stream}", messages_body(history, tools=[add_tool],
                                                                                stream=stream, **fields))
        for thinking in (True, False):
            post(f"tools thinking={thinking} stream={stream}", chat_body(
                tools=[add_tool], stream=stream, logprobs=True, chat_template_kwargs={"enable_thinking": thinking}))
            post(f"tools open_thinking={thinking} stream={stream}", chat_body(stream=stream, open_thinking=thinking))
        post(f"tools a tool message first stream={stream}", messages_body([history[2]], stream=stream))
        post(f"tools duplicate names stream={stream}", chat_body(tools=[add_tool, add_tool], stream=stream))
        post(f"tools 300 tools stream={stream}", chat_body(stream=stream, tools=[
            {"type": "function", "function": {"name": f"f{i}", "description": "x" * 50}} for i in range(300)]))
    # POST /v1/load_weights on a server without --weights_dir: 404 with the key, 401 without, never a 5xx
    for body in [b'{"path": "x.pth"}', b'{"path": "../../etc/passwd"}', b"{", b'{"path": ' + nest(1000) + b"}",
                 b'{"path": "\\ud800.pth"}', b"[]"]:
        post(f"load_weights off {body[:30]!r}", body, path="/v1/load_weights")
    add("load_weights off no key", http(path="/v1/load_weights", body=b'{"path": "x.pth"}', auth=False))
    add("load_weights GET", http("GET", "/v1/load_weights"))
    return cases


def exchange(url, raw: bytes, timeout=15.0):
    """Send `raw`, read until the server closes: (status or None, headers, body)."""
    host, port = url.removeprefix("http://").split(":")
    data = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        try:
            s.sendall(raw)
            while chunk := s.recv(65536):
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed on us (after refusing a big body): what was read still counts
        except TimeoutError:
            return "timeout", {}, data
    head, _, payload = data.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 1"):  # 100 Continue: the answer comes after it
        head, _, payload = payload.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1."):
        return None, {}, data
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode("latin-1")
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while payload:
            size, _, rest = payload.partition(b"\r\n")
            n = int(size, 16)
            body, payload = body + rest[:n], rest[n + 2:]
            if n == 0:
                break
        payload = body
    return status, headers, payload


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_tokenizer_dir):
    out = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    save_native(MiniMindForCausalLM(MiniMindConfig(**CONFIG)), str(out / "full_sft_32.pth"))
    srv = start_server(out, tiny_tokenizer_dir, "--api_key", KEY, "--max_seq_len", str(CONTEXT), "--max_new_tokens",
                       "4", "--max_body_bytes", str(MAX_BODY), "--body_timeout", str(BODY_TIMEOUT))
    try:
        wait_healthy(srv)
        yield srv
    finally:
        srv.proc.terminate()
        srv.proc.communicate(timeout=10)


def sse_payloads(body: bytes) -> list[str]:
    return [line[len("data: "):] for line in body.decode().split("\n") if line.startswith("data: ")]


def test_the_corpus_gets_no_5xx_and_the_server_keeps_serving(server):
    cases = build_corpus()
    assert len(cases) >= 200 and len({c.name for c in cases}) == len(cases)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: exchange(server.url, c.raw), cases))
    counts, failures = Counter(), []
    for case, (status, headers, body) in zip(cases, results):
        counts[status if isinstance(status, int) else f"no response ({status or 'closed'})"] += 1
        if isinstance(status, int) and status >= 500:
            failures.append(f"{case.name}: {status} {body[:200]!r}")
        if isinstance(status, int) and status >= 400 and headers.get("content-type") == "application/json" \
                and not case.raw.startswith(b"HEAD "):
            error = json.loads(body).get("error", {})
            if set(error) != {"message", "type", "param", "code"}:
                failures.append(f"{case.name}: error shape {body[:200]!r}")
        if status == 200 and headers.get("content-type", "").startswith("text/event-stream"):
            events = sse_payloads(body)
            if events[-1:] != ["[DONE]"]:
                failures.append(f"{case.name}: stream ends {events[-2:]}")
            errors = [i for i, e in enumerate(events) if e.startswith('{"error"')]
            if errors and errors != [len(events) - 2]:
                failures.append(f"{case.name}: error event not just before [DONE]: {events}")
        if status == "timeout":
            failures.append(f"{case.name}: no answer in 15 s")
    print(f"\nfuzz corpus: {len(cases)} requests; by status: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))))
    assert not failures, "\n".join(failures)
    assert counts[200] >= 50 and counts[400] >= 100 and counts[401] and counts[404] and counts[408] and counts[413]

    assert httpx.get(server.url + "/health").status_code == 200
    r = httpx.post(server.url + CHAT_PATH, json={"messages": [USER], "max_tokens": 3}, headers={
        "authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["role"] == "assistant"
    log = server.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 500:][:3000]


def ask(server, body: bytes, **kw):
    status, headers, payload = exchange(server.url, http(body=body, **kw))
    return status, (json.loads(payload) if headers.get("content-type") == "application/json" else payload)


def test_tiny_temperature_or_top_p_is_greedy(server):
    replies = []
    for fields in [dict(temperature=0), dict(temperature=1e-40), dict(temperature=5e-324), dict(top_p=1e-300),
                   dict(temperature=2, top_p=1e-45)]:
        status, reply = ask(server, chat_body(**fields, max_tokens=4))
        assert status == 200, (fields, reply)
        replies.append(reply["choices"][0]["message"]["content"])
    assert len(set(replies)) == 1


def test_a_body_shorter_than_its_content_length_times_out(server):
    body = chat_body()
    status, reply = ask(server, body, headers=[("content-length", str(len(body) + 100))])
    assert status == 408 and reply["error"]["code"] == "request_timeout"


def test_docs_are_served_when_there_is_no_key():  # with a key they are not (test_serve_openai_api.test_api_key)
    app = create_app(Engine(None, None, "cpu", CONTEXT), SimpleNamespace(api_key=None), "m")
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 200 and client.get("/docs").status_code == 200


class BreaksAfterTwoTokens(MiniMindForCausalLM):
    calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        if self.calls > 2:
            raise RuntimeError("injected failure")
        return super().forward(*args, **kwargs)


def test_a_failure_mid_stream_ends_the_stream_with_an_error_event_then_done(tiny_tokenizer_dir):
    torch.manual_seed(0)
    model = BreaksAfterTwoTokens(MiniMindConfig(**CONFIG))
    args = SimpleNamespace(api_key=None, max_body_bytes=MAX_BODY, body_timeout=BODY_TIMEOUT, max_new_tokens=8,
                           temperature=0.0, top_p=1.0, top_k=0, repetition_penalty=1.0)
    app = create_app(Engine(model, load_tokenizer(tiny_tokenizer_dir), "cpu", CONTEXT), args, "m")
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(CHAT_PATH, json={"messages": [USER], "stream": True})
        assert r.status_code == 200
        events = sse_payloads(r.content)
        assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
        assert events[-1] == "[DONE]" and model.calls == 3
        error = json.loads(events[-2])["error"]
        assert error["type"] == "server_error" and "RuntimeError" in error["message"]
        assert not any('"finish_reason": "' in e for e in events)  # it did not pretend to finish

        model.calls = 0  # not streamed: a genuine server error stays a 500, in OpenAI's shape
        r = client.post(CHAT_PATH, json={"messages": [USER]})
        assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"


def test_hostile_load_weights_requests_get_4xx_and_leave_the_weights_alone(tmp_path, tiny_tokenizer_dir):
    """POST /v1/load_weights enabled (--weights_dir), in-process: junk bodies and paths never get a 5xx, never change
    the served weights, and a good file still loads afterwards."""
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig(**CONFIG))
    wdir = tmp_path / "policy"
    (wdir / "sub").mkdir(parents=True)
    save_native(MiniMindForCausalLM(MiniMindConfig(**CONFIG)), str(wdir / "good.pth"))
    save_native(MiniMindForCausalLM(MiniMindConfig(**{**CONFIG, "num_hidden_layers": 1})), str(wdir / "short.pth"))
    torch.save({"model.norm.weight": torch.full((32,), float("inf"))}, wdir / "inf.pth")
    torch.save([1, 2, 3], wdir / "list.pth")
    torch.save({k: v.to(torch.int32) for k, v in model.state_dict().items()}, wdir / "ints.pth")
    torch.save({"a": torch.zeros(2)}, wdir / "foreign.pth")
    (wdir / "empty.pth").write_bytes(b"")
    (wdir / "zip.pth").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    (wdir / "dir.pth").mkdir()
    (tmp_path / "outside.pth").write_bytes((wdir / "good.pth").read_bytes())
    (wdir / "sub" / "out.pth").symlink_to(tmp_path / "outside.pth")
    (wdir / "up").symlink_to(tmp_path)
    (wdir / "loop.pth").symlink_to(wdir / "loop.pth")
    args = SimpleNamespace(api_key=KEY, weights_dir=str(wdir), max_body_bytes=MAX_BODY, body_timeout=BODY_TIMEOUT,
                           max_new_tokens=2, temperature=0.0, top_p=1.0, top_k=0, repetition_penalty=1.0,
                           load_from=None, quantize="none")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    paths = ["../outside.pth", "sub/out.pth", "up/outside.pth", "loop.pth", "dir.pth", "sub", ".", "/", "", " ",
             str(tmp_path / "outside.pth"), "//good.pth", "./../policy/good.pth", "good.pth\x00.txt", "\\..\\x.pth",
             "good.PTH", "good.pth/", "~/good.pth", "%2e%2e/good.pth", "a" * 300 + ".pth", "a/" * 3000 + "x.pth",
             "short.pth", "inf.pth", "list.pth", "ints.pth", "foreign.pth", "empty.pth", "zip.pth", "北京.pth",
             "\U0001F600.pth"]
    bodies = [json.dumps({"path": p}).encode() for p in paths]
    bodies += [json.dumps({"path": v}).encode() for v in [None, 5, 1.5, True, [], {}, ["good.pth"], {"a": "b"}]]
    bodies += [b"", b"{", b"[]", b"null", b'"good.pth"', b'{"path": "\\ud800.pth"}', b'{"path": "\xff.pth"}',
               b'{"path": ' + nest(5000, b'"x"') + b"}", b'{"path": "x' + b"y" * (MAX_BODY + 10) + b'.pth"}',
               b'{"path": "good.pth", "path": 5}', b'{"paths": "good.pth"}']
    with TestClient(create_app(Engine(model, load_tokenizer(tiny_tokenizer_dir), "cpu", CONTEXT), args, "m"),
                    raise_server_exceptions=False) as client:
        for body in bodies:
            r = client.post("/v1/load_weights", content=body, headers={"authorization": f"Bearer {KEY}"})
            assert 400 <= r.status_code < 500, (body[:80], r.status_code, r.text[:300])
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
        r = client.post("/v1/load_weights", json={"path": "good.pth"}, headers={"authorization": f"Bearer {KEY}"})
        assert r.status_code == 200 and r.json()["loaded"] == "good.pth"
        assert not all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
        r = client.post(CHAT_PATH, json={"messages": [USER], "logprobs": True},
                        headers={"authorization": f"Bearer {KEY}"})
        assert r.status_code == 200 and len(r.json()["choices"][0]["logprobs"]["content"]) >= 1
