"""Reading replies: think block, tool calls, and malformed calls kept as content."""
from toolcall.parse import parse_reply


def test_call_with_reasoning():
    r = parse_reply('<think>\nneed it\n</think>\n<tool_call>{"name": "calculator", "arguments": '
                    '{"expression": "2+5"}}</tool_call>')
    assert r.reasoning == "need it" and r.content == "" and r.error is None
    assert r.tool_calls == [{"name": "calculator", "arguments": {"expression": "2+5"}}]


def test_two_calls_content_and_string_arguments():
    r = parse_reply('Looking.\n<tool_call>{"name": "a", "arguments": "{\\"x\\": 1}"}</tool_call>\n'
                    '<tool_call>{"name": "b"}</tool_call>')
    assert r.content == "Looking." and r.tool_calls == [{"name": "a", "arguments": {"x": 1}},
                                                         {"name": "b", "arguments": {}}]


def test_plain_reply():
    r = parse_reply("<think>\n\n</think>\n<answer>\n7\n</answer>")
    assert r.reasoning == "" and r.content == "<answer>\n7\n</answer>" and not r.tool_calls and r.error is None


def test_malformed_calls_stay_content():
    for text, why in [('<tool_call>{bad</tool_call>', "not valid JSON"),
                      ('<tool_call>{"name": "a"', "unclosed"),
                      ('<tool_call>["a"]</tool_call>', "non-empty string 'name'"),
                      ('<tool_call>{"name": "a", "arguments": [1]}</tool_call>', "JSON object"),
                      ('<tool_call>{"name": "a", "arguments": "{x"}</tool_call>', "not valid JSON"),
                      ('ok <tool_call>{"name": "a"}</tool_call> <tool_call>{"name": 3}</tool_call>', "'name'")]:
        r = parse_reply(text)
        assert r.tool_calls == [] and r.content == text.strip() and why in r.error
