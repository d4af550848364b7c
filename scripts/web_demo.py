"""Chat with a MiniMind model in the browser (Streamlit), replies streamed as they are generated.

    streamlit run scripts/web_demo.py                                           # the models in out/
    streamlit run scripts/web_demo.py -- --out_dir /tmp/x --preset tiny --tokenizer_dir /tmp/x/tokenizer

Flags after `--` are eval_model.py's model and sampling flags: --out_dir, --tokenizer_dir, --lora_weight, --load_from, size flags, and the
sampling defaults the sidebar starts from. The model list holds every `{out_dir}/{stage}_{hidden}[_moe].pth` and every
Hugging Face folder (one with a config.json) in out_dir, plus --load_from.
"""
import argparse
import dataclasses
import glob
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import streamlit as st  # noqa: E402
import torch  # noqa: E402

from model.args import add_sampling_args, add_source_args  # noqa: E402
from model.device import pick_device  # noqa: E402
from model.loading import ModelSource, load_model  # noqa: E402
from model.model_minimind import PRESETS  # noqa: E402
from model.streaming import TextStream  # noqa: E402
from model.tokenizer import DEFAULT_TOKENIZER_DIR  # noqa: E402
from model.weights import load_state_dict  # noqa: E402

UI = {
    "中文": dict(title="MiniMind 对话", model="模型", history="携带的历史消息数", temperature="温度（0 = 贪心）",
               max_new="最多生成的 token 数", clear="清空对话", regenerate="重新生成", ask="输入你的问题……",
               none="{} 里没有模型：先运行 python scripts/quickstart.py，或在 -- 之后传入 --out_dir / --load_from"),
    "English": dict(title="Chat with MiniMind", model="Model", history="History messages kept",
                    temperature="Temperature (0 = greedy)", max_new="Max new tokens", clear="Clear chat",
                    regenerate="Regenerate", ask="Ask something…",
                    none="no model in {}: run python scripts/quickstart.py first, or pass --out_dir / --load_from "
                         "after --"),
}
NATIVE = re.compile(r"(?P<stage>.+)_(?P<hidden>\d+)(?P<moe>_moe)?\.pth")


@st.cache_data
def size_from_shapes(path: str, mtime: float, heads: int | None) -> dict:
    """Size flags read off a checkpoint's tensor shapes (mtime: a rewritten file is read again). Shapes cannot tell
    the head count (8 heads of 64 and 4 of 128 are the same matrices): it is the flag's, else a preset's of this
    width and depth, else 8 (all MiniMind2 sizes)."""
    sd = load_state_dict(path)
    hidden = sd["model.embed_tokens.weight"].shape[1]
    layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("model.layers."))
    moe = "model.layers.0.mlp.gate.weight" in sd
    ffn = sd[f"model.layers.0.mlp.{'experts.0.' if moe else ''}gate_proj.weight"].shape[0]
    same = [p for p in PRESETS.values() if (p["hidden_size"], p["num_hidden_layers"]) == (hidden, layers)]
    heads = heads or (same[0].get("num_attention_heads", 8) if same else 8)
    kv_heads = sd["model.layers.0.self_attn.k_proj.weight"].shape[0] // (hidden // heads)
    return dict(hidden_size=hidden, num_hidden_layers=layers, intermediate_size=ffn, use_moe=int(moe),
                num_attention_heads=heads, num_key_value_heads=kv_heads)


def find_models(args) -> dict[str, dict]:
    """Label → what differs from the flags' ModelSource to load it."""
    found = {}
    for path in sorted(glob.glob(os.path.join(args.out_dir, "*.pth"))):
        if m := NATIVE.fullmatch(os.path.basename(path)):
            size = size_from_shapes(path, os.path.getmtime(path), args.num_attention_heads)
            label = f"{m['stage']} · {size['hidden_size']}×{size['num_hidden_layers']}{' MoE' if m['moe'] else ''}"
            found[label] = {"weight": m["stage"], "load_from": None, "sizes": size}
    folders = [os.path.dirname(c) for c in sorted(glob.glob(os.path.join(args.out_dir, "*", "config.json")))]
    for folder in folders + ([args.load_from] if args.load_from else []):
        found[f"HF · {folder}"] = {"load_from": folder}
    return found


@st.cache_resource(show_spinner="loading the model…")
def load(key: str, _source: ModelSource, device: str | None):
    """key: the source's repr (streamlit does not hash arguments named with a leading underscore)."""
    return load_model(_source, pick_device(device, allow_mps=False))


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    add_sampling_args(p)
    p.add_argument("--history_cnt", type=int, default=0, help="previous messages kept (the sidebar's start value)")
    return p


def reply(model, tokenizer, is_chat, messages, history_cnt, **sampling) -> TextStream:
    if is_chat:  # the question and the history_cnt messages before it
        text = tokenizer.apply_chat_template(messages[-history_cnt - 1:], tokenize=False, add_generation_prompt=True)
    else:  # a pretrained model has no chat template: it continues the text
        text = tokenizer.bos_token + messages[-1]["content"]
    ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)], device=model.device)
    return TextStream(model, tokenizer, ids, **sampling)


def main():
    args = build_parser().parse_args(sys.argv[1:])
    # quickstart trains its own tokenizer into out_dir/tokenizer, and its models only fit that one
    own = os.path.join(args.out_dir, "tokenizer")
    if args.tokenizer_dir == DEFAULT_TOKENIZER_DIR and os.path.isfile(os.path.join(own, "tokenizer.json")):
        args.tokenizer_dir = own
    st.set_page_config(page_title="MiniMind", page_icon="🤖")
    side = st.sidebar
    t = UI[side.radio("语言 / Language", list(UI), horizontal=True)]
    st.title(t["title"])
    models = find_models(args)
    if not models:
        st.warning(t["none"].format(args.out_dir))
        st.stop()
    first = next((i for i, m in enumerate(models.values()) if m.get("weight") == args.weight), 0)  # --weight's
    choice = side.selectbox(t["model"], list(models), index=first)
    history_cnt = side.slider(t["history"], 0, 16, args.history_cnt, step=2)
    temperature = side.slider(t["temperature"], 0.0, 2.0, args.temperature, 0.05)
    top_p = side.slider("top_p", 0.05, 1.0, args.top_p, 0.05)
    max_new_tokens = side.number_input(t["max_new"], 1, 8192, args.max_new_tokens)
    left, right = side.columns(2)
    clear, regenerate = left.button(t["clear"]), right.button(t["regenerate"])
    try:
        base, entry = ModelSource.from_args(args), models[choice]
        source = dataclasses.replace(base, **{**entry, "sizes": {**base.sizes, **entry.get("sizes", {})}})
        model, tokenizer, is_chat = load(repr(source), source, args.device)
    except (FileNotFoundError, ValueError) as e:
        st.error(str(e))
        st.stop()

    messages = st.session_state.setdefault("messages", [])
    if clear:
        messages.clear()
    if regenerate and messages and messages[-1]["role"] == "assistant":
        messages.pop()  # its question is now last, and gets a fresh answer below
    for m in messages:
        st.chat_message(m["role"]).markdown(m["content"])
    if prompt := st.chat_input(t["ask"]):
        messages.append({"role": "user", "content": prompt})
        st.chat_message("user").markdown(prompt)
    if messages and messages[-1]["role"] == "user":
        stream = reply(model, tokenizer, is_chat, messages, history_cnt, max_new_tokens=int(max_new_tokens),
                       temperature=temperature, top_p=top_p, top_k=args.top_k,
                       repetition_penalty=args.repetition_penalty)
        with st.chat_message("assistant"):
            answer = st.write_stream(stream)
        messages.append({"role": "assistant", "content": answer if isinstance(answer, str) else ""})


if __name__ == "__main__":
    main()
