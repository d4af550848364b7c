"""The server as an RL rollout backend: OpenAI's logprobs (equal to a training forward's log p(token)), streamed and
not, vLLM's return_tokens_as_token_ids, and POST /v1/load_weights (key-protected, confined to --weights_dir, refusing
what does not fit and leaving the served weights as they were). One real server process for the module; the cases
that need a model built to end its turn, or another way of serving, run in-process."""
import json
import os
import shutil
import subprocess
import sys
import threading
from types import SimpleNamespace

import httpx
import pytest
import torch
from starlette.testclient import TestClient

from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.streaming import TextStream
from model.tokenizer import load_tokenizer
from model.weights import load_native
from scripts.serve_openai_api import Engine, create_app
from test_serve_openai_api import CHAT, CONFIG, REPO, SIZE, prompt_ids, sse_events, start_server, wait_healthy

KEY, CONTEXT = "sk-rl", 512
AUTH = {"authorization": f"Bearer {KEY}"}


def model_with_seed(seed, **changes):
    torch.manual_seed(seed)
    return MiniMindForCausalLM(MiniMindConfig(**{**CONFIG, **changes}))


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_tokenizer_dir):
    out = tmp_path_factory.mktemp("rl")
    save_native(model_with_seed(0), str(out / "full_sft_32.pth"))
    wdir = out / "policy"
    (wdir / "sub").mkdir(parents=True)
    shutil.copy(out / "full_sft_32.pth", wdir / "orig.pth")
    save_native(model_with_seed(1), str(wdir / "step1.pth"))
    save_native(model_with_seed(2, hidden_size=64), str(wdir / "wide.pth"))
    nan = {k: v.clone() for k, v in model_with_seed(3).state_dict().items()}
    nan["model.norm.weight"][0] = float("nan")
    torch.save(nan, wdir / "nan.pth")  # atomic_save would refuse it
    (wdir / "junk.pth").write_bytes(b"not a checkpoint")
    (wdir / "notes.txt").write_text("x")
    os.symlink(wdir / "step1.pth", wdir / "sub" / "link.pth")  # a link inside the folder: fine
    os.symlink(out / "full_sft_32.pth", wdir / "escape.pth")  # one that leads out: refused
    server = start_server(out, tiny_tokenizer_dir, "--api_key", KEY, "--max_seq_len", str(CONTEXT),
                          "--weights_dir", str(wdir))
    keyless = subprocess.Popen([sys.executable, "scripts/serve_openai_api.py", "--out_dir", str(out),
                                "--tokenizer_dir", tiny_tokenizer_dir, *SIZE, "--weights_dir", str(wdir)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(server)
        config = MiniMindConfig(**CONFIG)
        yield SimpleNamespace(url=server.url, wdir=str(wdir), chat_url=server.url + "/v1/chat/completions",
                              load_url=server.url + "/v1/load_weights", keyless=keyless,
                              tokenizer=load_tokenizer(tiny_tokenizer_dir),
                              orig=load_native(str(wdir / "orig.pth"), config),
                              step1=load_native(str(wdir / "step1.pth"), config))
    finally:
        for proc in (server.proc, keyless):
            proc.terminate()
            proc.communicate(timeout=10)


def chat(env, **fields):
    r = httpx.post(env.chat_url, json={"messages": CHAT, **fields}, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def streamed(env, **fields):
    with httpx.stream("POST", env.chat_url, json={"messages": CHAT, "stream": True, **fields}, headers=AUTH,
                      timeout=60) as r:
        assert r.status_code == 200
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def token_ids(entries):
    return [int(e["token"].removeprefix("token_id:")) for e in entries]


def reference_logprobs(model, tokenizer, ids):
    """log p of every position after the prompt, from one fp32 forward over prompt + completion (a training forward)."""
    prompt = prompt_ids(tokenizer, CHAT)
    with torch.no_grad():
        logits = model(torch.tensor([prompt + ids])).logits[0].float()
    return logits.log_softmax(-1)[len(prompt) - 1:-1]


def logprobs_of(model, tokenizer, entries) -> bool:
    """Whether the entries' logprobs are those of `model` (to 1e-5)."""
    ids = token_ids(entries)
    ref = reference_logprobs(model, tokenizer, ids)
    got = torch.tensor([e["logprob"] for e in entries])
    return len(ref) == len(entries) and torch.allclose(got, ref[torch.arange(len(ids)), ids], atol=1e-5, rtol=0)


def assert_logprobs_match(model, tokenizer, entries, top):
    assert logprobs_of(model, tokenizer, entries)
    ref = reference_logprobs(model, tokenizer, token_ids(entries))
    for entry, row in zip(entries, ref):
        assert len(entry["top_logprobs"]) == top
        values, indices = row.topk(top)
        assert token_ids(entry["top_logprobs"]) == indices.tolist()
        assert torch.allclose(torch.tensor([t["logprob"] for t in entry["top_logprobs"]]), values, atol=1e-5, rtol=0)


def test_greedy_logprobs_equal_a_training_forward(env):
    r = chat(env, max_tokens=24, temperature=0, logprobs=True, top_logprobs=5, return_tokens_as_token_ids=True)
    choice = r["choices"][0]
    entries = choice["logprobs"]["content"]
    assert len(entries) == r["usage"]["completion_tokens"] + (choice["finish_reason"] == "stop")
    assert all(set(e) == {"token", "logprob", "bytes", "top_logprobs"} for e in entries)
    assert_logprobs_match(env.orig, env.tokenizer, entries, 5)
    for e in entries:  # greedy: the token picked is the most likely one
        assert e["token"] == e["top_logprobs"][0]["token"] and e["logprob"] == e["top_logprobs"][0]["logprob"]
    ids = token_ids(entries)
    assert env.tokenizer.decode(ids, skip_special_tokens=True) == choice["message"]["content"]
    # the same reply without logprobs, and with the tokens as text: the bytes make up the reply
    plain = chat(env, max_tokens=24, temperature=0)
    assert plain["choices"][0]["message"]["content"] == choice["message"]["content"]
    assert "logprobs" not in plain["choices"][0]
    as_text = chat(env, max_tokens=24, temperature=0, logprobs=True)["choices"][0]["logprobs"]["content"]
    assert [e["logprob"] for e in as_text] == [e["logprob"] for e in entries]
    assert all(e["top_logprobs"] == [] for e in as_text)
    special = set(env.tokenizer.all_special_ids)
    reply = bytes(b for e, i in zip(as_text, ids) if i not in special for b in e["bytes"])
    assert reply.decode("utf-8", "replace") == choice["message"]["content"]
    for e, i in zip(as_text, ids):
        assert bytes(e["bytes"]).decode("utf-8", "backslashreplace") == e["token"]
        assert bytes(e["bytes"]).decode("utf-8", "replace") == env.tokenizer.decode([i])


def test_streamed_logprobs_concatenate_to_the_non_streamed_ones_and_sampling_is_unchanged(env):
    ask = dict(max_tokens=20, temperature=0.9, seed=7, logprobs=True, top_logprobs=3, return_tokens_as_token_ids=True)
    whole = chat(env, **ask)["choices"][0]
    chunks = streamed(env, **ask)
    assert chunks[0]["choices"][0]["logprobs"] is None  # the role chunk: no tokens
    entries, special = [], set(env.tokenizer.all_special_ids)
    for c in chunks[1:]:
        part = (c["choices"][0]["logprobs"] or {"content": []})["content"]
        entries += part
        if text := c["choices"][0]["delta"].get("content"):  # a chunk's entries are the tokens of its text
            own = bytes(b for e, i in zip(part, token_ids(part)) if i not in special for b in e["bytes"])
            assert own.decode("utf-8", "replace") == text
    assert entries == whole["logprobs"]["content"]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == whole["message"]["content"]
    assert_logprobs_match(env.orig, env.tokenizer, entries, 3)  # sampled: still the raw model's log p
    # the seed fixes the reply, and asking for logprobs changes nothing in it
    for fields in ({}, {"logprobs": False}, {"logprobs": True}):
        again = chat(env, max_tokens=20, temperature=0.9, seed=7, **fields)["choices"][0]
        assert again["message"]["content"] == whole["message"]["content"]
    other = {chat(env, max_tokens=20, temperature=0.9, seed=s)["choices"][0]["message"]["content"] for s in range(4)}
    assert len(other) > 1  # and different seeds sample differently


@pytest.mark.parametrize("fields, param", [
    ({"logprobs": "yes"}, "logprobs"),
    ({"logprobs": 1}, "logprobs"),
    ({"logprobs": True, "top_logprobs": 99}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 2.5}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": True}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": "3"}, "top_logprobs"),
    ({"top_logprobs": 5}, "top_logprobs"),
    ({"logprobs": False, "top_logprobs": 0}, "top_logprobs"),
    ({"logprobs": True, "return_tokens_as_token_ids": "yes"}, "return_tokens_as_token_ids"),
    ({"n": 2}, "n"),
    ({"seed": 1.5}, "seed"),
])
def test_bad_logprobs_fields_get_400_naming_the_field(env, fields, param):
    r = httpx.post(env.chat_url, json={"messages": CHAT, **fields}, headers=AUTH)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["message"].startswith(param)


def test_logprobs_null_is_off(env):
    r = chat(env, max_tokens=3, logprobs=None, top_logprobs=None)
    assert "logprobs" not in r["choices"][0]


def load(env, path, headers=AUTH):
    return httpx.post(env.load_url, json={"path": path}, headers=headers, timeout=60)


def greedy(env, **fields):
    return chat(env, max_tokens=16, temperature=0, logprobs=True, return_tokens_as_token_ids=True, **fields)


def expected_reply(model, tokenizer, max_tokens=16):
    return "".join(TextStream(model, tokenizer, torch.tensor([prompt_ids(tokenizer, CHAT)]),
                              max_new_tokens=max_tokens, temperature=0))


@pytest.mark.parametrize("path", ["../full_sft_32.pth", "/etc/passwd.pth", str(os.path.abspath("x.pth")),
                                  "sub/../../full_sft_32.pth", "sub\\..\\..\\x.pth", "escape.pth", "missing.pth",
                                  "notes.txt", "sub", "", "a\u0000.pth", "junk.pth", "x" * 5000 + ".pth"])
def test_load_weights_refuses_paths_outside_or_not_checkpoints(env, path):
    r = load(env, path)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "path" and r.json()["error"]["message"].startswith("path")
    assert env.wdir not in r.json()["error"]["message"]  # the server's folders are not told


@pytest.mark.parametrize("body", [{}, {"path": 5}, {"path": ["a.pth"]}, {"path": None}])
def test_load_weights_bad_bodies(env, body):
    r = httpx.post(env.load_url, json=body, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["param"] == "path", r.text


def test_load_weights_needs_the_key(env):
    for headers in ({}, {"authorization": "Bearer wrong"}):
        r = load(env, "step1.pth", headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_weights_dir_without_api_key_is_refused_at_startup(env):
    _, err = env.keyless.communicate(timeout=120)
    assert env.keyless.returncode != 0 and "--weights_dir needs --api_key" in err and "Traceback" not in err


def test_load_weights_swaps_between_replies_and_refuses_what_does_not_fit(env):
    tok = env.tokenizer

    def served_by(model, **fields):
        reply = greedy(env, **fields)["choices"][0]
        return reply["message"]["content"] == expected_reply(model, tok) and \
            logprobs_of(model, tok, reply["logprobs"]["content"])

    assert served_by(env.orig) and not served_by(env.step1)
    for path, words in [("wide.pth", "does not fit"), ("nan.pth", "non-finite"), ("junk.pth", "not a readable")]:
        r = load(env, path)
        assert r.status_code == 400 and words in r.json()["error"]["message"], r.text
        assert r.json()["error"]["param"] == "path"
        assert served_by(env.orig)  # the old weights still serve

    r = load(env, "step1.pth")
    assert r.status_code == 200 and r.json() == {"loaded": "step1.pth", "tensors": len(env.step1.state_dict())}
    assert served_by(env.step1) and not served_by(env.orig)
    assert_logprobs_match(env.step1, tok, greedy(env, top_logprobs=2)["choices"][0]["logprobs"]["content"], 2)

    # a reply under way when a load arrives finishes on the weights it began with
    assert load(env, "orig.pth").status_code == 200
    text, entries, loaded = "", [], []
    loader = threading.Thread(target=lambda: loaded.append(load(env, "sub/link.pth")))  # a link to step1.pth
    with httpx.stream("POST", env.chat_url, headers=AUTH, timeout=60, json={
            "messages": CHAT, "stream": True, "max_tokens": 300, "temperature": 0, "logprobs": True,
            "return_tokens_as_token_ids": True}) as r:
        for line in r.iter_lines():  # as they come
            if line.startswith("data: {"):
                choice = json.loads(line[6:])["choices"][0]
                text += choice["delta"].get("content", "")
                entries += (choice["logprobs"] or {"content": []})["content"]
            if text and loader.ident is None:  # the reply is under way: load now
                loader.start()
                loader.join(0.5)  # time for the load to arrive and queue behind the reply
    loader.join()
    assert loaded[0].status_code == 200 and loaded[0].json()["loaded"] == "sub/link.pth"
    assert len(entries) >= 300 and text == expected_reply(env.orig, tok, 300)
    assert logprobs_of(env.orig, tok, entries)
    assert served_by(env.step1)
    assert load(env, "orig.pth").status_code == 200  # as the module began


class EndsAfterThreeTokens(MiniMindForCausalLM):
    """Greedy replies end their turn at the fourth step: <|im_end|> gets a huge logit."""
    calls = 0

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        self.calls += 1
        if self.calls % 4 == 0:
            out.logits[..., 2] = 100.0
        return out


def app_args(**changes):
    return SimpleNamespace(**{**dict(api_key=KEY, max_body_bytes=1 << 16, body_timeout=5.0, max_new_tokens=8,
                                     temperature=0.0, top_p=1.0, top_k=0, repetition_penalty=1.0, weights_dir=None,
                                     load_from=None, quantize="none"), **changes})


def test_the_end_of_turn_token_gets_an_entry(tiny_tokenizer_dir):
    torch.manual_seed(0)
    model = EndsAfterThreeTokens(MiniMindConfig(**CONFIG))
    tok = load_tokenizer(tiny_tokenizer_dir)
    with TestClient(create_app(Engine(model, tok, "cpu", CONTEXT), app_args(), "m")) as client:
        body = {"messages": CHAT, "logprobs": True, "top_logprobs": 1}
        r = client.post("/v1/chat/completions", json=body, headers=AUTH).json()
        choice, end = r["choices"][0], r["choices"][0]["logprobs"]["content"][-1]
        assert choice["finish_reason"] == "stop" and r["usage"]["completion_tokens"] == 3
        assert len(choice["logprobs"]["content"]) == 4
        assert end["token"] == "<|im_end|>" and bytes(end["bytes"]) == b"<|im_end|>" and end["logprob"] > -1e-3
        events = [json.loads(e) for e in sse_events(client.post("/v1/chat/completions", headers=AUTH, json={
            **body, "stream": True, "return_tokens_as_token_ids": True})) if e != "[DONE]"]
        last = events[-1]["choices"][0]
        assert last["finish_reason"] == "stop"
        entries = [e for c in events for e in (c["choices"][0]["logprobs"] or {"content": []})["content"]]
        assert [e["logprob"] for e in entries] == [e["logprob"] for e in choice["logprobs"]["content"]]
        assert entries[-1]["token"] == "token_id:2"


def test_load_weights_off_or_not_native(tmp_path, tiny_tokenizer_dir):
    tok = load_tokenizer(tiny_tokenizer_dir)
    engine = Engine(model_with_seed(0), tok, "cpu", CONTEXT)
    with pytest.raises(ValueError, match="--api_key"):
        create_app(engine, app_args(api_key=None, weights_dir=str(tmp_path)), "m")
    for args, status, words in [(app_args(), 404, "--weights_dir"),
                                (app_args(weights_dir=str(tmp_path), load_from="out/hf"), 400, "--load_from out/hf"),
                                (app_args(weights_dir=str(tmp_path), quantize="int8"), 400, "--quantize int8")]:
        with TestClient(create_app(engine, args, "m")) as client:
            r = client.post("/v1/load_weights", json={"path": "x.pth"}, headers=AUTH)
            assert r.status_code == status and words in r.json()["error"]["message"], r.text
