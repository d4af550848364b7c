"""Native `out/*.pth` ⇄ Hugging Face folder.

A dense MiniMind *is* a Llama (same blocks, same names), so it is exported as a plain `LlamaForCausalLM` that
transformers, vLLM, llama.cpp's converter and lm-eval load without trust_remote_code. An MoE model has no stock
architecture in transformers, so it ships our modeling files beside the weights (auto_map → trust_remote_code=True).

    python export_model.py --weight out/full_sft_512.pth --save_dir out/hf
    python export_model.py --weight out/full_sft_512.pth --lora_weight out/lora/lora_identity_512.pth --save_dir out/hf_id
    python export_model.py --to_torch --hf_dir out/hf --weight out/full_sft_512.pth
"""
import argparse
import os
import shutil

import torch

from model.args import add_model_args, config_from_args
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.tokenizer import DEFAULT_TOKENIZER_DIR
from model.weights import atomic_save, load_into, load_state_dict

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def llama_config(c: MiniMindConfig):
    from transformers import LlamaConfig
    rope = {"rope_type": "default", "rope_theta": c.rope_theta}
    if c.inference_rope_scaling:
        rope = {"rope_type": "yarn", "rope_theta": c.rope_theta, **c.yarn}
    return LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                       num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                       num_key_value_heads=c.num_key_value_heads, max_position_embeddings=c.max_position_embeddings,
                       rms_norm_eps=c.rms_norm_eps, rope_parameters=rope, hidden_act=c.hidden_act,
                       tie_word_embeddings=c.tie_word_embeddings, bos_token_id=c.bos_token_id,
                       eos_token_id=c.eos_token_id, pad_token_id=c.pad_token_id)


def export_hf(model: MiniMindForCausalLM, save_dir: str, tokenizer_dir: str | None = None, dtype=None) -> str:
    """Write config.json, model.safetensors, generation_config.json and the tokenizer files into save_dir."""
    from transformers import GenerationConfig, LlamaForCausalLM
    c = model.config
    dtype = dtype or next(model.parameters()).dtype
    if c.use_moe:
        # register_for_auto_class makes save_pretrained write auto_map and copy model_minimind_hf.py next to the
        # weights, with model_minimind.py, which it imports relatively
        from model.model_minimind_hf import MiniMindForCausalLMHF, to_hf
        MiniMindConfig.register_for_auto_class()
        MiniMindForCausalLMHF.register_for_auto_class("AutoModelForCausalLM")
        out = to_hf(model)
    else:
        out = LlamaForCausalLM(llama_config(c))
        out.load_state_dict(model.state_dict(), strict=True)
    out = out.to(dtype)
    out.generation_config = GenerationConfig(bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id,
                                             pad_token_id=c.pad_token_id, do_sample=True, temperature=0.85,
                                             top_p=0.85, max_new_tokens=512)
    os.makedirs(save_dir, exist_ok=True)
    out.save_pretrained(save_dir)
    copy_tokenizer(tokenizer_dir or DEFAULT_TOKENIZER_DIR, save_dir)
    return save_dir


def copy_tokenizer(src: str, dst: str):
    if not os.path.isfile(os.path.join(src, "tokenizer.json")):
        raise FileNotFoundError(f"no tokenizer.json in {src}; pass --tokenizer_dir (train one with train_tokenizer.py)")
    for name in TOKENIZER_FILES:
        if os.path.isfile(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(dst, name))


def import_hf(hf_dir: str) -> MiniMindForCausalLM:
    """An exported folder (Llama or our MoE) back into a native MiniMindForCausalLM."""
    from transformers import AutoConfig, AutoModelForCausalLM
    hc = AutoConfig.from_pretrained(hf_dir, trust_remote_code=True)
    if hc.model_type == "minimind":
        src = AutoModelForCausalLM.from_pretrained(hf_dir, trust_remote_code=True, dtype=torch.float32)
        config = MiniMindConfig.from_dict({k: v for k, v in src.config.to_dict().items() if k != "auto_map"})
    elif hc.model_type == "llama":
        src = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
        rope = hc.rope_parameters or {}
        yarn = rope.get("rope_type") == "yarn"
        config = MiniMindConfig(
            hidden_size=hc.hidden_size, num_hidden_layers=hc.num_hidden_layers,
            num_attention_heads=hc.num_attention_heads, num_key_value_heads=hc.num_key_value_heads,
            intermediate_size=hc.intermediate_size, vocab_size=hc.vocab_size,
            max_position_embeddings=hc.max_position_embeddings, rope_theta=rope.get("rope_theta", 1e6),
            rms_norm_eps=hc.rms_norm_eps, tie_word_embeddings=hc.tie_word_embeddings,
            inference_rope_scaling=yarn, yarn={k: v for k, v in rope.items() if k not in ("rope_type", "rope_theta")}
            if yarn else None)
    else:
        raise ValueError(f"{hf_dir}: model_type {hc.model_type!r} is neither 'llama' nor 'minimind'")
    model = MiniMindForCausalLM(config)
    load_into(model, src.state_dict(), source=hf_dir)
    return model


def save_native(model: MiniMindForCausalLM, path: str, dtype=torch.float16):
    """Half-precision inference weights, as upstream ships them; written atomically."""
    atomic_save({k: v.to(dtype) for k, v in model.state_dict().items()}, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weight", default="out/full_sft_512.pth", help="native checkpoint (input, or output with --to_torch)")
    p.add_argument("--save_dir", default="out/hf", help="Hugging Face folder to write")
    p.add_argument("--tokenizer_dir", default=DEFAULT_TOKENIZER_DIR)
    p.add_argument("--lora_weight", default=None, help="adapter .pth to merge into the weights before export")
    p.add_argument("--dtype", choices=("auto", *DTYPES), default="auto", help="auto: the checkpoint's own dtype")
    p.add_argument("--to_torch", action="store_true", help="reverse: --hf_dir → --weight")
    p.add_argument("--hf_dir", default=None, help="with --to_torch: the Hugging Face folder to read")
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
    export_hf(model, args.save_dir, args.tokenizer_dir, dtype)
    kind = "MiniMind MoE (trust_remote_code=True)" if model.config.use_moe else "LlamaForCausalLM"
    print(f"wrote {args.save_dir} as {kind}, {dtype}")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}")
