"""Tools as OpenAI describes them (name, description, JSON-schema parameters) and one executor for all callers:
SFT data generation, the tool-use evaluation, the API server's demo tools and RL rollouts.

A call that names an unknown tool, carries arguments that do not fit the schema, raises, or runs past its time
limit comes back as a ToolError with a message fit to show the model as the tool's response.
"""
import concurrent.futures
import json
from dataclasses import dataclass
from typing import Callable

DEFAULT_TIMEOUT_S = 2.0
_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list}


class ToolError(ValueError):
    """A tool call that cannot be carried out; str(e) is the message for the model."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict  # JSON schema of an object: {"type": "object", "properties": {...}, "required": [...]}
    fn: Callable[..., object]

    def schema(self) -> dict:
        """The OpenAI `tools` entry for this tool."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def call_arguments(arguments) -> dict:
    """A call's arguments as a dict: a JSON object, or its JSON string (as OpenAI sends them); ValueError otherwise.
    Training rows, generated replies and executed calls all read arguments this way."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            raise ValueError("'arguments' is a string but not valid JSON") from None
    if not isinstance(arguments, dict):
        raise ValueError("'arguments' must be a JSON object")
    return arguments


def validate_arguments(tool: Tool, arguments) -> dict:
    """The arguments as a dict, or ToolError naming what does not fit the tool's schema (required keys, no extra
    keys, JSON types, enums)."""
    try:
        arguments = call_arguments(arguments)
    except ValueError as e:
        raise ToolError(f"{tool.name}: {e}") from None
    props = tool.parameters.get("properties", {})
    missing = [k for k in tool.parameters.get("required", []) if k not in arguments]
    if missing:
        raise ToolError(f"{tool.name}: missing argument(s) {', '.join(missing)}")
    for key, value in arguments.items():
        if key not in props:
            raise ToolError(f"{tool.name}: unknown argument {key!r}")
        spec = props[key]
        want = _JSON_TYPES.get(spec.get("type"))
        if want and (not isinstance(value, want) or (isinstance(value, bool) and spec.get("type") != "boolean")):
            raise ToolError(f"{tool.name}: argument {key!r} must be of type {spec['type']}")
        if "enum" in spec and value not in spec["enum"]:
            raise ToolError(f"{tool.name}: argument {key!r} must be one of {', '.join(map(str, spec['enum']))}")
    return arguments


class ToolBox:
    """A set of tools by name, executing calls with a time limit."""

    def __init__(self, tools: list[Tool], timeout_s: float = DEFAULT_TIMEOUT_S):
        self.tools = {t.name: t for t in tools}
        self.timeout_s = timeout_s
        # One worker thread: a call that overruns is abandoned (Python cannot kill a thread), and the next call
        # gets a fresh pool so it never waits behind it.
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    def schemas(self, names: list[str] | None = None) -> list[dict]:
        return [self.tools[n].schema() for n in (names or self.tools)]

    def run(self, name: str, arguments) -> str:
        """The tool's result as text (JSON for non-strings), or ToolError."""
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            raise ToolError(f"unknown tool {name!r} (available: {known})")
        args = validate_arguments(tool, arguments)
        future = self._pool.submit(tool.fn, **args)
        try:
            result = future.result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            raise ToolError(f"{name}: timed out after {self.timeout_s:g} s") from None
        except ToolError:
            raise
        except (ValueError, TypeError, KeyError, ArithmeticError) as e:
            raise ToolError(f"{name}: {e}") from None
        return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)

    def respond(self, name: str, arguments) -> str:
        """run(), with a failure turned into the error text the model reads as the tool's response."""
        try:
            return self.run(name, arguments)
        except ToolError as e:
            return f"error: {e}"

    def call(self, name: str, arguments) -> dict:
        """respond(), plus what an evaluation or a reward judges about the call: {"name", "arguments", "result",
        "known" (the tool exists), "valid" (the arguments fit its schema), "ok" (it returned a result)}."""
        tool, valid = self.tools.get(name), False
        if tool is not None:
            try:
                validate_arguments(tool, arguments)
                valid = True
            except ToolError:
                pass
        result = self.respond(name, arguments)
        return {"name": name, "arguments": arguments, "result": result, "known": tool is not None, "valid": valid,
                "ok": not result.startswith("error: ")}
