"""The OpenAI-compatible server as its users meet it: a real process on a loopback port, the official `openai` SDK,
raw HTTP for what the SDK would never send. One server for the whole module (starting one costs seconds of imports),
with an API key and a 512-token context so those limits can be met cheaply."""
import os
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import httpx
import pytest
import torch
from openai import OpenAI

from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.streaming import TextStream
from model.tokenizer import load_tokenizer
from model.weights import load_native

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=600)
SIZE = [f"--{k}={v}" for k, v in CONFIG.items() if k != "vocab_size"]
KEY, CONTEXT = "sk-test", 512
AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = [{"role": "system", "content": "You are MiniMind."}, {"role": "user", "content": "北京在哪里？"}]


def start_server(out_dir, tokenizer_dir, *flags):
    with socket.socket() as s:  # a free port (a tiny race with other processes; fine on a test box)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = out_dir / f"server_{port}.log"
    with log.open("w") as f:  # a file, not a pipe: nobody reads the access log, and a full pipe would block
        proc = subprocess.Popen([sys.executable, "scripts/serve_openai_api.py", "--out_dir", str(out_dir),
                                 "--tokenizer_dir", tokenizer_dir, *SIZE, "--port", str(port), *flags], cwd=REPO,
                                stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return SimpleNamespace(proc=proc, url=f"http://127.0.0.1:{port}", log=log)


def wait_healthy(server, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert server.proc.poll() is None, f"server exited:\n{server.log.read_text()}"
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"no /health after {timeout}s:\n{server.log.read_text()}")


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_tokenizer_dir):
    out = tmp_path_factory.mktemp("serve")
    torch.manual_seed(0)
    save_native(MiniMindForCausalLM(MiniMindConfig(**CONFIG)), str(out / "full_sft_32.pth"))
    server = start_server(out, tiny_tokenizer_dir, "--api_key", KEY, "--max_seq_len", str(CONTEXT))
    # one with no weights to load, started now so that the two slow imports overlap
    missing = subprocess.Popen([sys.executable, "scripts/serve_openai_api.py", "--out_dir", str(out / "empty"),
                                "--tokenizer_dir", tiny_tokenizer_dir, *SIZE], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(server)
        # the weights exactly as the server holds them (fp16 on disk, fp32 in memory)
        model = load_native(str(out / "full_sft_32.pth"), MiniMindConfig(**CONFIG))
        yield SimpleNamespace(url=server.url, chat_url=server.url + "/v1/chat/completions", missing=missing,
                              model=model, tokenizer=load_tokenizer(tiny_tokenizer_dir),
                              client=OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0))
    finally:
        for proc in (server.proc, missing):
            proc.terminate()
            proc.communicate(timeout=10)


def health(env):
    return httpx.get(env.url + "/health").json()


def prompt_ids(tokenizer, messages):
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer.encode(text, add_special_tokens=False)


def sse_events(response):
    """The `data:` payloads of a server-sent-event stream."""
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


def test_models_health_and_non_stream_usage(env):
    assert health(env)["status"] == "ok"
    assert [m.id for m in env.client.models.list().data] == ["minimind-full_sft"]
    r = env.client.chat.completions.create(model="minimind", messages=CHAT, max_tokens=7, temperature=0)
    stream = TextStream(env.model, env.tokenizer, torch.tensor([prompt_ids(env.tokenizer, CHAT)]), max_new_tokens=7,
                        temperature=0)
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content == "".join(stream)
    assert r.choices[0].finish_reason == stream.finish_reason
    assert r.usage.prompt_tokens == len(prompt_ids(env.tokenizer, CHAT))
    assert r.usage.completion_tokens == stream.n_tokens
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_stream_reassembles_to_the_non_stream_reply(env):
    ask = dict(model="minimind", messages=CHAT, max_tokens=12, temperature=0.9, seed=3)
    whole = env.client.chat.completions.create(**ask)
    chunks = list(env.client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)

    # seeded: an unseeded draw depends on the generator state earlier requests left (it may stop at once); seed 0
    # draws 4 tokens without EOS from this model
    with httpx.stream("POST", env.chat_url, json={"messages": CHAT, "max_tokens": 4, "stream": True, "seed": 0},
                      headers=AUTH) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]" and '"finish_reason": "length"' in events[-2]


@pytest.mark.parametrize("body, status, param", [
    (b"{not json", 400, None),
    (b"[1, 2]", 400, None),
    (b"{}", 400, "messages"),
    (b'{"messages": []}', 400, "messages"),
    (b'{"messages": "hi"}', 400, "messages"),
    (b'{"messages": [{"role": "tool", "content": "x"}]}', 400, "messages[0].role"),
    (b'{"messages": [{"role": "user"}]}', 400, "messages[0].content"),
    (b'{"messages": [{"role": "user", "content": 5}]}', 400, "messages[0].content"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": 2.5}', 400, "temperature"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": "0.5"}', 400, "temperature"),
    (b'{"messages": [{"role": "user", "content": "x"}], "top_p": 0}', 400, "top_p"),
    (b'{"messages": [{"role": "user", "content": "x"}], "top_p": 1.5}', 400, "top_p"),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', 400, "max_tokens"),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 2.5}', 400, "max_tokens"),
    (b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', 400, "stream"),
    (b'{"messages": [{"role": "user", "content": "x"}], "n": 2}', 400, "n"),
    (b'{"messages": [{"role": "user", "content": "x"}], "seed": -1}', 400, "seed"),
    # lone surrogates, escaped or as raw bytes (json.loads lets both through): valid JSON, but not text
    (b'{"messages": [{"role": "user", "content": "a \\ud800 b"}]}', 400, "messages[0].content"),
    (b'{"messages": [{"role": "user", "content": "a \xed\xa0\x80 b"}]}', 400, "messages[0].content"),
    (b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}]}', 400,
     "messages[0].content[0].text"),
    (b'{"messages": [{"role": "user", "content": "x"}], "user": "\\udc00"}', 400, "user"),
    # nesting too deep for the parser (even in a field we ignore), an integer too long to convert
    (b'{"messages": [{"role": "user", "content": "x"}], "x": ' + b"[" * 2000 + b"]" * 2000 + b"}", 400, None),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": ' + b"1" * 5000 + b"}", 400, None),
])
def test_bad_requests_get_openai_errors_naming_the_field(env, body, status, param):
    r = httpx.post(env.chat_url, content=body, headers={"content-type": "application/json", **AUTH})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["param"] == param and (param is None or error["message"].startswith(param))


def test_oversized_body_and_unknown_route(env):
    big = b'{"messages": [{"role": "user", "content": "' + b"x" * (2 << 20) + b'"}]}'
    r = httpx.post(env.chat_url, content=big, headers=AUTH)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    chunked = httpx.post(env.chat_url, content=iter([big]), headers=AUTH)  # no Content-Length to trust
    assert chunked.status_code == 413
    assert httpx.get(env.url + "/v1/nothing").json()["error"]["message"] == "Not Found: GET /v1/nothing"


def test_api_key(env):
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": KEY}):
        r = httpx.post(env.chat_url, json={"messages": CHAT}, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(env.url + "/v1/models").status_code == 401
    assert httpx.get(env.url + "/health").status_code == 200  # a liveness probe needs no key
    for path in ["/docs", "/redoc", "/openapi.json"]:  # not served at all when there is a key
        assert httpx.get(env.url + path, headers=AUTH).status_code == 404


def test_max_tokens_is_clamped_to_the_context_and_a_too_long_prompt_refused(env):
    r = httpx.post(env.chat_url, json={"messages": CHAT, "max_tokens": 100_000, "temperature": 0}, headers=AUTH)
    usage = r.json()["usage"]
    assert r.status_code == 200 and usage["total_tokens"] <= CONTEXT
    assert r.json()["choices"][0]["finish_reason"] == "stop" or usage["total_tokens"] == CONTEXT
    long = {"messages": [{"role": "user", "content": "北京 " * CONTEXT}]}
    r = httpx.post(env.chat_url, json=long, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert r.json()["error"]["param"] == "messages"


def test_32_concurrent_streams_all_finish_and_health_stays_responsive(env):
    done, health_s = [], []

    def client(i):
        body = {"messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 8, "stream": True}
        with httpx.stream("POST", env.chat_url, json=body, headers=AUTH, timeout=120) as r:
            done.append(sse_events(r)[-1] == "[DONE]")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        t0 = time.time()
        health(env)
        health_s.append(time.time() - t0)
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert done == [True] * 32
    assert max(health_s) < 2, health_s


def test_generation_stops_when_the_client_leaves(env):
    before = health(env)["tokens_generated"]
    body = {"messages": CHAT, "max_tokens": 100_000, "temperature": 0, "stream": True}  # ~490 tokens of room
    with httpx.stream("POST", env.chat_url, json=body, headers=AUTH) as r:
        for n, _ in enumerate(r.iter_lines()):
            if n == 6:  # three events in: it is generating
                assert health(env)["queued"] == 1
                break
    deadline = time.time() + 30
    while health(env)["queued"] and time.time() < deadline:
        time.sleep(0.05)
    assert health(env)["queued"] == 0
    assert health(env)["tokens_generated"] - before < (CONTEXT - len(prompt_ids(env.tokenizer, CHAT))) / 2


def test_chat_client_through_stdin(env):
    # two turns, with a prompt too long for the context between them: refused, and the session goes on
    lines = ["你好", "", "北京 " * CONTEXT, "Who are you?"]
    r = subprocess.run([sys.executable, "scripts/chat_openai_api.py", "--base_url", env.url + "/v1", "--api_key", KEY,
                        "--max_tokens", "4", "--history_cnt", "2"], input="\n".join(lines) + "\n", cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("🤖:") == 3 and r.stdout.count("[error 400") == 1


def test_missing_weights_is_a_clear_startup_error(env):
    _, err = env.missing.communicate(timeout=120)
    assert env.missing.returncode != 0 and "no checkpoint at" in err and "Traceback" not in err


def test_load_weights_is_off_without_weights_dir(env):
    r = httpx.post(env.url + "/v1/load_weights", json={"path": "full_sft_32.pth"}, headers=AUTH)
    assert r.status_code == 404 and "--weights_dir" in r.json()["error"]["message"]
    assert httpx.post(env.url + "/v1/load_weights", json={"path": "full_sft_32.pth"}).status_code == 401
