"""OpenAIRollout (trainer/rollout_server.py) against our real server process: the same rollouts as LocalRollout on the
same weights, seeded sampling, weight sync through --weights_dir, and errors that name the URL. A stdlib fake server
covers replies our server never sends (no logprobs, another prompt length)."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest
import torch

from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.tokenizer import load_tokenizer
from model.weights import load_native
from trainer.rollout import LocalRollout, completion_logps, left_pad_ids
from trainer.rollout_server import OpenAIRollout, parse_chat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=600)
SIZE = [f"--{k}={v}" for k, v in CONFIG.items() if k != "vocab_size"]
KEY, EOS, MAX_NEW = "sk-rollout", 2, 12
CHATS = [[{"role": "user", "content": "北京在哪里？"}],
         [{"role": "system", "content": "You are MiniMind."}, {"role": "user", "content": "Alice likes green tea."}],
         [{"role": "user", "content": "1 + 2 = ?"}, {"role": "assistant", "content": "3"},
          {"role": "user", "content": "Bob 一起分享苹果"}]]


def tiny_model(seed):
    """A random model whose <|im_end|> is likely enough that some greedy and sampled replies end their turn."""
    torch.manual_seed(seed)
    model = MiniMindForCausalLM(MiniMindConfig(**CONFIG))
    with torch.no_grad():
        model.model.embed_tokens.weight[EOS] *= -6.0  # tied: the lm_head row too
    return model.eval()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_tokenizer_dir):
    out = tmp_path_factory.mktemp("rollout_server")
    save_native(tiny_model(7), str(out / "full_sft_32.pth"))
    wdir = out / "policy"
    wdir.mkdir()
    port = free_port()
    log = out / "server.log"
    with log.open("w") as f:
        proc = subprocess.Popen([sys.executable, "scripts/serve_openai_api.py", "--out_dir", str(out),
                                 "--tokenizer_dir", tiny_tokenizer_dir, *SIZE, "--port", str(port), "--api_key", KEY,
                                 "--max_seq_len", "256", "--weights_dir", str(wdir)], cwd=REPO, stdout=f,
                                stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, f"server exited:\n{log.read_text()}"
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.time() < deadline, f"no /health after 120 s:\n{log.read_text()}"
                time.sleep(0.2)
        tok = load_tokenizer(tiny_tokenizer_dir)
        prompts = [tok.encode(tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True),
                              add_special_tokens=False) for c in CHATS]
        ids, mask = left_pad_ids(prompts, tok.pad_token_id)
        # the weights exactly as the server holds them (fp16 on disk, fp32 in memory)
        served = load_native(str(out / "full_sft_32.pth"), MiniMindConfig(**CONFIG)).eval()
        yield SimpleNamespace(url=url + "/v1", wdir=str(wdir), tok=tok, prompts=prompts, ids=ids, mask=mask,
                              served=served)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def remote(env, temperature, **kw):
    return OpenAIRollout(env.url, env.tok, MAX_NEW, temperature, api_key=KEY, **{"concurrency": 4, **kw})


def assert_same(a, b, logps_atol=1e-5):
    assert torch.equal(a.prompt_ids, b.prompt_ids) and torch.equal(a.prompt_mask, b.prompt_mask)
    assert a.completion_ids.tolist() == b.completion_ids.tolist()
    assert torch.equal(a.completion_mask, b.completion_mask) and torch.equal(a.finished, b.finished)
    assert (a.logps - b.logps).abs().max().item() <= logps_atol


def assert_well_formed(r, n_rows):
    assert r.completion_ids.shape[0] == n_rows and r.completion_ids.shape == r.completion_mask.shape == r.logps.shape
    assert r.logps.dtype == torch.float32 and r.finished.dtype == torch.bool
    for ids, mask, lp, done in zip(r.completion_ids, r.completion_mask, r.logps, r.finished):
        n = int(mask.sum())
        assert n >= 1 and mask[:n].all() and not mask[n:].any()  # a prefix
        assert (lp[:n] <= 0).all() and (lp[n:] == 0).all()
        assert (ids[n:] == 0).all()  # the pad id
        if done:
            assert ids[n - 1] == EOS and (ids[:n - 1] != EOS).all()
        else:
            assert n == MAX_NEW and (ids[:n] != EOS).all()


def test_greedy_equals_local_rollout(env):
    local = LocalRollout(MAX_NEW, 0.0, eos_token_id=EOS)(env.served, env.ids, env.mask, num_generations=2)
    assert bool(local.finished.any()) and not bool(local.finished.all())  # both kinds of rows are compared
    got = remote(env, 0.0)(env.served, env.ids, env.mask, num_generations=2)
    assert_same(got, local)
    # prompts as id lists: the same rollout
    assert_same(remote(env, 0.0)(env.served, env.prompts, num_generations=2), local)
    # the server's log-probs are a training forward's
    train = completion_logps(env.served, got)
    m = got.completion_mask.bool()
    assert (train[m] - got.logps[m]).abs().max().item() < 1e-5


def test_sampled_rollouts_are_well_formed_and_seeded_by_torch(env):
    torch.manual_seed(3)
    r = remote(env, 1.0)(env.served, env.ids, env.mask, num_generations=4)
    assert_well_formed(r, 12)
    assert r.prompt_mask.sum(1).tolist() == [len(p) for p in env.prompts for _ in range(4)]
    train = completion_logps(env.served, r)  # T = 1: the server's raw log-probs are the sampler's
    m = r.completion_mask.bool()
    assert (train[m] - r.logps[m]).abs().max().item() < 1e-5
    torch.manual_seed(3)
    assert_same(remote(env, 1.0, concurrency=1)(env.served, env.ids, env.mask, num_generations=4), r, 0)
    assert len({tuple(row) for row in r.completion_ids[:4].tolist()}) > 1  # a group's samples differ
    # T != 1: log-probs of softmax(z / T), recomputed locally
    torch.manual_seed(4)
    cold = remote(env, 0.7)(env.served, env.ids, env.mask, num_generations=2)
    assert_well_formed(cold, 6)
    train = completion_logps(env.served, cold, temperature=0.7)
    m = cold.completion_mask.bool()
    assert (train[m] - cold.logps[m]).abs().max().item() < 1e-5


def test_weight_sync_serves_the_new_policy(env):
    new = tiny_model(0)
    local = LocalRollout(MAX_NEW, 0.0, eos_token_id=EOS)(new, env.ids, env.mask)
    assert local.completion_ids.tolist() != \
        LocalRollout(MAX_NEW, 0.0, eos_token_id=EOS)(env.served, env.ids, env.mask).completion_ids.tolist()
    unsynced = remote(env, 0.0)(new, env.ids, env.mask)  # no weights_dir: the server keeps its weights
    assert unsynced.completion_ids.tolist() != local.completion_ids.tolist()
    sync = remote(env, 0.0, weights_dir=env.wdir)
    try:
        assert_same(sync(new, env.ids, env.mask), local)
        assert sync.uploads == 1 and os.path.isfile(os.path.join(env.wdir, "policy.pth"))
        with torch.no_grad():  # a training step later: uploaded again
            for p in new.parameters():
                p.mul_(1.5)
        assert_same(sync(new, env.ids, env.mask), LocalRollout(MAX_NEW, 0.0, eos_token_id=EOS)(new, env.ids, env.mask))
        assert sync.uploads == 2
        with torch.no_grad():
            new.model.norm.weight[0] = float("nan")
        with pytest.raises(ValueError, match="non-finite"):  # a diverged policy is never served
            sync(new, env.ids, env.mask)
    finally:
        sync(env.served, env.ids[:1], env.mask[:1])  # back to the module's weights
    assert_same(remote(env, 0.0)(env.served, env.ids, env.mask),
                LocalRollout(MAX_NEW, 0.0, eos_token_id=EOS)(env.served, env.ids, env.mask))


def test_connection_and_key_errors_name_the_url_and_status(env):
    bad = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RuntimeError, match=f"cannot reach the rollout server at {bad}"):
        OpenAIRollout(bad, env.tok, 4)(env.served, env.ids, env.mask)
    with pytest.raises(RuntimeError, match="401") as e:
        OpenAIRollout(env.url, env.tok, 4, api_key="wrong", weights_dir=env.wdir)(env.served, env.ids, env.mask)
    assert f"{env.url}/load_weights" in str(e.value) and "API key" in str(e.value)
    with pytest.raises(RuntimeError, match="401"):
        OpenAIRollout(env.url, env.tok, 4, api_key="wrong")(env.served, env.ids, env.mask)
    with pytest.raises(ValueError, match="api_key"):
        OpenAIRollout(env.url, env.tok, 4, weights_dir=env.wdir)


def test_prompts_that_do_not_round_trip_are_refused(env):
    rollout = OpenAIRollout("http://127.0.0.1:9/v1", env.tok, 4)  # never reached: refused before any request
    with pytest.raises(ValueError, match="prompt 1 is not a chat"):
        rollout(env.served, [env.prompts[0], env.prompts[1][:-3]])
    with pytest.raises(ValueError, match="prompt 0 is not a chat"):
        rollout(env.served, [env.tok.encode("Alice likes apples", add_special_tokens=False)])
    # a chat tokenized in pieces: the same text, other ids
    text = env.tok.decode(env.prompts[1])

    def in_pieces(cut):
        return env.tok.encode(text[:cut], add_special_tokens=False) + env.tok.encode(text[cut:], add_special_tokens=False)

    pieces = next(ids for cut in range(1, len(text)) if (ids := in_pieces(cut)) != env.prompts[1])
    assert env.tok.decode(pieces) == text
    with pytest.raises(ValueError, match="other token ids"):
        rollout(env.served, [pieces])
    assert parse_chat(text) == CHATS[1]


class Fake(BaseHTTPRequestHandler):
    reply: dict = {}

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        body = json.dumps(self.reply).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("reply, error, words", [
    ({"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}, RuntimeError, "return_tokens_as_token_ids"),
    ({"choices": [{"logprobs": {"content": [{"token": "hi", "logprob": -1.0}]}}]}, RuntimeError, "token_id:<id>"),
    ({"choices": [{"logprobs": {"content": [{"token": "token_id:2", "logprob": -1.0}]}}],
      "usage": {"prompt_tokens": 3}}, ValueError, "chat template or tokenizer differs"),
    ({"error": "boom"}, RuntimeError, "without choices"),
])
def test_replies_a_rollout_cannot_use(env, reply, error, words):
    handler = type("Handler", (Fake,), {"reply": reply})  # GET /models: 501 from the base class, so no model name
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(error, match=words):
            OpenAIRollout(f"http://127.0.0.1:{server.server_port}/v1", env.tok, 4)(env.served, env.prompts[:1])
    finally:
        server.shutdown()
        server.server_close()
