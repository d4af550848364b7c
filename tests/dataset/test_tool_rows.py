"""Tool-use chats: the chat template's rendering of tools / tool_calls / tool / reasoning_content and the thinking
switch, upstream minimind-3's row shapes in SFTDataset, and their loss masks token by token."""
import json
import os

import pytest
from transformers import AutoTokenizer

from dataset.lm_dataset import IGNORE_INDEX, SFTDataset

EOS = 2
TOOLS = [{"type": "function", "function": {"name": "calculator", "description": "calc",
                                           "parameters": {"type": "object",
                                                          "properties": {"expression": {"type": "string"}},
                                                          "required": ["expression"]}}}]
TOOL_CHAT = [
    {"role": "system", "content": "You are MiniMind."},
    {"role": "user", "content": "2+5?"},
    {"role": "assistant", "content": "", "reasoning_content": "I need the calculator.",
     "tool_calls": [{"type": "function", "function": {"name": "calculator", "arguments": {"expression": "2+5"}}}]},
    {"role": "tool", "content": "7"},
    {"role": "assistant", "content": "<answer>\n7\n</answer>", "reasoning_content": ""},
]
RENDERED = (
    "<|im_start|>system\nYou are MiniMind.\n\n"
    "# Tools\nCall a tool as <tool_call>{\"name\": <tool>, \"arguments\": {…}}</tool_call>:\n"
    "- calculator(expression: string): calc<|im_end|>\n"
    "<|im_start|>user\n2+5?<|im_end|>\n"
    "<|im_start|>assistant\n<think>\nI need the calculator.\n</think>\n"
    "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2+5\"}}</tool_call><|im_end|>\n"
    "<|im_start|>user\n<tool_response>7</tool_response><|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n<answer>\n7\n</answer><|im_end|>\n"
)


@pytest.fixture(scope="module")
def tok(tiny_tokenizer_dir):
    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def render(tok, messages, **kw):
    return tok.apply_chat_template(messages, tokenize=False, **kw)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return str(path)


def upstream_row():
    """The same chat as upstream minimind-3 stores it: tools on the system message and tool_calls as JSON strings,
    bare {"name", "arguments"} calls, a null content beside the calls."""
    sys_msg = {**TOOL_CHAT[0], "tools": json.dumps(TOOLS)}
    call = {**TOOL_CHAT[2], "content": None,
            "tool_calls": json.dumps([{"name": "calculator", "arguments": {"expression": "2+5"}}])}
    return {"conversations": [sys_msg, TOOL_CHAT[1], call, *TOOL_CHAT[3:]]}


def test_template_renders_tools_calls_responses_and_reasoning_exactly(tok, tmp_path):
    assert render(tok, TOOL_CHAT, tools=TOOLS) == RENDERED
    # arguments given as a JSON string (as OpenAI clients send them) render the same
    calls = [{"type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2+5"}'}}]
    assert render(tok, TOOL_CHAT[:2] + [{**TOOL_CHAT[2], "tool_calls": calls}] + TOOL_CHAT[3:], tools=TOOLS) == RENDERED
    # a saved folder renders the same text through AutoTokenizer
    tok.save_pretrained(tmp_path / "saved")
    assert render(AutoTokenizer.from_pretrained(tmp_path / "saved"), TOOL_CHAT, tools=TOOLS) == RENDERED


def test_template_tool_corner_cases(tok):
    # tools without a system message open their own system turn
    out = render(tok, [{"role": "user", "content": "hi"}], tools=TOOLS, add_generation_prompt=True)
    assert out.startswith("<|im_start|>system\n# Tools\nCall a tool as") and out.endswith("<|im_start|>user\nhi<|im_end|>\n"
                                                                          "<|im_start|>assistant\n")
    # content before calls, two calls, two consecutive tool results in one turn
    two = [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Let me look.", "tool_calls": two},
            {"role": "tool", "content": "1"}, {"role": "tool", "content": "2"}]
    assert render(tok, msgs) == (
        "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nLet me look.\n"
        "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n"
        "<tool_call>{\"name\": \"b\", \"arguments\": {\"x\": 1}}</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>1</tool_response>\n<tool_response>2</tool_response><|im_end|>\n")
    # a plain chat renders exactly as without tool support
    plain = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    assert render(tok, plain) == "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nu<|im_end|>\n" \
                                 "<|im_start|>assistant\na<|im_end|>\n"


def test_tool_signatures(tok):
    """One line per tool: name, parameters (optional ones marked ?), types or allowed values, description."""
    tools = [{"type": "function", "function": {
                "name": "lookup", "description": "Find it.",
                "parameters": {"type": "object", "properties": {"name": {"type": "string"},
                                                                "field": {"type": "string", "enum": ["a", "b"]},
                                                                "limit": {"type": "integer"}, "raw": {}},
                               "required": ["name", "field"]}}},
             {"name": "now"}]  # a bare function, no parameters, no description
    out = render(tok, [{"role": "user", "content": "q"}], tools=tools)
    assert "\n- lookup(name: string, field: a|b, limit?: integer, raw?: any): Find it.\n- now()<|im_end|>" in out


@pytest.mark.parametrize("kwargs, tail", [
    ({}, "<|im_start|>assistant\n"),
    ({"enable_thinking": True}, "<|im_start|>assistant\n<think>\n"),
    ({"enable_thinking": False}, "<|im_start|>assistant\n<think>\n\n</think>\n"),
    ({"open_thinking": True}, "<|im_start|>assistant\n<think>\n"),
    ({"open_thinking": False}, "<|im_start|>assistant\n<think>\n\n</think>\n"),
    ({"enable_thinking": False, "open_thinking": True}, "<|im_start|>assistant\n<think>\n\n</think>\n"),
])
def test_thinking_switch(tok, kwargs, tail):
    out = render(tok, [{"role": "user", "content": "hi"}], add_generation_prompt=True, **kwargs)
    assert out == "<|im_start|>user\nhi<|im_end|>\n" + tail


def test_tool_tokens_are_single_and_survive_decoding(tok):
    ids = tok.encode("<tool_call>x</tool_call><tool_response>y</tool_response>", add_special_tokens=False)
    assert [i for i in ids if i in (7, 8, 9, 10)] == [7, 8, 9, 10]
    assert tok.decode(ids, skip_special_tokens=True) == "<tool_call>x</tool_call><tool_response>y</tool_response>"


def test_sft_tool_row_mask_token_by_token(tok, tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", [upstream_row()])
    item = SFTDataset(path, tok, max_seq_len=512)[0]
    ids, labels = item["input_ids"].tolist(), item["labels"].tolist()
    expected = tok(RENDERED, add_special_tokens=False)["input_ids"]
    assert ids[:len(expected)] == expected  # the upstream row renders as the normalised chat

    # expected labels, built piece by piece: only the two assistant replies (their <think>, the call text, the
    # answer and each closing <|im_end|>) are supervised; system+tools, user, tool results and headers are not
    head, rest = RENDERED.split("<|im_start|>assistant\n", 1)
    reply1, rest = rest.split("<|im_end|>\n", 1)
    middle, rest = rest.split("<|im_start|>assistant\n", 1)
    reply2 = rest[:-len("<|im_end|>\n")]
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    pieces = [(head + "<|im_start|>assistant\n", False), (reply1, True), ("<|im_end|>", True),
              ("\n" + middle + "<|im_start|>assistant\n", False), (reply2, True), ("<|im_end|>", True), ("\n", False)]
    want = []
    for text, supervised in pieces:
        piece = enc(text)
        want += piece if supervised else [IGNORE_INDEX] * len(piece)
    assert labels[:len(want)] == want and all(x == IGNORE_INDEX for x in labels[len(want):])
    supervised_text = tok.decode([x for x in labels if x != IGNORE_INDEX])
    assert "<tool_call>{\"name\": \"calculator\"" in supervised_text and "<tool_response>" not in supervised_text
    assert "# Tools" not in supervised_text and supervised_text.count("<|im_end|>") == 2


@pytest.mark.parametrize("conv, reason", [
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": "[{"}],
     "'tool_calls' is a string but not valid JSON"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [{"arguments": {}}]}],
     "string 'name'"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "",
                                         "tool_calls": [{"name": "f", "arguments": "[1]"}]}], "JSON object"),
    ([{"role": "user", "content": "q", "tool_calls": []}, {"role": "assistant", "content": "a"}],
     "only assistant messages call tools"),
    ([{"role": "user", "content": "q", "tools": []}, {"role": "assistant", "content": "a"}],
     "they belong on the first, system message"),
    ([{"role": "system", "content": "", "tools": "{}"}, {"role": "user", "content": "q"},
      {"role": "assistant", "content": "a"}], "must be a list"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": 3}],
     "'reasoning_content' must be a string"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": None}], "string 'content'"),
    ([{"role": "user", "content": "q"}, {"role": "function", "content": "x"}, {"role": "assistant", "content": "a"}],
     "unknown role 'function'"),
])
def test_bad_tool_rows_name_file_and_line(tok, tmp_path, conv, reason):
    path = write_jsonl(tmp_path / "sft.jsonl", [upstream_row(), {"conversations": conv}])
    with pytest.raises(ValueError) as e:
        SFTDataset(path, tok)
    assert f"{os.path.abspath(path)}:2: " in str(e.value) and reason in str(e.value)


def test_tokenizer_without_tool_tokens_is_a_clear_error(no_tool_tokenizer_dir, tmp_path):
    # a MiniMind2-style folder: ids 7-10 are ordinary pieces, not the tool tags
    folder = no_tool_tokenizer_dir
    old = AutoTokenizer.from_pretrained(folder)
    plain = {"conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path = write_jsonl(tmp_path / "sft.jsonl", [plain, upstream_row()])
    ds = SFTDataset(path, old, max_seq_len=64)
    assert (ds[0]["labels"] != IGNORE_INDEX).any()  # every other row still works
    with pytest.raises(ValueError, match=r"sft.jsonl:2: rows with tools need the tool tokens"):
        ds[1]
