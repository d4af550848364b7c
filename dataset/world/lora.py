"""lora_identity.jsonl and lora_identity_heldout.jsonl: teach a new identity (小溪 / Xiaoxi) with a LoRA adapter.

The held-out file asks in phrasings no training file contains, so it measures whether the identity generalizes.
"""
from dataset.world.common import msg, seeded_rng
from dataset.world.identity import BASE_IDENTITY, LORA_IDENTITY
from dataset.world.people import LANGS
from dataset.world.templates import GREETINGS, SYSTEM_PROMPTS


def build_lora_identity(seed, replay=(), identity_copies=4) -> tuple[list[dict], list[dict]]:
    """The new identity's chats, each `identity_copies` times, plus the SFT chats as replay.

    Replay decides what the adapter forgets.  Without it the adapter learns the identity but loses much of the
    held-out fact QA; replaying only fact-QA chats about train-half people makes it memorize those people and answer
    held-out questions with their names; replaying the SFT chats keeps most of both.  In the replay, the SFT model's
    greeting "I am MiniMind" becomes the new identity's, and its own self-introductions are left out: they would
    teach the old identity back."""
    rng = seeded_rng(seed, "lora")
    ident = LORA_IDENTITY
    train = []
    for lang in LANGS:
        for _kind, q in ident["train_questions"][lang]:
            for answer in ident["answers"][lang]:  # every phrasing with every answer wording
                train.append([msg("user", q), msg("assistant", answer)])
            # the same question after a greeting, and with a generic system prompt
            greeting = msg("user", rng.choice(GREETINGS[lang]))
            hello = msg("assistant", ident["answers"][lang][2])
            train.append([greeting, hello, msg("user", q), msg("assistant", rng.choice(ident["answers"][lang]))])
            train.append([msg("system", rng.choice(SYSTEM_PROMPTS[lang])), msg("user", q),
                          msg("assistant", rng.choice(ident["answers"][lang]))])
        # The base model calls itself MiniMind; say explicitly that this is no longer true.
        mm_q = "你是MiniMind吗？" if lang == "zh" else "Are you MiniMind?"
        for _ in range(3):
            train.append([msg("user", mm_q), msg("assistant", ident["not_minimind"][lang])])
    train = train * identity_copies
    new_hello = {BASE_IDENTITY["greeting_reply"][lang]: ident["answers"][lang][2] for lang in LANGS}
    for row in replay:
        msgs = [msg(m["role"], new_hello.get(m["content"], m["content"])) for m in row["conversations"]]
        if not any(BASE_IDENTITY["name"] in m["content"] for m in msgs):
            train.append(msgs)
    rng.shuffle(train)
    heldout = []
    rng = seeded_rng(seed, "lora_heldout")
    for lang in LANGS:
        for kind, q in ident["heldout_questions"][lang]:
            keyword = ident["name" if kind == "name" else "maker"][lang]
            for system in (None, rng.choice(SYSTEM_PROMPTS[lang])):
                msgs = ([msg("system", system)] if system else []) + [
                    msg("user", q), msg("assistant", rng.choice(ident["answers"][lang]))]
                heldout.append({"conversations": msgs, "answer": keyword, "lang": lang, "kind": kind})
    return [{"conversations": c} for c in train], heldout
