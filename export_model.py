"""Native `out/*.pth` ⇄ Hugging Face folder (the conversion itself is model/hf_convert.py).

A MiniMind2 dense model is exported as a plain `LlamaForCausalLM`, a minimind-3 one as `Qwen3ForCausalLM` and its
MoE as `Qwen3MoeForCausalLM` (no remote code needed to load them); a MiniMind2 MoE ships our modeling files beside the
weights (transformers needs trust_remote_code=True for it; this project reads it with its own code).

    python export_model.py --weight out/full_sft_512.pth --save_dir out/hf
    python export_model.py --weight out/full_sft_512.pth --lora_weight out/lora/lora_identity_512.pth --save_dir out/hf_id
    python export_model.py --to_torch --hf_dir out/hf --weight out/full_sft_512.pth
    python export_model.py --weight out/full_sft_512.pth --gguf out/gguf/minimind.gguf   # llama.cpp / Ollama
"""
import argparse

import torch

from model.args import add_model_args, config_from_args
from model.device import DTYPES
from model.hf_convert import export_hf, hf_architecture, import_hf, save_native
from model.model_minimind import MiniMindForCausalLM
from model.tokenizer import DEFAULT_TOKENIZER_DIR
from model.weights import load_into, load_state_dict


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weight", default="out/full_sft_512.pth", help="native checkpoint (input, or output with --to_torch)")
    p.add_argument("--save_dir", default="out/hf", help="Hugging Face folder to write")
    p.add_argument("--tokenizer_dir", default=DEFAULT_TOKENIZER_DIR)
    p.add_argument("--lora_weight", default=None, help="adapter .pth to merge into the weights before export")
    p.add_argument("--dtype", choices=("auto", *DTYPES), default="auto", help="auto: the checkpoint's own dtype")
    p.add_argument("--to_torch", action="store_true", help="reverse: --hf_dir → --weight")
    p.add_argument("--hf_dir", default=None, help="with --to_torch: the Hugging Face folder to read")
    p.add_argument("--gguf", default=None, metavar="FILE",
                   help="write one GGUF file for llama.cpp (and an Ollama Modelfile beside it) instead of a folder")
    add_model_args(p)
    args = p.parse_args()
    if args.to_torch:
        model = import_hf(args.hf_dir or args.save_dir)
        save_native(model, args.weight, DTYPES.get(args.dtype, torch.float16))
        print(f"wrote {args.weight}")
        return
    sd = load_state_dict(args.weight)
    model = MiniMindForCausalLM(config_from_args(args, vocab_size=sd["model.embed_tokens.weight"].shape[0]))
    load_into(model, sd, source=args.weight)
    if args.lora_weight:  # merged in fp32, then cast: a plain model, no adapter code needed to load it
        from model.model_lora import load_lora_file
        model = load_lora_file(model, args.lora_weight)
    dtype = DTYPES[args.dtype] if args.dtype != "auto" else sd["model.embed_tokens.weight"].dtype
    if args.gguf:
        from model.gguf_export import export_gguf
        arch = export_gguf(model, args.gguf, args.tokenizer_dir, dtype)
        print(f"wrote {args.gguf} (llama.cpp arch {arch}, {dtype}) and an Ollama Modelfile beside it")
        return
    export_hf(model, args.save_dir, args.tokenizer_dir, dtype)
    kind = hf_architecture(model.config)
    if kind == "MiniMindForCausalLM":
        kind = "MiniMind MoE (with its modeling files)"
    print(f"wrote {args.save_dir} as {kind}, {dtype}")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}")
