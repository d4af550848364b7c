"""Scoring a model's free-text reply against the expected answer string.

Fact questions are scored by containment in the reply's first sentence, reasoning replies by the exact text of their
<answer> block; both are lenient about whitespace and case, never about the value itself.
"""
import re


def _normalize(s: str) -> str:
    return " ".join(s.split()).casefold()


def check_answer(reply: str, answer: str) -> bool:
    """True if the expected answer string occurs in the model reply (whitespace runs collapsed, case ignored)."""
    answer = _normalize(answer)
    return bool(answer) and answer in _normalize(reply)


# A sentence ends at 。！？!? or at a period followed by whitespace or the end ("3.5" and "Dr.X" do not end one).
SENTENCE_END = re.compile(r"[。！？!?]|\.(?=\s|$)")
_FIRST_SENTENCE = re.compile(rf".*?(?:{SENTENCE_END.pattern}|$)", re.S)


def first_sentence(reply: str) -> str:
    return _FIRST_SENTENCE.match(reply.strip()).group(0)


def check_fact_answer(reply: str, answer: str) -> bool:
    """check_answer on the reply's FIRST sentence: a fact question has a one-sentence answer, and a reply that lists
    everything it knows about the person would otherwise be right about every attribute."""
    return check_answer(first_sentence(reply), answer)


_REASON_RE = re.compile(r"\A(?:<think>\n(?P<think>.*?)\n</think>\n)?<answer>\n(?P<answer>.*?)\n</answer>\Z", re.S)


def split_reasoning(reply: str) -> tuple[str | None, str | None]:
    """Split '<think>\\n..\\n</think>\\n<answer>\\n..\\n</answer>' into (think, answer); None where a part is missing.

    A reply that is not exactly in that format still yields the text of its first <answer>...</answer> block, so an
    evaluator can compare the extracted answer EXACTLY (containment would accept "17" for "7")."""
    m = _REASON_RE.match(reply.strip())
    if m:
        return m.group("think"), m.group("answer").strip()
    loose = re.search(r"<answer>(.*?)</answer>", reply, re.S)
    return None, (loose.group(1).strip() if loose else None)


def extract_choice(reply: str) -> str | None:
    """The letter a multiple-choice reply chose: the first character of its <answer> block (a reply that reasons
    first), else of the reply itself; None when that is not A-D."""
    _think, answer = split_reasoning(reply)
    picked = (answer if answer is not None else reply).strip()[:1].upper()
    return picked if picked in ("A", "B", "C", "D") else None


def check_reasoning_answer(reply: str, answer: str) -> bool:
    """The reply's <answer> block equals the expected answer EXACTLY (whitespace runs collapsed): containment would
    accept "17" for "7". The reasoning evaluation and the RL answer reward both judge by it."""
    _think, got = split_reasoning(reply)
    return got is not None and " ".join(got.split()) == " ".join(answer.split())
