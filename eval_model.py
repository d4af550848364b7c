"""Chat with a trained model in the terminal (streaming), or run a built-in prompt set.

    python eval_model.py --weight full_sft                     # out/full_sft_512.pth, chat template
    python eval_model.py --weight pretrain                     # pretrain weights continue text instead
    python eval_model.py --weight full_sft --lora_weight lora_identity
    python eval_model.py --load_from out/hf                    # any exported Hugging Face folder
    python eval_model.py --preset tiny --tokenizer_dir out/tokenizer --interactive 1
"""
import argparse
import os
import sys
import time

import torch

from model.args import add_model_args, config_from_args
from model.streaming import TextStream
from model.tokenizer import DEFAULT_TOKENIZER_DIR, load_tokenizer
from model.weights import load_native, weight_path

PROMPTS = {
    "chat": ["你好，请介绍一下你自己。", "Who are you?", "3加4等于几？", "What is 5 plus 2?", "把“北京”翻译成英文。"],
    "text": ["北京是", "Zhang Wei was born in", "1加1等于"],
}


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weight", default="full_sft", help="stage name: loads {out_dir}/{weight}_{hidden}[_moe].pth")
    p.add_argument("--out_dir", default="out")
    p.add_argument("--lora_weight", default="none", help="adapter name: {out_dir}/lora/{name}_{hidden}.pth")
    p.add_argument("--load_from", default=None, help="a Hugging Face folder instead of native weights")
    p.add_argument("--tokenizer_dir", default=DEFAULT_TOKENIZER_DIR)
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu (--device mps to try an "
                                                  "Apple GPU)")
    p.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="int8: weight-only int8 with bf16 activations (CPU; see model/quantize.py)")
    p.add_argument("--interactive", type=int, choices=(0, 1), default=None, help="default: on when stdin is a tty")
    p.add_argument("--history_cnt", type=int, default=0, help="previous turns kept (even number: user+assistant)")
    p.add_argument("--temperature", type=float, default=0.85)
    p.add_argument("--top_p", type=float, default=0.85)
    p.add_argument("--top_k", type=int, default=0)
    p.add_argument("--repetition_penalty", type=float, default=1.0)
    p.add_argument("--max_new_tokens", type=int, default=512)
    p.add_argument("--show_speed", type=int, choices=(0, 1), default=0)
    p.add_argument("--seed", type=int, default=None)
    add_model_args(p)
    return p


def inference_device(name):
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def load_model(args, device):
    """(model, tokenizer, is_chat) from native weights (+ optional LoRA) or an exported folder."""
    if args.load_from:
        if args.quantize != "none":
            raise ValueError("--quantize works on native weights (--weight), not on --load_from folders")
        from transformers import AutoModelForCausalLM, AutoTokenizer
        model = AutoModelForCausalLM.from_pretrained(args.load_from, trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained(args.load_from)
        return model.to(device).eval(), tokenizer, True
    tokenizer = load_tokenizer(args.tokenizer_dir)
    config = config_from_args(args, vocab_size=len(tokenizer))
    model = load_native(weight_path(args.out_dir, args.weight, config.hidden_size, config.use_moe), config)
    if args.lora_weight != "none":
        from model.model_lora import load_lora_file
        model = load_lora_file(model, weight_path(os.path.join(args.out_dir, "lora"), args.lora_weight,
                                                  config.hidden_size, config.use_moe))
    if args.quantize == "int8":
        if device.type != "cpu":
            raise ValueError(f"--quantize int8 runs on the CPU (asked for {device})")
        from model.quantize import quantize_int8
        model = quantize_int8(model)
    return model.to(device).eval(), tokenizer, args.weight != "pretrain"


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
    device = inference_device(args.device)
    try:
        model, tokenizer, is_chat = load_model(args, device)
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
