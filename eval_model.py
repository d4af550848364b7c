"""Chat with a trained model in the terminal (streaming), or run a built-in prompt set.

    python eval_model.py --weight full_sft                     # out/full_sft_512.pth, chat template
    python eval_model.py --weight pretrain                     # pretrain weights continue text instead
    python eval_model.py --weight full_sft --lora_weight lora_identity
    python eval_model.py --load_from out/hf                    # any exported Hugging Face folder
    python eval_model.py --preset tiny --tokenizer_dir out/tokenizer --interactive 1
"""
import argparse
import sys
import time

import torch

from model.args import add_sampling_args, add_source_args
from model.device import pick_device
from model.loading import ModelSource, load_model
from model.streaming import TextStream

PROMPTS = {
    "chat": ["你好，请介绍一下你自己。", "Who are you?", "3加4等于几？", "What is 5 plus 2?", "把“北京”翻译成英文。"],
    "text": ["北京是", "Zhang Wei was born in", "1加1等于"],
}


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    add_sampling_args(p)
    g = p.add_argument_group("chat")
    g.add_argument("--interactive", type=int, choices=(0, 1), default=None, help="default: on when stdin is a tty")
    g.add_argument("--history_cnt", type=int, default=0, help="previous turns kept (even number: user+assistant)")
    g.add_argument("--show_speed", type=int, choices=(0, 1), default=0)
    g.add_argument("--seed", type=int, default=None)
    return p


def reply(model, tokenizer, text, args, device):
    ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)], device=device)
    t0, pieces = time.time(), []
    stream = TextStream(model, tokenizer, ids, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                        top_p=args.top_p, top_k=args.top_k, repetition_penalty=args.repetition_penalty)
    for piece in stream:
        print(piece, end="", flush=True)
        pieces.append(piece)
    print()
    if args.show_speed:
        print(f"[{stream.n_tokens} tokens, {stream.n_tokens / max(time.time() - t0, 1e-9):.1f} tokens/s]")
    return "".join(pieces)


def main():
    args = build_parser().parse_args()
    if args.seed is not None:
        torch.manual_seed(args.seed)
    device = pick_device(args.device, allow_mps=False)
    try:
        model, tokenizer, is_chat = load_model(ModelSource.from_args(args), device)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    interactive = sys.stdin.isatty() if args.interactive is None else bool(args.interactive)
    history = []
    prompts = iter(lambda: input("👤: "), None) if interactive else iter(PROMPTS["chat" if is_chat else "text"])
    for prompt in prompts:
        if not interactive:
            print(f"👤: {prompt}")
        if is_chat:
            history = history[-args.history_cnt:] if args.history_cnt else []
            history.append({"role": "user", "content": prompt})
            text = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
        else:
            text = tokenizer.bos_token + prompt
        print("🤖: ", end="", flush=True)
        answer = reply(model, tokenizer, text, args, device)
        if is_chat:
            history.append({"role": "assistant", "content": answer})
        print()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, EOFError):
        print()
