"""Rollouts sampled by an OpenAI-compatible server (scripts/serve_openai_api.py, vLLM), shaped like LocalRollout's.

    rollout = OpenAIRollout("http://127.0.0.1:8998/v1", tokenizer, max_new_tokens=256, api_key="KEY",
                            weights_dir="/tmp/policy")(model, prompt_ids, prompt_mask, num_generations=8)

With our server (CPU or GPU; the one reload path that is tested):

    python scripts/serve_openai_api.py --weight full_sft --weights_dir /tmp/policy --api_key KEY --port 8998
    python train_grpo.py --rollout_backend openai --rollout_url http://127.0.0.1:8998/v1 --rollout_api_key KEY \\
        --rollout_weights_dir /tmp/policy ...

The server needs the same size flags and tokenizer as the trainer. Before every rollout batch the policy's state dict
(its own dtype, on CPU) is written atomically to {weights_dir}/policy.pth and the server is told to load it
(POST {url}/load_weights {"path": "policy.pth"}, the key as a Bearer token); the server swaps weights between two
replies. The upload happens on every call: these are small models, and "did the weights change" has no cheap answer
that is also safe (a hash of a few tensors is not). The folder must be one the server reads as its --weights_dir.
Without weights_dir nothing is uploaded: the server samples from whatever it serves (an off-policy sampler; fine for
a frozen-sampler experiment, wrong for on-policy RL).

With vLLM (GPU): export to a Hugging Face folder (`python export_model.py ...`), `vllm serve <hf folder> --port 8000`,
and pass --rollout_url http://127.0.0.1:8000/v1 (--api-key on both sides if vLLM has one). Requests carry vLLM's
`return_tokens_as_token_ids: true`. vLLM cannot load our native .pth, so do not pass weights_dir for it: syncing
the policy then goes through exporting the HF folder again and vLLM's own reload mechanism (or restarting it). Only
our server is tested here; the vLLM path follows its documented request fields and is not exercised by the tests.

Prompts arrive as token ids, a server takes chat messages. Each prompt is decoded (padding stripped), parsed back
into ChatML messages (<|im_start|>role\\n ... <|im_end|>\\n, then the generation prompt <|im_start|>assistant\\n),
and rendered again with the tokenizer's chat template exactly as the server does it; a prompt whose re-rendering
is not the same ids is refused (ValueError) rather than sampled for a different prompt than the one trained on.
When the reply reports usage.prompt_tokens, that count is checked too (a server whose chat template differs).

Each sample is one request (n = 1) with its own `seed`, drawn from torch's global RNG, so a run is reproducible under
torch.manual_seed and a resume that restores the RNG resumes the same sampling stream (given the same server and
weights). Requests go out `concurrency` at a time from a thread pool (our server answers them one at a time anyway;
vLLM batches them).

logps: a server's `logprobs` are log-softmax of the RAW logits (before temperature and top-p). At temperature 1 (and
0, greedy, where LocalRollout also reports the raw log-probs) they are the sampling distribution's and are used as
they are. At any other temperature the sampled token's raw log-prob alone cannot be turned into log softmax(z / T)
(that needs the whole logit vector), so logps are then recomputed here by one no-grad forward of the local model.
Rollout.logps is a diagnostic either way: the trainer recomputes the old log-probs itself.
"""
import http.client
import json
import os
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import torch

from model.weights import atomic_save
from trainer.rollout import Rollout, completion_logps, left_pad_ids

WEIGHTS_FILE = "policy.pth"
GENERATION_PROMPT = "<|im_start|>assistant\n"
TURN = re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)<\|im_end\|>\n", re.S)
CHAT = re.compile(r"((?:<\|im_start\|>(?:system|user|assistant)\n.*?<\|im_end\|>\n)*)" + re.escape(GENERATION_PROMPT),
                  re.S)
NEEDS = ("the server must support `logprobs: true` and `return_tokens_as_token_ids: true` (vLLM and "
         "scripts/serve_openai_api.py do)")


def parse_chat(text: str) -> list[dict] | None:
    """ChatML text ending in the generation prompt → its messages, or None when it is not that shape."""
    m = CHAT.fullmatch(text)
    if m is None:
        return None
    return [{"role": role, "content": content} for role, content in TURN.findall(m.group(1))]


def render_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The prompt ids a server builds from `messages` (scripts/serve_openai_api.py's Engine.prompt_ids)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer.encode(text, add_special_tokens=False)


def error_message(body: bytes) -> str:
    """The message of an OpenAI error body ({"error": {"message"}}, or FastAPI's {"detail"}), else the raw text."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body[:500].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(obj, dict):
        err = obj.get("error", obj.get("detail", obj.get("message")))
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
        if err is not None:
            return str(err)
    return json.dumps(obj)[:500]


class ServerError(RuntimeError):
    """The rollout server answered with an HTTP error (status), or could not be reached / answered badly (None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def policy_state(model) -> dict:
    """The model's state dict on CPU in its own dtype, wrapper prefixes stripped; a tied lm_head is left out (the
    server's loader ties it back to the embedding) so it is not written twice."""
    model = getattr(model, "module", model)  # DDP
    model = getattr(model, "_orig_mod", model)  # torch.compile
    raw = model.state_dict()
    state = {k.removeprefix("_orig_mod.").removeprefix("module."): v.detach() for k, v in raw.items()}
    head, embed = state.get("lm_head.weight"), state.get("model.embed_tokens.weight")
    if head is not None and embed is not None and head.data_ptr() == embed.data_ptr():
        del state["lm_head.weight"]
    return {k: v.cpu() for k, v in state.items()}


class OpenAIRollout:
    """Samples completions from an OpenAI-compatible server; called like LocalRollout, returns a Rollout.

    url: the server's base (http://host:port/v1). temperature 0 is greedy. api_key: sent as a Bearer token with every
    request. weights_dir: the server's --weights_dir (needs api_key); the policy is uploaded there before each call.
    timeout: seconds a request may wait for its reply (time queued behind other replies included). concurrency:
    requests in flight. model_name: the `model` field (default: the first of GET /models, none if there is no such
    route). Errors: ServerError (a RuntimeError) for anything the server did or did not answer; ValueError for
    prompts it cannot be sent faithfully."""

    def __init__(self, url: str, tokenizer, max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                 api_key: str | None = None, weights_dir: str | None = None, timeout: float = 600,
                 concurrency: int = 8, model_name: str | None = None):
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError(f"rollout url must be http(s)://host:port/v1, got {url!r}")
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if temperature < 0:
            raise ValueError("temperature must be >= 0 (0: greedy)")
        if not 0 < top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if weights_dir and not api_key:
            raise ValueError("weights_dir needs api_key: the server loads weights only for requests with its key")
        self.url, self.tokenizer, self.max_new_tokens = url.rstrip("/"), tokenizer, max_new_tokens
        self.temperature, self.top_p, self.api_key, self.weights_dir = temperature, top_p, api_key, weights_dir
        self.timeout, self.concurrency, self.model_name = timeout, concurrency, model_name
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.uploads = 0  # weight uploads so far

    # ------------------------------------------------------------------ HTTP

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One JSON request to {url}{path}; every failure is a ServerError (a RuntimeError) naming the URL, and the
        HTTP status and the server's message when it answered."""
        url = self.url + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                payload = r.read()
        except urllib.error.HTTPError as e:
            try:
                text = error_message(e.read())
            except (OSError, http.client.HTTPException):
                text = e.reason
            raise ServerError(f"{method} {url}: HTTP {e.code}: {text}", e.code) from None
        except urllib.error.URLError as e:
            raise ServerError(f"cannot reach the rollout server at {url}: {e.reason} (is it running? the URL is its "
                               f"base, e.g. http://127.0.0.1:8998/v1)") from None
        except (OSError, http.client.HTTPException) as e:  # timeouts, resets, a truncated reply
            raise ServerError(f"{method} {url}: {type(e).__name__}: {e or 'no reply'} (timeout {self.timeout:g}s)") \
                from None
        try:
            return json.loads(payload)
        except ValueError:
            raise ServerError(f"{method} {url}: the reply is not JSON: {payload[:200]!r}") from None

    def served_model(self) -> str | None:
        """The model name to send: model_name, else the first of GET {url}/models (vLLM wants one), else None.
        Asked once; a server that cannot be reached is an error here already."""
        if self.model_name is None:
            try:
                self.model_name = str(self.request("GET", "/models")["data"][0]["id"])
            except ServerError as e:
                if e.status not in (404, 405, 501):  # unreachable, a wrong key, ...: say so now
                    raise
                self.model_name = ""  # a server without /models: send no name
            except (LookupError, TypeError):
                self.model_name = ""
        return self.model_name or None

    # ------------------------------------------------------------------ weights

    def sync_weights(self, model):
        """Write the policy to {weights_dir}/policy.pth (atomically; refuses NaN/inf) and have the server load it."""
        atomic_save(policy_state(model), os.path.join(self.weights_dir, WEIGHTS_FILE))
        try:
            reply = self.request("POST", "/load_weights", {"path": WEIGHTS_FILE})
        except ServerError as e:
            raise ServerError(f"the rollout server did not load the policy weights: {e}", e.status) from None
        if not isinstance(reply, dict) or reply.get("loaded") != WEIGHTS_FILE:
            raise ServerError(f"POST {self.url}/load_weights: unexpected reply {reply!r}")
        self.uploads += 1

    # ------------------------------------------------------------------ prompts

    def prompt_messages(self, row: int, ids: list[int]) -> list[dict]:
        """The chat messages the server renders into exactly `ids`; ValueError if there are none."""
        text = self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        messages = parse_chat(text)
        if messages is None:
            raise ValueError(f"prompt {row} is not a chat rendered with the chat template and its generation prompt "
                             f"(<|im_start|>role\\n...<|im_end|>\\n ... {GENERATION_PROMPT!r}): a chat server takes "
                             f"messages, so OpenAIRollout can only send prompts it can turn back into messages. "
                             f"Decoded: {text[:300]!r}")
        if render_ids(self.tokenizer, messages) != ids:
            raise ValueError(f"prompt {row}: its messages render to other token ids than the prompt's (a prompt not "
                             f"tokenized as the chat template renders it, e.g. truncated or tokenized in pieces); the "
                             f"server would sample for a different prompt. Decoded: {text[:300]!r}")
        return messages

    # ------------------------------------------------------------------ sampling

    def complete(self, messages: list[dict], seed: int, n_prompt: int) -> tuple[list[int], list[float]]:
        """One sample: (token ids, raw-logit log-probs), the EOS included when the reply ended its turn."""
        body = {"messages": messages, "max_tokens": self.max_new_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "seed": seed, "n": 1, "stream": False, "logprobs": True,
                "return_tokens_as_token_ids": True}
        if self.model_name:
            body["model"] = self.model_name
        reply = self.request("POST", "/chat/completions", body)
        if not isinstance(reply, dict):
            raise ServerError(f"POST {self.url}/chat/completions: unexpected reply {json.dumps(reply)[:300]}")
        where = f"POST {self.url}/chat/completions"
        try:
            choice = reply["choices"][0]
        except (LookupError, TypeError):
            raise ServerError(f"{where}: a reply without choices: {json.dumps(reply)[:300]}") from None
        content = (choice.get("logprobs") or {}).get("content") if isinstance(choice, dict) else None
        if not content:
            raise ServerError(f"{where}: the reply has no per-token logprobs; {NEEDS}")
        ids, logps = [], []
        for entry in content:
            token = entry.get("token") if isinstance(entry, dict) else None
            if not isinstance(token, str) or not token.startswith("token_id:"):
                raise ServerError(f"{where}: a logprobs token {token!r} is not 'token_id:<id>'; {NEEDS}")
            ids.append(int(token.removeprefix("token_id:")))
            logps.append(float(entry["logprob"]))
        usage = reply.get("usage") or {}
        if isinstance(usage.get("prompt_tokens"), int) and usage["prompt_tokens"] != n_prompt:
            raise ValueError(f"{where}: the server's prompt is {usage['prompt_tokens']} tokens, ours {n_prompt}: its "
                             f"chat template or tokenizer differs from the trainer's (serve the same tokenizer)")
        if len(ids) > self.max_new_tokens + 1:
            raise ServerError(f"{where}: {len(ids)} tokens back for max_tokens {self.max_new_tokens}")
        return ids, logps

    def complete_all(self, jobs: list[tuple]) -> list[tuple[list[int], list[float]]]:
        """complete() for every job, `concurrency` at a time, results in job order; the first error cancels the
        requests not yet sent and is raised."""
        if self.concurrency == 1 or len(jobs) == 1:
            return [self.complete(*job) for job in jobs]
        pool = ThreadPoolExecutor(min(self.concurrency, len(jobs)), thread_name_prefix="rollout")
        try:
            futures = [pool.submit(self.complete, *job) for job in jobs]
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def __call__(self, model, prompt_ids, prompt_mask=None, num_generations: int = 1) -> Rollout:
        """prompt_ids: [B, P] left-padded tensor (with prompt_mask) or a list of id lists. Rows g·G … g·G+G−1 of the
        Rollout are prompt g's samples; its tensors are on the model's device."""
        if num_generations < 1:
            raise ValueError("num_generations must be >= 1")
        if isinstance(prompt_ids, list):
            prompt_ids, prompt_mask = left_pad_ids(prompt_ids, self.pad_token_id)
        if prompt_mask is None:
            prompt_mask = torch.ones_like(prompt_ids)
        device = next(model.parameters()).device
        prompts = [ids[m.bool()].tolist() for ids, m in zip(prompt_ids.cpu(), prompt_mask.cpu())]
        messages = [self.prompt_messages(row, ids) for row, ids in enumerate(prompts)]
        # the seeds first, whatever happens below: the RNG moves the same way with or without errors or uploads
        seeds = torch.randint(0, 2**31 - 1, (len(prompts) * num_generations,)).tolist()
        if self.weights_dir:
            self.sync_weights(model)
        self.served_model()  # before the threads: asked once
        jobs = [(messages[i // num_generations], seed, len(prompts[i // num_generations]))
                for i, seed in enumerate(seeds)]
        replies = self.complete_all(jobs)

        n, width = len(replies), max(len(ids) for ids, _ in replies)
        completion_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        completion_mask = torch.zeros((n, width), dtype=torch.long)
        logps = torch.zeros((n, width), dtype=torch.float32)
        for row, (ids, lp) in enumerate(replies):
            completion_ids[row, :len(ids)] = torch.tensor(ids)
            completion_mask[row, :len(ids)] = 1
            logps[row, :len(ids)] = torch.tensor(lp)
        finished = torch.tensor([ids[-1] == self.eos_token_id for ids, _ in replies])
        rollout = Rollout(prompt_ids.repeat_interleave(num_generations, 0).to(device),
                          prompt_mask.repeat_interleave(num_generations, 0).to(device), completion_ids.to(device),
                          completion_mask.to(device), logps.to(device), finished.to(device))
        if self.temperature not in (0.0, 1.0):  # the server's are raw-logit log-probs: recompute at T here
            rollout.logps = self.local_logps(model, rollout)
        return rollout

    @torch.no_grad()
    def local_logps(self, model, rollout: Rollout) -> torch.Tensor:
        was_training = model.training
        model.eval()
        try:
            logps = completion_logps(model, rollout, temperature=self.temperature).float()
        finally:
            model.train(was_training)
        return logps.masked_fill(rollout.completion_mask == 0, 0.0)
