"""Multiple-choice scoring by next-token logits over the option letters (C-Eval / CMMLU / the embedded exam).

The model never has to generate free text: after the prompt, the letter whose token has the highest logit is the
answer. This is the standard way to score small models on C-Eval (its own reference scripts do the same).
The prompt format itself lives in dataset/choice_format.py (the world generator trains on it); it is re-exported here.
"""
from dataset.choice_format import LETTERS, format_question


def build_prompt(tokenizer, question: str, options: list[str], shots=(), chat: bool = False,
                 header: str = "") -> str:
    """shots: (question, options, answer) triples from the dev split, shown before the question."""
    examples = "".join(format_question(q, o, a) + "\n\n" for q, o, a in shots)
    text = header + examples + format_question(question, options)
    if chat:
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)
    return text


def letter_token_ids(tokenizer, prompt_end: str = "答案：") -> list[int]:
    """The id each letter gets when it directly follows the prompt. Checked through the tokenizer rather than
    assumed: a tokenizer with a prefix-space convention would produce ' A', one without produces 'A'."""
    base = tokenizer.encode(prompt_end, add_special_tokens=False)
    ids = []
    for letter in LETTERS:
        full = tokenizer.encode(prompt_end + letter, add_special_tokens=False)
        if full[:len(base)] != base or len(full) != len(base) + 1:
            raise ValueError(f"tokenizer merges the letter {letter!r} with the prompt end {prompt_end!r}; "
                             "cannot score by next-token logits")
        ids.append(full[-1])
    return ids


def predict_choices(model, tokenizer, prompts: list[str], batch_size: int = 16, device="cpu",
                    progress: bool = False) -> list[str]:
    """The predicted letter for each prompt (batched, left-padded, one forward pass per batch)."""
    import torch  # imported here so building prompts does not load torch
    with torch.inference_mode():
        return _predict(torch, model, tokenizer, prompts, batch_size, device, progress)


def _predict(torch, model, tokenizer, prompts, batch_size, device, progress):
    from evals.batching import left_pad
    letter_ids = torch.tensor(letter_token_ids(tokenizer), device=device)
    preds = []
    batches = range(0, len(prompts), batch_size)
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, desc="scoring", unit="batch")
    model.eval()
    for start in batches:
        ids, mask = left_pad(tokenizer, prompts[start:start + batch_size])
        logits = model(ids.to(device), attention_mask=mask.to(device), logits_to_keep=1).logits[:, -1]
        preds += [LETTERS[i] for i in logits[:, letter_ids].argmax(-1).tolist()]
    return preds


def generated_choices(model, tokenizer, prompts: list[str], max_new_tokens: int = 64) -> list[str | None]:
    """The letter each chat prompt's greedy REPLY chooses (evals/answers.py extract_choice: the <answer> block of a
    reply that reasons first, else its first character), for models that write before they choose."""
    from evals.answers import extract_choice
    from evals.qa import chat_replies
    replies = chat_replies(model, tokenizer, [[{"role": "user", "content": p}] for p in prompts],
                           max_new_tokens=max_new_tokens)
    return [extract_choice(r) for r in replies]
