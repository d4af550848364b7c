"""Upstream minimind-3's formats: a tokenizer folder whose chat template always writes a think block (and pre-fills
an empty one in the generation prompt unless thinking is on), its data files (pretrain_t2t, sft_t2t with
reasoning_content / tools / tool_calls / role tool, dpo, rlaif, agent_rl), and every stage training the minimind-3
preset on them for a few steps. The fixtures are written here from upstream's documented fields."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from transformers import AutoTokenizer

from dataset.lm_dataset import SFTDataset
from dataset.world import make_world

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# minimind-3's rendering rules (not its text): tools as JSON lines in the system turn; every assistant turn opens a
# think block, empty without reasoning; tool calls as <tool_call>\n{"name": …, "arguments": …}\n</tool_call>; tool
# results grouped into one user turn; the generation prompt pre-fills an empty think block unless open_thinking.
M3_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n<tools>' }}{%- for t in tools %}{{- '\\n' + (t | tojson) }}{%- endfor %}"
    "{{- '\\n</tools><|im_end|>\\n' }}"
    "{%- elif messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for m in messages %}"
    "{%- set content = m.content if m.content is string else '' %}"
    "{%- if m.role == 'user' or (m.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + m.role + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- elif m.role == 'assistant' %}"
    "{%- set reasoning = m.reasoning_content if m.reasoning_content is string else '' %}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + content }}"
    "{%- for c in (m.tool_calls or []) %}{%- set f = c.function if c.function is defined else c %}"
    "{{- ('\\n' if content or not loop.first else '') + '<tool_call>\\n{\"name\": \"' + f.name + '\", \"arguments\": '"
    " + (f.arguments if f.arguments is string else f.arguments | tojson) + '}\\n</tool_call>' }}"
    "{%- endfor %}{{- '<|im_end|>\\n' }}"
    "{%- elif m.role == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{{- '<think>\\n' if open_thinking is defined and open_thinking else '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
)
CALC = {"type": "function", "function": {"name": "calculator", "description": "Evaluate arithmetic.",
                                         "parameters": {"type": "object", "properties": {
                                             "expression": {"type": "string"}}, "required": ["expression"]}}}
TOOL_CHAT = [  # as upstream stores it: tools and tool_calls as JSON strings
    {"role": "system", "content": "你是助手。", "tools": json.dumps([CALC], ensure_ascii=False)},
    {"role": "user", "content": "2加5等于几？"},
    {"role": "assistant", "content": "", "reasoning_content": "用计算器算一下。",
     "tool_calls": json.dumps([{"name": "calculator", "arguments": {"expression": "2+5"}}])},
    {"role": "tool", "content": "7"},
    {"role": "assistant", "content": "2加5等于7。"},
]
PLAIN_CHAT = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！我是MiniMind。"}]
SIZE = ["--preset", "minimind-3", "--hidden_size", "64", "--num_hidden_layers", "2", "--num_attention_heads", "4",
        "--num_key_value_heads", "2"]


@pytest.fixture(scope="module")
def m3_tokenizer_dir(tmp_path_factory, tiny_tokenizer_dir):
    out = tmp_path_factory.mktemp("m3_tokenizer")
    shutil.copy(os.path.join(tiny_tokenizer_dir, "tokenizer.json"), out)
    with open(os.path.join(tiny_tokenizer_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    with open(out / "tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump({**config, "chat_template": M3_TEMPLATE}, f, ensure_ascii=False)
    return str(out)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(path)


def supervised_runs(tok, ids, labels):
    """The decoded text of each contiguous run of supervised tokens."""
    runs, cur = [], []
    for i, lab in zip(ids, labels):
        if lab != -100:
            cur.append(int(i))
        elif cur:
            runs.append(tok.decode(cur))
            cur = []
    return runs + ([tok.decode(cur)] if cur else [])


def test_sft_masks_with_minimind3_template(m3_tokenizer_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(m3_tokenizer_dir)
    path = write_jsonl(tmp_path / "sft_t2t_mini.jsonl", [{"conversations": TOOL_CHAT}, {"conversations": PLAIN_CHAT}])
    ds = SFTDataset(path, tok, max_seq_len=512)
    row = ds[0]
    ids, labels = row["input_ids"].numpy(), row["labels"].numpy()
    text = tok.decode(ids[ids != tok.pad_token_id])
    assert "<think>\n用计算器算一下。\n</think>" in text and "<tool_response>\n7\n</tool_response>" in text
    # the reasoning, the call and <|im_end|> are learned; the think opener, the tool result and the empty think
    # block of the answer turn are prompt (the generation prompt writes them)
    assert supervised_runs(tok, ids, labels) == [
        '用计算器算一下。\n</think>\n\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+5"}}\n'
        '</tool_call><|im_end|>',
        "2加5等于7。<|im_end|>"]
    plain = ds[1]
    assert supervised_runs(tok, plain["input_ids"].numpy(), plain["labels"].numpy()) == ["你好！我是MiniMind。<|im_end|>"]
    assert not np.any(labels[ids == tok.pad_token_id] != -100)


def test_every_stage_trains_the_minimind3_preset_on_upstream_files(m3_tokenizer_dir, tmp_path):
    data = tmp_path / "dataset"
    data.mkdir()
    world = tmp_path / "world"
    make_world(world, seed=0, n_people=20, n_tool_sft=10, n_agent_rl=16, n_directory=20)
    pretrain = write_jsonl(data / "pretrain_t2t_mini.jsonl",
                           [{"text": f"第{i}段：Transformer 通过自注意力机制建模上下文关系。MiniMind is small."}
                            for i in range(16)])
    sft = write_jsonl(data / "sft_t2t_mini.jsonl", [{"conversations": TOOL_CHAT}, {"conversations": PLAIN_CHAT}] * 8)
    dpo = write_jsonl(data / "dpo.jsonl", [{"chosen": PLAIN_CHAT, "rejected": [PLAIN_CHAT[0], {
        "role": "assistant", "content": "不知道。"}]}] * 8)
    rlaif = write_jsonl(data / "rlaif.jsonl", [{"conversations": [{"role": "user", "content": "介绍一下你自己。"},
                                                                   {"role": "assistant", "content": ""}]}] * 8)
    agent = write_jsonl(data / "agent_rl.jsonl", [{"conversations": TOOL_CHAT[:2], "gt": ["7"]}] * 8)
    out = str(tmp_path / "out")
    common = [*SIZE, "--tokenizer_dir", m3_tokenizer_dir, "--out_dir", out, "--device", "cpu", "--dtype", "float32",
              "--batch_size", "2", "--max_seq_len", "160", "--max_steps", "2", "--log_interval", "1"]
    rl = ["--num_generations", "2", "--max_gen_len", "8", "--from_weight", "full_sft"]
    stages = [
        ("train_pretrain.py", ["--data_path", pretrain], "pretrain_64.pth"),
        ("train_full_sft.py", ["--data_path", sft], "full_sft_64.pth"),
        ("train_lora.py", ["--data_path", sft, "--lora_name", "lora_m3"], "lora/lora_m3_64.pth"),
        ("train_dpo.py", ["--data_path", dpo], "dpo_64.pth"),
        ("train_distillation.py", ["--data_path", sft, "--teacher_weight", "full_sft", "--teacher_preset",
                                   "minimind-3", "--teacher_hidden_size", "64", "--teacher_num_hidden_layers", "2",
                                   "--teacher_num_attention_heads", "4", "--teacher_num_key_value_heads", "2"],
         "full_dist_64.pth"),
        ("train_grpo.py", ["--data_path", rlaif, *rl, "--reward_funcs", "repetition,length"], "grpo_64.pth"),
        ("train_ppo.py", ["--data_path", rlaif, *rl, "--reward_funcs", "repetition,length"], "ppo_64.pth"),
        ("train_agent.py", ["--data_path", agent, *rl, "--world_dir", str(world), "--max_seq_len", "400"],
         "agent_64.pth"),
    ]
    for script, flags, weight in stages:
        proc = subprocess.run([sys.executable, script, *common, *flags], cwd=REPO, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, f"{script}: {proc.stderr[-3000:]}"
        assert os.path.isfile(os.path.join(out, weight)), (script, os.listdir(out))
    # a row found bad only when read stops the run with its file:line, not a traceback
    proc = subprocess.run([sys.executable, "train_agent.py", *common, "--data_path", agent, *rl, "--world_dir",
                           str(world)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode != 0 and "agent_rl.jsonl:1: the prompt is" in proc.stderr
    assert "Traceback" not in proc.stderr
