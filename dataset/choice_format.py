"""The multiple-choice prompt format (C-Eval layout), defined once.

The world generator writes practice questions in it and the multiple-choice scorer builds exam prompts with it: a
model learns to answer with a letter only if training and scoring show the question the same way.
"""
LETTERS = "ABCD"


def format_question(question: str, options: list[str], answer: str | None = None) -> str:
    """One question as the model sees it; with `answer`, a solved example (few-shot / training)."""
    body = question + "".join(f"\n{letter}. {opt}" for letter, opt in zip(LETTERS, options)) + "\n答案："
    return body + answer if answer is not None else body
