"""An OpenAI-compatible chat server for a MiniMind model: POST /v1/chat/completions (streamed or not),
GET /v1/models, GET /health, and POST /v1/load_weights when --weights_dir is set. Any OpenAI client talks to it
(scripts/chat_openai_api.py is one).

    python scripts/serve_openai_api.py --weight full_sft                  # out/full_sft_512.pth on 127.0.0.1:8998
    python scripts/serve_openai_api.py --load_from out/hf --api_key secret --host 0.0.0.0
    curl -N 127.0.0.1:8998/v1/chat/completions -H 'Content-Type: application/json' \\
         -d '{"messages": [{"role": "user", "content": "你好"}], "stream": true}'

max_tokens (or max_completion_tokens; default --max_new_tokens) is clamped to the room the prompt leaves in the
context (--max_seq_len); a reply cut there ends with finish_reason "length". A prompt that leaves no room at all is
rejected (400, code context_length_exceeded). --temperature, --top_p etc. are the defaults when a request omits them.
`seed` makes a sampled reply reproducible; `n` must be 1.

For RL rollouts: `logprobs: true` (+ `top_logprobs` 0..20) gives every choice OpenAI's
{"logprobs": {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}}, one
entry per generated token, the final <|im_end|> included when the model ended its turn (so there is one entry more
than usage.completion_tokens then). A logprob is the log-softmax, in float32, of the model's raw logits at that step:
before repetition penalty, temperature, top-k and top-p (as vLLM by default), i.e. the log p(token) of a training
forward; -9999.0 stands for -inf. `bytes` are the token's own bytes (a character split over tokens has its bytes
split too; `token` then shows the partial bytes as \\xNN). Streamed, each chunk carries the entries of the tokens
completed since the previous chunk (the <|im_end|> one comes with the last chunk). vLLM's
`return_tokens_as_token_ids: true` writes every `token` as "token_id:<id>". Logprobs never change what is sampled.

Tools and thinking, as OpenAI's Chat Completions API defines them: `tools` ([{"type": "function", "function":
{"name", "description", "parameters"}}]), `tool_choice` ("auto", "none", "required" or {"type": "function",
"function": {"name"}}), assistant messages with `tool_calls` (arguments as a JSON string) and `reasoning_content`,
and "tool" messages (`tool_call_id`, `content`) answering them; needs a tokenizer with the tool tokens (400
otherwise). A reply then comes back read: its leading <think> block as `message.reasoning_content`, its
<tool_call> blocks as `message.tool_calls` (finish_reason "tool_calls"; content null when nothing else was written),
the rest, stripped, as `content`; a reply whose tool-call JSON is malformed comes back whole as content
(toolcall/parse.py). Streamed: `delta.reasoning_content` and `delta.content` as the text comes, each tool call as a
delta with its id and name, then its arguments. Thinking is switched by vLLM's `chat_template_kwargs:
{"enable_thinking": bool}` or upstream MiniMind's `open_thinking: bool` (true opens a <think> block in the prompt,
false writes an empty one). tool_choice "none" leaves the tools out of the prompt; "required" and a named function
are accepted but NOT enforced (no constrained decoding): the reply is what the model wrote. A request with none of
these fields gets its reply's text as it is, unread, as before.

--weights_dir DIR (needs --api_key) turns on POST /v1/load_weights {"path": "name.pth"}: a native state dict inside
DIR replaces the served weights between two replies (a reply in progress finishes on the old ones). Answers
{"loaded": path, "tensors": n}; a path outside DIR, a file that is not a checkpoint, shapes that do not fit and NaN/inf
values get a 400 and leave the served weights as they were. Native weights only (not --load_from, not --quantize).

Hostile input gets a 4xx, never a 5xx: malformed or too deeply nested JSON, lone surrogates in any string (400, with
`param` naming the field), bodies over --max_body_bytes (413) or slower than --body_timeout (408). A 500 means a bug
in the server; a failure after a stream began ends it with an event {"error": {...}} and then [DONE]. With --api_key
set, the interactive docs (/docs, /redoc, /openapi.json) are not served.

Replies are generated one at a time, in arrival order, on one worker thread: the event loop stays free, so /health
answers and new requests queue while a long reply is being written.
"""
import argparse
import asyncio
import hmac
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import APIRouter, Depends, FastAPI, Request  # noqa: E402
from fastapi.responses import StreamingResponse  # noqa: E402
from jinja2 import TemplateError  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402

from dataset.tool_messages import require_tool_tokens  # noqa: E402
from model.args import add_sampling_args, add_source_args  # noqa: E402
from model.device import pick_device  # noqa: E402
from model.loading import ModelSource, load_model  # noqa: E402
from model.streaming import TextStream  # noqa: E402
from model.weights import load_into, load_state_dict, nonfinite_tensors  # noqa: E402
# the requests and their checks: scripts/openai_request.py; tools and thinking in and out: scripts/openai_tools.py
from scripts.openai_request import (APIError, ChatRequest, LoadWeightsRequest, parse_json,  # noqa: E402
                                    parse_request, read_body)
from scripts.openai_tools import THINK, ReplyReader, template_kwargs, template_messages  # noqa: E402

log = logging.getLogger("uvicorn.error")  # where uvicorn logs its own errors


def byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, char → byte: printable bytes stand for themselves, the others for chr(256 +
    n)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = keep + [256 + i for i in range(256 - len(keep))]
    return {chr(c): b for c, b in zip(chars, keep + [b for b in range(256) if b not in keep])}


class TokenLogprobs:
    """stream_generate's on_step for one reply with logprobs: records OpenAI's entry for every token generated (one
    row), collected by take(). Runs on the worker thread, so it may sync with the device."""
    ALPHABET = byte_level_alphabet()

    def __init__(self, tokenizer, top: int, as_ids: bool, cache: dict):
        self.tokenizer, self.top, self.as_ids, self.cache = tokenizer, top, as_ids, cache
        self.pending: list[dict] = []

    def token_bytes(self, token_id: int) -> bytes:
        """The token's own bytes: from its byte-level spelling (a lone byte of a split character included), or, for a
        tokenizer of another kind, the UTF-8 of its decoded text."""
        if (b := self.cache.get(token_id)) is None:
            text = self.tokenizer.decode([token_id])
            spelled = self.tokenizer.convert_ids_to_tokens(token_id)
            b = text.encode("utf-8")
            if isinstance(spelled, str) and spelled and all(c in self.ALPHABET for c in spelled):
                raw = bytes(self.ALPHABET[c] for c in spelled)
                if raw.decode("utf-8", "replace") == text:  # it is a byte-level spelling (not "<0xE5>" or such)
                    b = raw
            self.cache[token_id] = b
        return b

    def entry(self, token_id: int, logprob: float) -> dict:
        b = self.token_bytes(token_id)
        token = f"token_id:{token_id}" if self.as_ids else b.decode("utf-8", "backslashreplace")
        return {"token": token, "logprob": logprob if logprob > -9999.0 else -9999.0, "bytes": list(b)}  # NaN too

    def __call__(self, logits: torch.Tensor, token: torch.Tensor):
        logprobs = logits[0].float().log_softmax(-1)
        token_id = int(token[0])
        entry = self.entry(token_id, logprobs[token_id].item())
        top = logprobs.topk(min(self.top, logprobs.numel())) if self.top else None
        entry["top_logprobs"] = [self.entry(i, v) for v, i in zip(top.values.tolist(), top.indices.tolist())] \
            if top is not None else []
        self.pending.append(entry)

    def take(self) -> list[dict]:
        taken, self.pending = self.pending, []
        return taken


class Engine:
    """The model behind a one-thread executor: replies are generated one at a time, in arrival order (the model is not
    thread-safe, and replies side by side would only split the same cores), and off the event loop."""

    def __init__(self, model, tokenizer, device, max_seq_len: int):
        self.model, self.tokenizer, self.device, self.max_seq_len = model, tokenizer, device, max_seq_len
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self.queued = 0  # requests waiting or generating, for /health
        self.tokens_generated = 0  # since start, for /health (written by the worker thread only)
        self.token_bytes: dict[int, bytes] = {}  # TokenLogprobs' cache (filled by the worker thread only)
        self.has_tool_tokens: bool | None = None  # looked up at the first request with tools
        self.no_tool_tokens = ""  # why not, when not

    def prompt_text(self, messages: list[dict], **template_kwargs) -> str:
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                      **template_kwargs)
        except TemplateError as e:  # e.g. a tokenizer whose template knows no tool role
            raise APIError(400, f"messages: the tokenizer's chat template cannot write this chat ({e})", "messages")

    def check_tool_tokens(self, param: str):
        if self.has_tool_tokens is None:
            try:
                require_tool_tokens(self.tokenizer, "tools")
                self.has_tool_tokens, self.no_tool_tokens = True, ""
            except ValueError as e:
                self.has_tool_tokens, self.no_tool_tokens = False, str(e)
        if not self.has_tool_tokens:
            raise APIError(400, f"{param}: this server cannot take tools: {self.no_tool_tokens}", param)

    def logprobs(self, req: ChatRequest) -> TokenLogprobs | None:
        return TokenLogprobs(self.tokenizer, req.top_logprobs or 0, bool(req.return_tokens_as_token_ids),
                             self.token_bytes) if req.logprobs else None

    async def run(self, stream: TextStream, seed: int | None, request: Request, logprobs: TokenLogprobs | None = None):
        """Generate `stream` on the worker thread, yielding (text piece, logprobs entries of the tokens it completes;
        None without `logprobs`) here as they come; a last ("", entries) holds any left (<|im_end|>'s). Stops at the
        next token when the client goes away: the worker sees `stop` (set in `finally` however this generator ends)."""
        loop = asyncio.get_running_loop()
        queue, stop = asyncio.Queue(), threading.Event()

        def work():
            try:
                if stop.is_set():  # the client left while waiting its turn
                    return
                if seed is not None:
                    torch.manual_seed(seed)  # safe: only this thread samples
                for piece in stream:
                    if stop.is_set():
                        break
                    if piece:
                        loop.call_soon_threadsafe(queue.put_nowait, (piece, logprobs and logprobs.take()))
                if logprobs and (rest := logprobs.take()):
                    loop.call_soon_threadsafe(queue.put_nowait, ("", rest))
            finally:
                self.tokens_generated += stream.n_tokens
                loop.call_soon_threadsafe(queue.put_nowait, None)

        self.queued += 1
        future = loop.run_in_executor(self.pool, work)
        future.add_done_callback(self._finished)
        try:
            while (piece := await queue.get()) is not None:
                if await request.is_disconnected():
                    return
                yield piece
            await future  # re-raises an error from the worker
        finally:
            stop.set()

    def _finished(self, _future):  # runs on the event loop, like the += above, so no race
        self.queued -= 1

    async def load_weights(self, path: str, name: str) -> int:
        """Replace the model's weights with the native state dict at `path` (named `name` in errors): read and checked
        off the worker thread, copied in on it, between two replies. Any error is a ValueError, and then the model
        is untouched (load_into checks every name and shape before it copies anything)."""
        def read():
            try:
                state = load_state_dict(path)
            except (OSError, ValueError) as e:
                raise ValueError(str(e).replace(path, name)) from None
            if odd := [k for k, v in state.items() if not v.is_floating_point()]:
                raise ValueError(f"{name}: {len(odd)} tensors are not real floating point ({', '.join(odd[:3])})")
            if bad := nonfinite_tensors(state):
                raise ValueError(f"{name}: non-finite values (NaN or inf) in {len(bad)} tensors ({', '.join(bad[:3])})")
            return state

        state = await asyncio.to_thread(read)
        await asyncio.get_running_loop().run_in_executor(self.pool, lambda: load_into(self.model, state, name))
        return len(state)


def resolve_weights_path(root: str, path: str) -> str:
    """The real path of `path` inside the folder `root`, or a 400 naming `path`: no absolute paths, no '..', nothing
    that a symlink takes outside root, only existing .pth files."""
    def bad(why):
        return APIError(400, f"path: {why}", "path")

    if "\0" in path or os.path.isabs(path):
        raise bad("must be a path relative to --weights_dir")
    if ".." in re.split(r"[/\\]", path):
        raise bad("must not contain '..'")
    if not path.endswith(".pth"):
        raise bad("must name a native .pth state dict")
    root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, path))
    if os.path.commonpath([root, real]) != root:
        raise bad("leads outside --weights_dir (through a symlink)")
    if not os.path.isfile(real):
        raise bad(f"no file {path!r} in --weights_dir")
    return real


def create_app(engine: Engine, args, model_name: str) -> FastAPI:
    weights_dir = getattr(args, "weights_dir", None)
    if weights_dir and not args.api_key:
        raise ValueError("--weights_dir needs --api_key: loading weights must never be open to anyone")
    docs = {} if not args.api_key else dict(docs_url=None, redoc_url=None, openapi_url=None)  # no keyless way in
    app = FastAPI(title="MiniMind OpenAI-compatible API", **docs)

    async def check_key(request: Request):
        if args.api_key and not hmac.compare_digest(request.headers.get("authorization", "").encode(),
                                                    f"Bearer {args.api_key}".encode()):
            raise APIError(401, "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                           code="invalid_api_key")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_key)])

    @app.exception_handler(APIError)
    async def api_error(_request, e: APIError):
        # a 408 leaves the rest of the body unread on the connection: close it rather than read that as a request
        return e.response({"connection": "close"} if e.status == 408 else None)

    @app.exception_handler(HTTPException)  # 404, 405: the same error shape as everything else
    async def http_error(request: Request, e: HTTPException):
        # scope["path"], not request.url: building the URL parses the Host header, which a client may have mangled
        return APIError(e.status_code, f"{e.detail}: {request.method} {request.scope['path']}").response()

    @app.exception_handler(Exception)  # a bug here: still a 500 (and a traceback in the log), in the same shape
    async def server_error(_request, e: Exception):
        return APIError(500, f"internal server error ({type(e).__name__})").response()

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, "queued": engine.queued,
                "tokens_generated": engine.tokens_generated}

    @v1.get("/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "minimind"}]}

    @v1.post("/chat/completions")
    async def chat(request: Request):
        req = parse_request(await read_body(request, args.max_body_bytes, args.body_timeout))
        if req.uses_tools():
            engine.check_tool_tokens("tools" if req.tools else "messages")
        prompt = engine.prompt_text(template_messages(req.messages), **template_kwargs(req))
        ids = engine.tokenizer.encode(prompt, add_special_tokens=False)
        # None: the reply's text goes out as it is (a request that speaks of neither tools nor thinking)
        reader = ReplyReader(req.read_tool_calls(), prompt.endswith(THINK + "\n")) if req.read_reply() else None
        room = engine.max_seq_len - len(ids)
        if room < 1:
            raise APIError(400, f"messages: the prompt is {len(ids)} tokens and the context holds "
                                f"{engine.max_seq_len} (--max_seq_len): no room for a reply; send fewer or shorter "
                                f"messages", "messages", "context_length_exceeded")
        logprobs = engine.logprobs(req)
        stream = TextStream(engine.model, engine.tokenizer, torch.tensor([ids], device=engine.device),
                            max_new_tokens=min(req.max_completion_tokens or req.max_tokens or args.max_new_tokens,
                                               room),
                            temperature=args.temperature if req.temperature is None else req.temperature,
                            top_p=args.top_p if req.top_p is None else req.top_p,
                            top_k=args.top_k, repetition_penalty=args.repetition_penalty,
                            **({"on_step": logprobs} if logprobs else {}))
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model_name}

        def usage():
            return {"prompt_tokens": len(ids), "completion_tokens": stream.n_tokens,
                    "total_tokens": len(ids) + stream.n_tokens}

        def logprobs_field(entries: list | None) -> dict:  # only when asked for: a reply without is as before
            return {"logprobs": {"content": entries} if entries is not None else None} if logprobs else {}

        def finish_reason(message: dict) -> str:
            return "tool_calls" if message.get("tool_calls") else stream.finish_reason

        if not req.stream:
            pieces, entries = [], []
            async for piece, more in engine.run(stream, req.seed, request, logprobs):
                pieces.append(piece)
                entries += more or []
            if reader is None:
                message = {"role": "assistant", "content": "".join(pieces)}
            else:
                reader.text += "".join(pieces)
                message, _ = reader.finish()
            return {**head, "object": "chat.completion", "usage": usage(),
                    "choices": [{"index": 0, "message": message, **logprobs_field(entries),
                                 "finish_reason": finish_reason(message)}]}

        def event(**fields):
            return f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', **fields}, ensure_ascii=False)}\n\n"

        def chunk(delta, finish_reason=None, entries=None):
            return event(choices=[{"index": 0, "delta": delta, **logprobs_field(entries),
                                   "finish_reason": finish_reason}])

        async def events():
            yield chunk({"role": "assistant", "content": ""})
            rest = []  # entries that came with no text (<|im_end|>'s): they go with the finish chunk
            message = {}
            try:
                async for piece, entries in engine.run(stream, req.seed, request, logprobs):
                    if reader is None:
                        if piece:
                            yield chunk({"content": piece}, entries=entries)
                        else:
                            rest += entries or []
                        continue
                    # read: text held back (a tag not yet complete) keeps its tokens' entries for the next chunk
                    rest += entries or []
                    for delta in reader.feed(piece):
                        yield chunk(delta, entries=rest or None)
                        rest = []
                if reader is not None:
                    message, deltas = reader.finish()
                    for delta in deltas:
                        yield chunk(delta, entries=rest or None)
                        rest = []
            except Exception as e:  # the 200 is sent: say so in the stream, and still end it the way clients expect
                log.exception("generation failed after the stream began")
                yield f"data: {json.dumps(APIError(500, f'generation failed ({type(e).__name__})').body())}\n\n"
                yield "data: [DONE]\n\n"
                return
            yield chunk({}, finish_reason(message), rest or None)
            if req.stream_options and req.stream_options.include_usage:
                yield event(choices=[], usage=usage())
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @v1.post("/load_weights")
    async def load_weights(request: Request):
        if not weights_dir:
            raise APIError(404, "loading weights is off: start the server with --weights_dir DIR (and --api_key)")
        load_from, quantize = getattr(args, "load_from", None), getattr(args, "quantize", "none")
        if load_from or quantize != "none":
            served = f"--load_from {load_from}" if load_from else f"--quantize {quantize}"
            raise APIError(400, f"loading weights works on native MiniMind weights (--weight) only; this server runs "
                                f"{served}: restart it on the new weights instead")
        req = parse_json(await read_body(request, args.max_body_bytes, args.body_timeout), LoadWeightsRequest)
        real = resolve_weights_path(weights_dir, req.path)
        try:
            n = await engine.load_weights(real, req.path)
        except ValueError as e:
            raise APIError(400, f"path: {e}", "path", "invalid_weights")
        log.info("loaded weights from %s (%d tensors)", real, n)
        return {"loaded": req.path, "tensors": n}

    app.include_router(v1)
    return app


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    add_sampling_args(p)  # the defaults for requests that omit them
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="0.0.0.0 exposes the model to the network: set --api_key")
    g.add_argument("--port", type=int, default=8998)
    g.add_argument("--api_key", default=None, help="when set, /v1/* needs 'Authorization: Bearer <key>'")
    g.add_argument("--max_body_bytes", type=int, default=1 << 20, help="larger request bodies get 413")
    g.add_argument("--body_timeout", type=float, default=30,
                   help="seconds for a request body to arrive in full; slower ones (or a Content-Length longer than "
                        "the body) get 408")
    g.add_argument("--max_seq_len", type=int, default=None,
                   help="context size, prompt + reply (default: the model's max_position_embeddings)")
    g.add_argument("--weights_dir", default=None,
                   help="enables POST /v1/load_weights {\"path\": \"x.pth\"}: swap in a native state dict from this "
                        "folder (needs --api_key; default: off, 404)")
    args = p.parse_args()
    if args.weights_dir and not args.api_key:
        raise SystemExit("error: --weights_dir needs --api_key: loading weights must never be open to anyone")
    if args.weights_dir and not os.path.isdir(args.weights_dir):
        raise SystemExit(f"error: --weights_dir {args.weights_dir} is not a folder")
    device = pick_device(args.device, allow_mps=False)
    try:
        model, tokenizer, _ = load_model(ModelSource.from_args(args), device)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        print(f"warning: serving on {args.host} without --api_key: anyone who can reach it can use it", file=sys.stderr)
    name = os.path.basename(os.path.normpath(args.load_from)) if args.load_from else f"minimind-{args.weight}"
    engine = Engine(model, tokenizer, device, args.max_seq_len or model.config.max_position_embeddings)
    uvicorn.run(create_app(engine, args, name), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
