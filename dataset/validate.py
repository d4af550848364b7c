"""Up-front validation of one parsed jsonl line per dataset kind: a reason (ValueError) for a bad line, or a note
for an odd line that is kept."""

from dataset.tool_messages import check_tool_calls, check_tools

ROLES = ("system", "user", "assistant", "tool")


# ----------------------------------------------------------------- validators
# Module-level functions (not lambdas) so their name+code key the index cache
# (``validator_name`` also hashes the helpers they call, e.g. _check_text).

def _check_text(s, where):
    """Reject strings the tokenizer cannot take: lone UTF-16 surrogates.

    Python's json accepts them both as escapes (``"\\ud800"`` with no low
    half) and as raw bytes (``\\xed\\xa0\\x80``: json.loads decodes bytes with
    'surrogatepass'), but they are not Unicode scalar values, so the Rust
    tokenizer refuses the string (TypeError) when the sample is read, deep in
    an epoch. Caught here, the scan names file:line and skip_bad_lines can
    drop the row.
    """
    if s.isascii():  # O(1) for str; the common case costs nothing
        return
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"lone surrogate {s[e.start]!r} in {where} at character {e.start} "
                         f"(not valid Unicode; the tokenizer cannot encode it)") from None


def validate_pretrain(obj):
    if "text" not in obj:
        raise ValueError("missing field 'text'")
    if not isinstance(obj["text"], str):
        raise ValueError(f"field 'text' must be a string, got {type(obj['text']).__name__}")
    _check_text(obj["text"], "field 'text'")


def _check_messages(msgs, field):
    """Shared structural check of a chat (list of role/content dicts; tool fields as dataset/tool_messages.py)."""
    if not isinstance(msgs, list) or not msgs:
        raise ValueError(f"field '{field}' must be a non-empty list of messages")
    for j, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise ValueError(f"{field}[{j}] must be an object, got {type(m).__name__}")
        role = m.get("role")
        if role not in ROLES:
            if "role" not in m:
                raise ValueError(f"{field}[{j}] has no 'role'")
            raise ValueError(f"unknown role {role!r} in {field}[{j}] (expected one of {', '.join(ROLES)})")
        calls = m.get("tool_calls")
        if calls is not None:
            if role != "assistant":
                raise ValueError(f"{field}[{j}] ('{role}') has 'tool_calls' (only assistant messages call tools)")
            check_tool_calls(calls, f"{field}[{j}] 'tool_calls'")
        if not isinstance(m.get("content"), str) and not (calls and m.get("content") is None):
            raise ValueError(f"{field}[{j}] ('{role}') must have a string 'content', "
                             f"got {type(m.get('content')).__name__}")
        if m.get("content"):
            _check_text(m["content"], f"{field}[{j}] ('{role}') content")
        if "reasoning_content" in m:
            if role != "assistant" or not isinstance(m["reasoning_content"], str):
                raise ValueError(f"{field}[{j}] ('{role}'): 'reasoning_content' must be a string on an assistant "
                                 "message")
            _check_text(m["reasoning_content"], f"{field}[{j}] reasoning_content")
        if m.get("tools") is not None:
            if role != "system" or j != 0:
                raise ValueError(f"{field}[{j}] ('{role}') has 'tools': they belong on the first, system message")
            check_tools(m["tools"], f"{field}[{j}] 'tools'")


def validate_sft(obj):
    if "conversations" not in obj:
        raise ValueError("missing field 'conversations'")
    msgs = obj["conversations"]
    _check_messages(msgs, "conversations")
    if not any(m["role"] == "assistant" for m in msgs):
        raise ValueError("conversation has no assistant turn (nothing to supervise)")
    if msgs[-1]["role"] != "assistant":
        # Usable (earlier replies are supervised) but the final turn trains
        # nothing; upstream data has such rows, so count and warn, not fail.
        return f"conversation ends with a '{msgs[-1]['role']}' turn that has no reply (it trains nothing)"
    return None


def validate_dpo(obj):
    for field in ("chosen", "rejected"):
        if field not in obj:
            raise ValueError(f"missing field '{field}'")
        _check_messages(obj[field], field)
        if obj[field][-1]["role"] != "assistant":
            raise ValueError(f"'{field}' must end with an assistant message")
    # DPO compares two replies to the SAME prompt; differing prompts would make
    # the preference signal meaningless, so reject them up front.
    if obj["chosen"][:-1] != obj["rejected"][:-1]:
        raise ValueError("'chosen' and 'rejected' must share the prompt (all messages but the last)")


def validate_rlaif(obj):
    """upstream's rlaif rows: a chat whose last message is a user turn, or a user turn followed by one assistant
    message (a reference reply; the policy writes its own); an optional string 'answer' is the reference a reward
    checks against."""
    if "conversations" not in obj:
        raise ValueError("missing field 'conversations'")
    msgs = obj["conversations"]
    _check_messages(msgs, "conversations")
    prompt = msgs[:-1] if msgs[-1]["role"] == "assistant" else msgs
    if not prompt or prompt[-1]["role"] != "user":
        raise ValueError("the prompt (the conversation without a final assistant reply) must end with a user turn")
    if "answer" in obj and not isinstance(obj["answer"], str):
        raise ValueError(f"field 'answer' must be a string, got {type(obj['answer']).__name__}")
    if "answer" in obj:
        _check_text(obj["answer"], "field 'answer'")


def validate_agent_rl(obj):
    """upstream's agent_rl rows: an rlaif-shaped chat (tools on its system message) and `gt`, the values the final
    answer must state (a list of strings/numbers, or one string)."""
    validate_rlaif({k: v for k, v in obj.items() if k != "answer"})
    if "gt" not in obj:
        raise ValueError("missing field 'gt' (the values the final answer must state)")
    gt = obj["gt"] if isinstance(obj["gt"], list) else [obj["gt"]]
    if not gt or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in gt):
        raise ValueError("field 'gt' must be a non-empty list of strings or numbers (or one string)")
