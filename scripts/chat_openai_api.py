"""Chat in the terminal with an OpenAI-compatible server (scripts/serve_openai_api.py by default), replies streamed.
It uses the official `openai` SDK, so it doubles as a check that the server speaks the protocol.

    python scripts/chat_openai_api.py
    printf '你好\\nWho are you?\\n' | python scripts/chat_openai_api.py --history_cnt 2    # one turn per stdin line
    python scripts/chat_openai_api.py --tools 1 --world_dir out/world     # the client runs the world's tools

With --tools 1 the request offers the embedded world's tools (calculator, weekday, days_after, and lookup_person over
--world_dir's people); when the reply asks for tool calls, this client runs them (toolcall/, the same executor the
training data and evaluation use), sends the results back as role "tool" messages and asks again, up to
--max_tool_rounds times — the whole tool loop over the OpenAI protocol.
"""
import argparse
import os
import sys

from openai import APIConnectionError, APIStatusError, OpenAI

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from toolcall.world import read_world_people, world_toolbox  # noqa: E402


def stream_turn(client, args, messages, tools) -> dict:
    """One streamed completion, printed as it comes; returns the assistant message (content, tool_calls)."""
    content, reasoning, calls = "", "", {}
    extra = {"tools": tools} if tools else {}
    for chunk in client.chat.completions.create(model=args.model, messages=messages, stream=True,
                                                temperature=args.temperature, max_tokens=args.max_tokens, **extra):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        think = getattr(delta, "reasoning_content", None)
        if think:
            print(("💭 " if not reasoning else "") + think, end="", flush=True)
            reasoning += think
        if delta.content:
            print(("\n" if reasoning and not content else "") + delta.content, end="", flush=True)
            content += delta.content
        for tc in delta.tool_calls or []:  # OpenAI streams calls as fragments keyed by index
            slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            slot["id"] = tc.id or slot["id"]
            if tc.function and tc.function.name:
                slot["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                slot["arguments"] += tc.function.arguments
    message = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [{"id": c["id"], "type": "function",
                                  "function": {"name": c["name"], "arguments": c["arguments"]}}
                                 for _, c in sorted(calls.items())]
    return message


def plain_turn(client, args, messages, tools) -> dict:
    extra = {"tools": tools} if tools else {}
    reply = client.chat.completions.create(model=args.model, messages=messages, temperature=args.temperature,
                                           max_tokens=args.max_tokens, **extra).choices[0].message
    think = getattr(reply, "reasoning_content", None)
    if think:
        print("💭 " + think)
    if reply.content:
        print(reply.content, end="")
    message = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.function.name, "arguments": c.function.arguments}}
                                 for c in reply.tool_calls]
    return message


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base_url", default="http://127.0.0.1:8998/v1")
    p.add_argument("--api_key", default=os.environ.get("OPENAI_API_KEY", "none"),
                   help="the server's --api_key (default: $OPENAI_API_KEY; the SDK insists on some value)")
    p.add_argument("--model", default="minimind", help="our server serves one model whatever the name")
    p.add_argument("--history_cnt", type=int, default=0, help="previous messages sent along (even: user+assistant)")
    p.add_argument("--temperature", type=float, default=0.85)
    p.add_argument("--max_tokens", type=int, default=None, help="default: the server's")
    p.add_argument("--stream", type=int, choices=(0, 1), default=1)
    p.add_argument("--tools", type=int, choices=(0, 1), default=0, help="offer the world's tools and run them")
    p.add_argument("--world_dir", default=None, help="a generated world: lookup_person reads its people")
    p.add_argument("--max_tool_rounds", type=int, default=3)
    args = p.parse_args()
    box = None
    if args.tools:
        people = None
        if args.world_dir:
            try:
                people = read_world_people(args.world_dir)
            except (OSError, ValueError) as e:
                raise SystemExit(f"error: cannot read {args.world_dir}/world.json: {e}")
        box = world_toolbox(people)
    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
    turn = stream_turn if args.stream else plain_turn
    history = []
    while True:
        try:
            prompt = input("👤: ").strip()
        except EOFError:  # end of piped input, or Ctrl-D
            print()
            return
        if not prompt:
            continue
        messages = (history[-args.history_cnt:] if args.history_cnt else []) + [{"role": "user", "content": prompt}]
        print("🤖: ", end="", flush=True)
        try:
            for _round in range(args.max_tool_rounds + 1):
                message = turn(client, args, messages, box.schemas() if box else None)
                messages.append(message)
                if not message.get("tool_calls") or box is None:
                    break
                for call in message["tool_calls"]:
                    result = box.respond(call["function"]["name"], call["function"]["arguments"])
                    print(f"\n🔧 {call['function']['name']}({call['function']['arguments']}) → {result}")
                    messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
                print("🤖: ", end="", flush=True)
        except APIConnectionError:
            raise SystemExit(f"\nerror: no server at {args.base_url}: start one with scripts/serve_openai_api.py")
        except APIStatusError as e:  # a refused request (too long, bad key) ends the turn, not the session
            print(f"[error {e.status_code}: {e.message}]")
            continue
        print()
        history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": messages[-1]["content"] or ""}]


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print()
