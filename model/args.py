"""The model-size flags every script shares (upstream MiniMind's names), and the config they describe."""
import argparse

from .model_minimind import PRESETS, MiniMindConfig


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


def config_from_args(args, **overrides) -> MiniMindConfig:
    fields = dict(PRESETS[args.preset]) if getattr(args, "preset", None) else {}
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                 "intermediate_size", "use_moe"):
        if getattr(args, name, None) is not None:
            fields[name] = getattr(args, name)
    if "use_moe" in fields:
        fields["use_moe"] = bool(fields["use_moe"])
    if getattr(args, "inference_rope_scaling", 0):
        fields["inference_rope_scaling"] = True
    return MiniMindConfig(**{**fields, **overrides})
