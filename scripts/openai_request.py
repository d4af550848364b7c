"""The requests the OpenAI-compatible server (scripts/serve_openai_api.py) takes, and getting them in: the body read
within its size and time limits (read_body), parsed into the schema (ChatRequest, LoadWeightsRequest: parse_json) and
checked for what the schema cannot say (parse_request: which role may carry what, that tool results answer tool calls,
that tool call arguments are JSON objects, that tool names are unique and tool_choice names one, that the thinking
switches agree, that top_logprobs comes with logprobs). Every refusal is an APIError: OpenAI's error body with a 4xx
and `param` naming the field. Hostile input (deep nesting, lone surrogates, huge or slow bodies) stops here, before
anything reaches the tokenizer or the model."""
import asyncio
import json
import re
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.requests import ClientDisconnect


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


class FunctionCall(BaseModel):
    name: str = Field(min_length=1)
    arguments: str  # OpenAI's shape: the arguments object as a JSON string (check_messages parses it)


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]  # the roles the chat template knows
    content: str | None = None  # null (or absent) only on an assistant message with tool_calls (check_messages)
    tool_calls: list[ToolCall] | None = None  # assistant messages only
    tool_call_id: str | None = None  # tool messages: which call this result answers (required there)
    reasoning_content: str | None = None  # assistant messages: the thinking before the content, as a <think> block

    @field_validator("content", mode="before")
    @classmethod
    def join_text_parts(cls, v):  # clients may send [{"type": "text", "text": "..."}, ...] instead of a string
        if isinstance(v, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in v):
            return "".join(p["text"] for p in v)
        return v


class StreamOptions(BaseModel):
    include_usage: bool = False


class FunctionDef(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
    description: str | None = None
    parameters: dict[str, Any] | None = None  # a JSON Schema object, shown to the model as it is
    strict: bool | None = None  # accepted; nothing is enforced (no constrained decoding)


class Tool(BaseModel):
    type: Literal["function"]
    function: FunctionDef


class NamedToolChoice(BaseModel):
    class Name(BaseModel):
        name: str

    type: Literal["function"]
    function: Name


class TemplateKwargs(BaseModel):
    """vLLM's chat_template_kwargs: the keys our chat template reads. Others are ignored, like unknown fields."""
    enable_thinking: bool | None = None
    open_thinking: bool | None = None  # upstream MiniMind's name for the same switch


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
    tools: list[Tool] | None = None  # [] is the same as none
    tool_choice: Any = None  # "auto" | "none" | "required" | {"type": "function", ...}: checked in check_tools
    parallel_tool_calls: bool | None = None  # accepted; the model writes as many calls as it writes
    chat_template_kwargs: TemplateKwargs | None = None
    open_thinking: bool | None = None  # upstream MiniMind's thinking switch

    def thinking(self) -> bool | None:
        """The thinking switch, from whichever field set it (check_thinking made sure they agree)."""
        kw = self.chat_template_kwargs or TemplateKwargs()
        return next((v for v in (kw.enable_thinking, kw.open_thinking, self.open_thinking) if v is not None), None)

    def choice(self) -> str | dict:
        return self.tool_choice if self.tool_choice is not None else ("auto" if self.tools else "none")

    def uses_tools(self) -> bool:
        return bool(self.tools) or any(m.role == "tool" or m.tool_calls for m in self.messages)

    def read_reply(self) -> bool:
        """Whether the reply is read (reasoning, tool calls): only when the request speaks of tools or thinking, so
        that a plain request gets its text exactly as before."""
        return self.uses_tools() or self.thinking() is not None or \
            any(m.reasoning_content is not None for m in self.messages)

    def read_tool_calls(self) -> bool:
        return bool(self.tools) and self.choice() != "none"


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
    check_messages(req.messages)
    check_tools(req)
    check_thinking(req)
    return req


def bad(param: str, why: str) -> APIError:
    return APIError(400, f"{param}: {why}", param)


def json_object(text: str, param: str) -> dict:
    """A tool call's arguments string, parsed: a JSON object of text, or a 400 naming `param`."""
    try:
        value = json.loads(text)
    except RecursionError:  # the string is not nested in the body, so the body's own parse did not catch this
        raise bad(param, "the JSON is nested too deeply") from None
    except ValueError as e:
        raise bad(param, f"must be a JSON object as a string; this is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise bad(param, f"must be a JSON object as a string, not a JSON {type(value).__name__}")
    if (where := find_lone_surrogate(value)) is not None:  # an escaped \ud800 inside the string: not text
        raise bad(param, f"a lone UTF-16 surrogate in the JSON ({where or 'a key'}) is not valid Unicode")
    return value


def check_messages(messages: list[Message]):
    """What the schema cannot say: which role may carry what, and that tool results answer tool calls."""
    for i, m in enumerate(messages):
        at = f"messages[{i}]"
        if m.role == "tool":
            before = next((p for p in reversed(messages[:i]) if p.role != "tool"), None)
            if before is None or before.role != "assistant" or not before.tool_calls:  # as OpenAI words it
                raise bad(f"{at}.role", "messages with role 'tool' must answer a preceding assistant message with "
                                        "'tool_calls'")
            if m.tool_call_id is None:
                raise bad(f"{at}.tool_call_id", "Field required (a tool message names the call it answers)")
        if m.tool_calls and m.role != "assistant":
            raise bad(f"{at}.tool_calls", "only assistant messages have tool_calls")
        if m.content is None and not (m.role == "assistant" and m.tool_calls):
            raise bad(f"{at}.content", "Field required (only an assistant message with tool_calls may leave it "
                                       "null)")
        for j, call in enumerate(m.tool_calls or []):
            json_object(call.function.arguments, f"{at}.tool_calls[{j}].function.arguments")


def check_tools(req: ChatRequest):
    names = [t.function.name for t in req.tools or []]
    for j, name in enumerate(names):
        if name in names[:j]:
            raise bad(f"tools[{j}].function.name", f"a second tool named {name!r}")
    choice = req.tool_choice
    if choice is None:
        return
    if isinstance(choice, dict):
        try:
            choice = NamedToolChoice.model_validate(choice, strict=True)
        except ValidationError as e:
            raise validation_error(e, "tool_choice") from None
        if choice.function.name not in names:
            raise bad("tool_choice.function.name", f"no tool named {choice.function.name!r} in tools")
    elif choice not in ("auto", "none", "required"):
        raise bad("tool_choice", "must be 'auto', 'none', 'required' or {'type': 'function', 'function': "
                                 "{'name': ...}}")
    elif choice == "required" and not names:
        raise bad("tool_choice", "'required' needs tools")


def check_thinking(req: ChatRequest):
    kw = req.chat_template_kwargs or TemplateKwargs()
    given = [(name, v) for name, v in (("chat_template_kwargs.enable_thinking", kw.enable_thinking),
                                       ("chat_template_kwargs.open_thinking", kw.open_thinking),
                                       ("open_thinking", req.open_thinking)) if v is not None]
    if len({v for _, v in given}) > 1:
        raise bad(given[-1][0], f"says {given[-1][1]} but {given[0][0]} says {given[0][1]}")


def validation_error(e: ValidationError, prefix: str = "") -> APIError:
    """Pydantic's first error as a 400 whose param is the field's path: messages[0].content."""
    err = e.errors()[0]
    param = (prefix + "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"])).lstrip(".") or None
    return APIError(400, f"{param}: {err['msg']}" if param else err["msg"], param)


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
        raise validation_error(e) from None


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
