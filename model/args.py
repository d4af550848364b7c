"""The flags scripts share (upstream MiniMind's names), and the config they describe.

    add_model_args     the model's size: --preset and the size flags
    add_source_args    which weights to load for inference (+ the size flags), on which device
    add_sampling_args  default sampling settings of the chat front ends
"""
import argparse

from .model_minimind import PRESETS, MiniMindConfig
from .tokenizer import DEFAULT_TOKENIZER_DIR

SIZE_FLAGS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
              "use_moe")


def add_model_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = parser.add_argument_group("model size (defaults: MiniMind2-small, or the --preset)")
    g.add_argument("--preset", choices=sorted(PRESETS), default=None, help="named size; explicit flags override it")
    g.add_argument("--hidden_size", type=int, default=None, help="512")
    g.add_argument("--num_hidden_layers", type=int, default=None, help="8")
    g.add_argument("--num_attention_heads", type=int, default=None, help="8")
    g.add_argument("--num_key_value_heads", type=int, default=None, help="2")
    g.add_argument("--intermediate_size", type=int, default=None, help="64·ceil(8·hidden/3/64)")
    g.add_argument("--use_moe", type=int, choices=(0, 1), default=None, help="0")
    g.add_argument("--inference_rope_scaling", type=int, choices=(0, 1), default=0,
                   help="YaRN ×4 context extension at inference")
    return parser


def build_config(preset: str | None = None, inference_rope_scaling: bool = False, **fields) -> MiniMindConfig:
    """A preset's fields (if any), overridden by every field given that is not None."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    merged = {**(PRESETS[preset] if preset else {}), **{k: v for k, v in fields.items() if v is not None}}
    if "use_moe" in merged:
        merged["use_moe"] = bool(merged["use_moe"])
    if inference_rope_scaling:
        merged["inference_rope_scaling"] = True
    return MiniMindConfig(**merged)


def config_from_args(args: argparse.Namespace, **overrides) -> MiniMindConfig:
    """The config add_model_args' flags describe; overrides (e.g. vocab_size) win."""
    return build_config(args.preset, bool(args.inference_rope_scaling),
                        **{name: getattr(args, name) for name in SIZE_FLAGS}, **overrides)


def add_source_args(parser: argparse.ArgumentParser, weight: str = "full_sft") -> argparse.ArgumentParser:
    """Which model an inference script loads (see model.loading.ModelSource)."""
    g = parser.add_argument_group("model")
    g.add_argument("--weight", default=weight, help="stage name: loads {out_dir}/{weight}_{hidden}[_moe].pth")
    g.add_argument("--out_dir", default="out")
    g.add_argument("--lora_weight", default="none", help="adapter name: {out_dir}/lora/{name}_{hidden}.pth")
    g.add_argument("--load_from", default=None, help="a Hugging Face folder instead of native weights")
    g.add_argument("--tokenizer_dir", default=DEFAULT_TOKENIZER_DIR)
    g.add_argument("--device", default=None, help="default: cuda if available, else cpu (--device mps to try an "
                                                  "Apple GPU)")
    g.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="int8: weight-only int8 with bf16 activations (CPU; see model/quantize.py)")
    g.add_argument("--trust_remote_code", action="store_true",
                   help="let a --load_from folder of another architecture run its own Python files (never needed "
                        "for this project's exports; only for folders you trust)")
    return add_model_args(parser)


def add_sampling_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = parser.add_argument_group("sampling")
    g.add_argument("--temperature", type=float, default=0.85)
    g.add_argument("--top_p", type=float, default=0.85)
    g.add_argument("--top_k", type=int, default=0)
    g.add_argument("--repetition_penalty", type=float, default=1.0)
    g.add_argument("--max_new_tokens", type=int, default=512)
    return parser
