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
from typing import Literal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import APIRouter, Depends, FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse, StreamingResponse  # noqa: E402
from pydantic import BaseModel, Field, ValidationError, field_validator  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402
from starlette.requests import ClientDisconnect  # noqa: E402

from model.args import add_sampling_args, add_source_args  # noqa: E402
from model.device import pick_device  # noqa: E402
from model.loading import ModelSource, load_model  # noqa: E402
from model.streaming import TextStream  # noqa: E402
from model.weights import load_into, load_state_dict, nonfinite_tensors  # noqa: E402

log = logging.getLogger("uvicorn.error")  # where uvicorn logs its own errors


class APIError(Exception):
    """Becomes OpenAI's error body: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}

    def response(self, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]  # the roles the chat template knows
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def join_text_parts(cls, v):  # clients may send [{"type": "text", "text": "..."}, ...] instead of a string
        if isinstance(v, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in v):
            return "".join(p["text"] for p in v)
        return v


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields we act on. Other OpenAI fields (frequency_penalty, stop, ...) are accepted and ignored."""
    messages: list[Message] = Field(min_length=1)
    model: str | None = None  # one model per server: any name is fine
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # the newer name for max_tokens; wins if both are sent
    seed: int | None = Field(None, ge=0, lt=2**63)
    n: int = Field(1, ge=1, le=1)  # one choice per request
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)  # only with logprobs: true
    return_tokens_as_token_ids: bool | None = None  # vLLM's: "token_id:<id>" as every logprobs token


class LoadWeightsRequest(BaseModel):
    path: str = Field(min_length=1)  # relative to --weights_dir


# a lone surrogate, escaped (\ud800) or as raw bytes (which json.loads lets through): only then is a string walk needed
MAYBE_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]|\xed[\xa0-\xbf]")


def is_text(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def find_lone_surrogate(obj: dict) -> str | None:
    """The path (messages[0].content) of a string holding a lone surrogate (or of the object with such a key): valid
    JSON, but not text that can be tokenized or echoed. Iterative: the object may be nested hundreds of levels deep."""
    todo = [("", obj)]
    while todo:
        path, x = todo.pop()
        if isinstance(x, str) and not is_text(x):
            return path
        if isinstance(x, list):
            todo.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(x))))
        elif isinstance(x, dict):
            if not all(is_text(k) for k in x):
                return path
            todo.extend((f"{path}.{k}" if path else k, v) for k, v in reversed(x.items()))
    return None


def parse_request(body: bytes) -> ChatRequest:
    req = parse_json(body, ChatRequest)
    if req.top_logprobs is not None and not req.logprobs:
        raise APIError(400, "top_logprobs: needs logprobs: true", "top_logprobs")
    return req


def parse_json(body: bytes, schema: type[BaseModel] = ChatRequest):
    try:
        obj = json.loads(body)
    except RecursionError:
        raise APIError(400, "request body is nested too deeply")
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer of more than 4300 digits
        raise APIError(400, f"request body is not valid JSON: {e}")
    if not isinstance(obj, dict):
        what = "a 'messages' list" if schema is ChatRequest else f"the fields {sorted(schema.model_fields)}"
        raise APIError(400, f"request body must be a JSON object with {what}")
    if MAYBE_SURROGATE.search(body) and (param := find_lone_surrogate(obj)) is not None:
        where = f"{param}: " if param else ""  # "" when a top-level key is the culprit
        raise APIError(400, f"{where}a lone UTF-16 surrogate in a string is not valid Unicode", param or None)
    try:
        # strict: "0.5" is not a temperature and "true" is not a bool (ints still count as floats)
        return schema.model_validate(obj, strict=True)
    except ValidationError as e:
        err = e.errors()[0]
        param = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".") or None
        raise APIError(400, f"{param}: {err['msg']}" if param else err["msg"], param)


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (a lying or absent Content-Length included), and
    with 408 when it has not all come within `timeout` seconds (a Content-Length longer than what is sent)."""
    too_big = APIError(413, f"request body is larger than {limit} bytes (--max_body_bytes)", code="request_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_big
    except TimeoutError:
        raise APIError(408, f"request body did not arrive within {timeout:g} s (--body_timeout)",
                       code="request_timeout")
    except ClientDisconnect:  # nobody is left to read the answer
        raise APIError(400, "client disconnected while sending the body")
    return bytes(body)


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

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        text = self.tokenizer.apply_chat_template([m.model_dump() for m in messages], tokenize=False,
                                                  add_generation_prompt=True)
        return self.tokenizer.encode(text, add_special_tokens=False)

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
        ids = engine.prompt_ids(req.messages)
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

        if not req.stream:
            pieces, entries = [], []
            async for piece, more in engine.run(stream, req.seed, request, logprobs):
                pieces.append(piece)
                entries += more or []
            return {**head, "object": "chat.completion", "usage": usage(),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces)},
                                 **logprobs_field(entries),
                                 "finish_reason": stream.finish_reason}]}

        def event(**fields):
            return f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', **fields}, ensure_ascii=False)}\n\n"

        def chunk(delta, finish_reason=None, entries=None):
            return event(choices=[{"index": 0, "delta": delta, **logprobs_field(entries),
                                   "finish_reason": finish_reason}])

        async def events():
            yield chunk({"role": "assistant", "content": ""})
            rest = []  # entries that came with no text (<|im_end|>'s): they go with the finish chunk
            try:
                async for piece, entries in engine.run(stream, req.seed, request, logprobs):
                    if piece:
                        yield chunk({"content": piece}, entries=entries)
                    else:
                        rest += entries or []
            except Exception as e:  # the 200 is sent: say so in the stream, and still end it the way clients expect
                log.exception("generation failed after the stream began")
                yield f"data: {json.dumps(APIError(500, f'generation failed ({type(e).__name__})').body())}\n\n"
                yield "data: [DONE]\n\n"
                return
            yield chunk({}, stream.finish_reason, rest or None)
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
