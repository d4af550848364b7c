"""Chat with a MiniMind model in the browser (Streamlit), replies streamed as they are generated.

    streamlit run scripts/web_demo.py                                           # the models in out/
    streamlit run scripts/web_demo.py -- --out_dir /tmp/x --preset tiny --tokenizer_dir /tmp/x/tokenizer

Flags after `--` are eval_model.py's model and sampling flags: --out_dir, --tokenizer_dir, --lora_weight, --load_from, size flags, and the
sampling defaults the sidebar starts from. The model list holds every `{out_dir}/{stage}_{hidden}[_moe].pth` and every
Hugging Face folder (one with a config.json) in out_dir, plus --load_from.

The sidebar's thinking switch (auto / on / off) is the chat template's enable_thinking (unset / True / False); a
reply's think block is shown folded above its answer. The tools switch (off at first) hands the model the world's
tools — calculator, weekday, days_after, and lookup_person when a world.json is found (--world_dir, else {out_dir}/world as
quickstart writes it) — and runs the calls it writes: each call and its result are shown in the conversation and go
back to the model, for up to --max_turns replies per question. A tokenizer without the tool tokens (a MiniMind2
folder) or a pretrained model leaves the switch off, with a note saying why.
"""
import argparse
import dataclasses
import glob
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import streamlit as st  # noqa: E402
import torch  # noqa: E402

from dataset.tool_messages import require_tool_tokens, template_arguments  # noqa: E402
from model.args import add_sampling_args, add_source_args  # noqa: E402
from model.device import pick_device  # noqa: E402
from model.loading import ModelSource, load_model  # noqa: E402
from model.model_minimind import PRESETS  # noqa: E402
from model.streaming import TextStream  # noqa: E402
from model.tokenizer import DEFAULT_TOKENIZER_DIR  # noqa: E402
from model.weights import load_state_dict  # noqa: E402
from toolcall.parse import ParsedReply, parse_reply  # noqa: E402
from toolcall.registry import ToolBox  # noqa: E402
from toolcall.world import read_world_people, world_toolbox  # noqa: E402

UI = {
    "中文": dict(title="MiniMind 对话", model="模型", history="携带的历史消息数", temperature="温度（0 = 贪心）",
               max_new="最多生成的 token 数", clear="清空对话", regenerate="重新生成", ask="输入你的问题……",
               none="{} 里没有模型：先运行 python scripts/quickstart.py，或在 -- 之后传入 --out_dir / --load_from",
               thinking="思考", modes=dict(auto="自动", on="开", off="关"), thought="思考过程", tools="工具",
               tool_call="工具调用", tool_result="工具结果", no_tools="此模型不能用工具：{}",
               pretrain="预训练模型没有对话模板", malformed="工具调用格式有误，未执行（{}）：原文如上",
               rounds="已达到每个问题 {} 次回复的上限，停止调用工具", unfinished="（思考未结束，回复就到了长度上限）"),
    "English": dict(title="Chat with MiniMind", model="Model", history="History messages kept",
                    temperature="Temperature (0 = greedy)", max_new="Max new tokens", clear="Clear chat",
                    regenerate="Regenerate", ask="Ask something…",
                    none="no model in {}: run python scripts/quickstart.py first, or pass --out_dir / --load_from "
                         "after --",
                    thinking="Thinking", modes=dict(auto="auto", on="on", off="off"), thought="Thinking",
                    tools="Tools", tool_call="Tool call", tool_result="Tool result",
                    no_tools="this model cannot use tools: {}", pretrain="a pretrained model has no chat template",
                    malformed="malformed tool call, not run ({}): the raw reply is shown above",
                    rounds="stopped calling tools: {} replies per question at most",
                    unfinished="(the reply reached its length limit while still thinking)"),
}
THOUGHT_ICON, TOOL_ICON = ":material/psychology:", ":material/build:"  # Streamlit's bundled icon font
NATIVE = re.compile(r"(?P<stage>.+)_(?P<hidden>\d+)(?P<moe>_moe)?\.pth")
THINKING = {"auto": None, "on": True, "off": False}  # the sidebar's choice → the chat template's enable_thinking
TEMPLATE_KEYS = ("role", "content", "reasoning_content", "tool_calls")  # the rest of a stored message is display only
_OPEN_THINK = re.compile(r"\s*<think>(.*?)(</think>|\Z)", re.S)


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


@st.cache_resource(show_spinner=False)
def world_tools(world_dir: str | None, mtime: float | None) -> tuple[ToolBox, str | None]:
    """(the world's toolbox, a warning when the world file cannot be read). mtime: a rewritten file is read again."""
    if world_dir is None:
        return world_toolbox(), None
    try:
        return world_toolbox(read_world_people(world_dir)), None
    except OSError as e:
        return world_toolbox(), f"{os.path.join(world_dir, 'world.json')}: {e.strerror or e}; lookup_person is off"
    except ValueError as e:
        return world_toolbox(), f"{e}; lookup_person is off"


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    add_sampling_args(p)
    p.add_argument("--history_cnt", type=int, default=0, help="previous messages kept (the sidebar's start value)")
    p.add_argument("--world_dir", default=None,
                   help="folder with the world.json whose people lookup_person knows (default: {out_dir}/world when "
                        "it holds one)")
    p.add_argument("--max_turns", type=int, default=3, help="model replies per question with tools on")
    return p


def window(messages: list[dict], history_cnt: int) -> list[dict]:
    """The last question, what followed it (this turn's tool calls and results), and the history_cnt messages before
    it — from a question on, never from inside an earlier turn's tool round; earlier turns' thinking is left out."""
    q = max(i for i, m in enumerate(messages) if m["role"] == "user")
    start = max(0, q - history_cnt)
    while messages[start]["role"] != "user":
        start += 1
    out = []
    for i in range(start, len(messages)):
        m = {k: v for k, v in messages[i].items() if k in TEMPLATE_KEYS}
        if i < q:
            m.pop("reasoning_content", None)
        out.append(m)
    return out


def prompt_text(tokenizer, is_chat, messages, history_cnt, tools=None, thinking=None) -> str:
    """The text the model continues: the chat template over the window (tools in the system turn), or for a
    pretrained model, which has no chat template, the question itself."""
    if not is_chat:
        return tokenizer.bos_token + messages[-1]["content"]
    convo = window(messages, history_cnt)
    if tools:
        convo = [{"role": "system", "content": "", "tools": tools}] + convo
    convo, extra = template_arguments(convo)
    if thinking is not None:
        extra["enable_thinking"] = thinking
    return tokenizer.apply_chat_template(convo, tokenize=False, add_generation_prompt=True, **extra)


def generate(model, tokenizer, text: str, **sampling):
    """The model's reply to text, as text pieces while they are generated."""
    ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)], device=model.device)
    return TextStream(model, tokenizer, ids, **sampling)


def split_reply(text: str) -> ParsedReply:
    """parse_reply, plus a think block the length limit cut off: all of it is thinking, nothing the answer."""
    parsed = parse_reply(text)
    if parsed.reasoning is None and (m := _OPEN_THINK.match(text)) and not m[2]:
        return ParsedReply("", m[1].strip("\n"))
    return parsed


def reply_message(text: str, use_tools: bool) -> dict:
    """The assistant message a reply becomes: thinking apart, and its tool calls when tools are on. A malformed
    call (or any call with tools off) stays in the text, which is then shown as it is."""
    parsed = split_reply(text)
    m = {"role": "assistant"}
    if parsed.reasoning is not None:
        m["reasoning_content"] = parsed.reasoning
    if use_tools and parsed.tool_calls:
        m["content"] = parsed.content
        m["tool_calls"] = [{"type": "function", "function": c} for c in parsed.tool_calls]
        return m
    if parsed.reasoning is None:
        body = text
    else:  # the text after the think block; none when the length limit cut the thinking off
        body = text.split("</think>", 1)[1] if "</think>" in text else ""
        if "</think>" not in text:
            m["unfinished"] = True
    m["content"] = body.strip()
    if use_tools and parsed.error:
        m["error"] = parsed.error
    return m


def literal(text: str) -> str:
    """Markdown that shows text's tags (<tool_call>, <think>, …) as written instead of dropping them as HTML."""
    return text.replace("<", "\\<")


def show_call(call: dict, result: str | None, t: dict):
    fn = call.get("function", call)
    box = st.container(border=True)
    box.caption(f"{TOOL_ICON} {t['tool_call']} · `{fn['name']}`")
    box.code(json.dumps(fn["arguments"], ensure_ascii=False), language="json")
    if result is not None:
        box.caption(f"↳ {t['tool_result']}")
        box.code(result, language=None)


def show_reply(m: dict, results: list[str], t: dict):
    """One assistant message: its thinking folded, its text, each tool call with its result."""
    if m.get("reasoning_content"):
        st.expander(t["thought"], icon=THOUGHT_ICON, expanded=False).markdown(literal(m["reasoning_content"]))
    if m["content"]:
        st.markdown(literal(m["content"]))
    if m.get("unfinished"):
        st.caption(t["unfinished"])
    if m.get("error"):
        st.caption(t["malformed"].format(m["error"]))
    calls = m.get("tool_calls") or []
    for j, call in enumerate(calls):
        show_call(call, results[j] if j < len(results) else None, t)


def show_partial(text: str, t: dict):
    """A reply still being generated: its thinking in small print until the think block closes, then folded."""
    rest = text
    if m := _OPEN_THINK.match(text):
        if not m[2]:
            st.caption(f"{THOUGHT_ICON} {literal(m[1])}")
            return
        st.expander(t["thought"], icon=THOUGHT_ICON, expanded=False).markdown(literal(m[1].strip("\n")))
        rest = text[m.end():]
    st.markdown(literal(rest) + "▌")


def show_history(messages: list[dict], t: dict):
    """The conversation: each question, then one assistant bubble for all the replies and tool results after it."""
    i = 0
    while i < len(messages):
        if messages[i]["role"] == "user":
            st.chat_message("user").markdown(messages[i]["content"])
            i += 1
            continue
        with st.chat_message("assistant"):
            while i < len(messages) and messages[i]["role"] != "user":
                m, i = messages[i], i + 1
                results = []
                while i < len(messages) and messages[i]["role"] == "tool":
                    results.append(messages[i]["content"])
                    i += 1
                if m["role"] == "assistant":
                    show_reply(m, results, t)
                else:  # tool results without their call (cannot come from this page)
                    for r in [m["content"], *results]:
                        st.code(r, language=None)
            if limit := messages[i - 1].get("limit"):
                st.caption(t["rounds"].format(limit))


def answer(messages: list[dict], t: dict, model, tokenizer, is_chat: bool, history_cnt: int, toolbox: ToolBox | None,
           thinking: bool | None, max_turns: int, **sampling):
    """Replies to the last question, streamed; with a toolbox, each reply's tool calls are run and the model asked
    again, max_turns replies at most. Every reply and tool result is appended to messages as it comes."""
    tools = toolbox.schemas() if toolbox else None
    for _ in range(max(1, max_turns) if toolbox else 1):
        slot = st.empty()
        text = "<think>\n" if is_chat and thinking is True else ""  # the template opened the think block
        for piece in generate(model, tokenizer, prompt_text(tokenizer, is_chat, messages, history_cnt, tools,
                                                             thinking), **sampling):
            if piece:
                text += piece
                with slot.container():
                    show_partial(text, t)
        m = reply_message(text, toolbox is not None)
        results = [toolbox.respond(c["function"]["name"], c["function"]["arguments"]) for c in m.get("tool_calls", [])]
        messages.append(m)
        messages.extend({"role": "tool", "content": r} for r in results)
        with slot.container():
            show_reply(m, results, t)
        if not results:
            return
    messages[-1]["limit"] = max_turns  # the turns ran out with tool results unanswered
    st.caption(t["rounds"].format(max_turns))


def tools_unavailable(tokenizer, is_chat: bool, t: dict) -> str | None:
    """Why this model cannot have tools (None: it can)."""
    if not is_chat:
        return t["pretrain"]
    try:
        require_tool_tokens(tokenizer, "tools")
    except ValueError as e:
        return t["no_tools"].format(e)
    return None


def main():
    args = build_parser().parse_args(sys.argv[1:])
    # quickstart trains its own tokenizer into out_dir/tokenizer, and its models only fit that one
    own = os.path.join(args.out_dir, "tokenizer")
    if args.tokenizer_dir == DEFAULT_TOKENIZER_DIR and os.path.isfile(os.path.join(own, "tokenizer.json")):
        args.tokenizer_dir = own
    # ... and writes its world into out_dir/world
    if args.world_dir is None and os.path.isfile(os.path.join(args.out_dir, "world", "world.json")):
        args.world_dir = os.path.join(args.out_dir, "world")
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

    mode = side.radio(t["thinking"], list(THINKING), format_func=t["modes"].get, horizontal=True, key="thinking",
                      disabled=not is_chat)
    world_json = os.path.join(args.world_dir, "world.json") if args.world_dir else None
    toolbox, world_warning = world_tools(args.world_dir,
                                         os.path.getmtime(world_json) if world_json and os.path.isfile(world_json)
                                         else None)
    why_not = tools_unavailable(tokenizer, is_chat, t)
    use_tools = side.toggle(t["tools"], value=False, key="tools", disabled=why_not is not None) and why_not is None
    if why_not:
        side.caption(literal(why_not))
    side.markdown("\n".join(f"- `{name}`: {tool.description}" for name, tool in toolbox.tools.items()))
    if world_warning:
        side.warning(world_warning)

    messages = st.session_state.setdefault("messages", [])
    if clear:
        messages.clear()
    if regenerate and messages and messages[-1]["role"] != "user":
        last_question = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
        del messages[last_question + 1:]  # its question is now last, and gets a fresh answer below
    show_history(messages, t)
    if prompt := st.chat_input(t["ask"]):
        messages.append({"role": "user", "content": prompt})
        st.chat_message("user").markdown(prompt)
    if messages and messages[-1]["role"] == "user":
        with st.chat_message("assistant"):
            answer(messages, t, model, tokenizer, is_chat, history_cnt, toolbox if use_tools else None,
                   THINKING[mode] if is_chat else None, args.max_turns, max_new_tokens=int(max_new_tokens),
                   temperature=temperature, top_p=top_p, top_k=args.top_k,
                   repetition_penalty=args.repetition_penalty)


if __name__ == "__main__":
    main()
