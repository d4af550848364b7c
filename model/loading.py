"""Loading a model for inference: native weights (+ a LoRA adapter, + int8 weights) or a Hugging Face folder.

Every inference front end (chat CLI, C-Eval, API server, web demo, bits-per-byte, long context) loads through
`load_model(ModelSource(...), device)`, so they all accept the same weights the same way.
"""
import argparse
import os
import sys
from dataclasses import dataclass, field

import torch

from .args import SIZE_FLAGS, build_config
from .tokenizer import DEFAULT_TOKENIZER_DIR, load_tokenizer
from .weights import load_native, weight_path


@dataclass(frozen=True)
class ModelSource:
    """Where the weights come from. Native: {out_dir}/{weight}_{hidden}[_moe].pth, its size from preset + sizes
    (None = the default), optionally with {out_dir}/lora/{lora_weight}_{hidden}.pth merged in. Or load_from: a
    Hugging Face folder (its own config and tokenizer)."""
    weight: str = "full_sft"
    out_dir: str = "out"
    lora_weight: str = "none"
    load_from: str | None = None
    tokenizer_dir: str = DEFAULT_TOKENIZER_DIR
    quantize: str = "none"
    trust_remote_code: bool = False  # run Python files shipped in a load_from folder (foreign architectures)
    preset: str | None = None
    inference_rope_scaling: bool = False
    sizes: dict = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ModelSource":
        """From the flags of model.args.add_source_args."""
        return cls(weight=args.weight, out_dir=args.out_dir, lora_weight=args.lora_weight, load_from=args.load_from,
                   tokenizer_dir=args.tokenizer_dir, quantize=args.quantize,
                   trust_remote_code=bool(args.trust_remote_code), preset=args.preset,
                   inference_rope_scaling=bool(args.inference_rope_scaling),
                   sizes={name: getattr(args, name) for name in SIZE_FLAGS})

    def config(self, vocab_size: int):
        return build_config(self.preset, self.inference_rope_scaling, **self.sizes, vocab_size=vocab_size)

    def describe(self, config) -> str:
        """What was loaded, for a report line."""
        if self.load_from:
            return self.load_from
        lora = f" + lora {self.lora_weight}" if self.lora_weight != "none" else ""
        int8 = " (int8 weights)" if self.quantize == "int8" else ""
        return weight_path(self.out_dir, self.weight, config.hidden_size, config.use_moe) + lora + int8


def load_model(source: ModelSource, device: torch.device):
    """(model, tokenizer, is_chat), the model in eval mode on device. is_chat: whether replies use the chat
    template (pretrain weights continue plain text instead)."""
    if source.load_from:
        if source.quantize != "none":
            raise ValueError("--quantize works on native weights (--weight), not on --load_from folders")
        return load_hf_folder(source.load_from, source.trust_remote_code, device)
    tokenizer = load_tokenizer(source.tokenizer_dir)
    config = source.config(len(tokenizer))
    model = load_native(weight_path(source.out_dir, source.weight, config.hidden_size, config.use_moe), config)
    if source.lora_weight != "none":
        from .model_lora import load_lora_file
        model = load_lora_file(model, weight_path(os.path.join(source.out_dir, "lora"), source.lora_weight,
                                                  config.hidden_size, config.use_moe))
    if source.quantize == "int8":
        if device.type != "cpu":
            raise ValueError(f"--quantize int8 runs on the CPU (asked for {device})")
        from .quantize import quantize_int8
        model = quantize_int8(model)
    return model.to(device).eval(), tokenizer, source.weight != "pretrain"


def load_hf_folder(folder: str, trust_remote_code: bool, device: torch.device):
    """(model, tokenizer, True) from a Hugging Face folder. Our own exports (Llama or MiniMind MoE) load with our own
    code; any other architecture through transformers, which runs Python files shipped in the folder only when
    trust_remote_code is set."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .hf_convert import import_hf, read_hf_config
    if read_hf_config(folder)["model_type"] == "minimind":
        model = import_hf(folder)
    else:
        if trust_remote_code:
            print(f"warning: --trust_remote_code: Python files in {folder} may run; use it only for folders you "
                  f"trust", file=sys.stderr)
        try:
            model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=trust_remote_code)
        except ValueError as e:
            if "trust_remote_code" not in str(e):
                raise
            raise ValueError(f"{folder} ships its own modeling code; pass --trust_remote_code to run it (only for a "
                             f"folder you trust)") from None
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    return model.to(device).eval(), tokenizer, True
