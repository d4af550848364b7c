"""Chat in the terminal with an OpenAI-compatible server (scripts/serve_openai_api.py by default), replies streamed.
It uses the official `openai` SDK, so it doubles as a check that the server speaks the protocol.

    python scripts/chat_openai_api.py
    printf '你好\\nWho are you?\\n' | python scripts/chat_openai_api.py --history_cnt 2    # one turn per stdin line
"""
import argparse
import os

from openai import APIConnectionError, APIStatusError, OpenAI


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base_url", default="http://127.0.0.1:8998/v1")
    p.add_argument("--api_key", default=os.environ.get("OPENAI_API_KEY", "none"),
                   help="the server's --api_key (default: $OPENAI_API_KEY; the SDK insists on some value)")
    p.add_argument("--model", default="minimind", help="our server serves one model whatever the name")
    p.add_argument("--history_cnt", type=int, default=0, help="previous messages sent along (even: user+assistant)")
    p.add_argument("--temperature", type=float, default=0.85)
    p.add_argument("--max_tokens", type=int, default=None, help="default: the server's")
    args = p.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
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
        answer = ""
        try:
            for chunk in client.chat.completions.create(model=args.model, messages=messages, stream=True,
                                                        temperature=args.temperature, max_tokens=args.max_tokens):
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    print(piece, end="", flush=True)
                    answer += piece
        except APIConnectionError:
            raise SystemExit(f"\nerror: no server at {args.base_url}: start one with scripts/serve_openai_api.py")
        except APIStatusError as e:  # a refused request (too long, bad key) ends the turn, not the session
            print(f"[error {e.status_code}: {e.message}]")
            continue
        print()
        history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print()
