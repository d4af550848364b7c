"""sft.jsonl: chats about the train half's facts, the base identity, greetings and small instructions.

Only train-half people appear, so the held-out questions about the test half measure what carried over from
pretraining.  Every answer is the fact's canonical bio sentence.
"""
from dataset.world.common import msg, seeded_rng
from dataset.world.exam import choice_items
from dataset.world.identity import BASE_IDENTITY
from dataset.world.people import (ATTRIBUTES, CITIES, LANGS, answer_sentence, facts_paragraph, person_name,
                                  render_question)
from dataset.world.templates import (ADDITION_ANSWERS, ADDITION_QUESTIONS, ECHO_QUESTIONS, GREETINGS,
                                     LIST_FACTS_REQUESTS, SYSTEM_PROMPTS, TRANSLATE_TO_EN, TRANSLATE_TO_EN_ANSWER,
                                     TRANSLATE_TO_ZH, TRANSLATE_TO_ZH_ANSWER)


def _people_qa_conversations(train_people, rng, copies) -> list[tuple[str, list[dict]]]:
    """Every fact of every train-half person, `copies` times per language, grouped into 1-3 turn conversations.
    Copy k asks with echo template k (cycling), so with copies >= 2 every echo wording of every fact is trained."""
    convs = []
    for person in train_people:
        for lang in LANGS:
            for copy in range(copies):
                attrs = list(ATTRIBUTES)
                rng.shuffle(attrs)
                while attrs:
                    size = rng.choice([1, 1, 2, 3])
                    chunk, attrs = attrs[:size], attrs[size:]
                    msgs = []
                    for attr in chunk:
                        templates = ECHO_QUESTIONS[lang][attr]
                        q = render_question(templates[copy % len(templates)], person, lang)
                        msgs += [msg("user", q), msg("assistant", answer_sentence(person, attr, lang))]
                    convs.append((lang, msgs))
    return convs


def _identity_conversations(rng, n_per_lang) -> list:
    convs = []
    for lang in LANGS:
        for i in range(n_per_lang):
            if i % 3 == 0:
                convs.append((lang, [msg("user", rng.choice(GREETINGS[lang])),
                                     msg("assistant", BASE_IDENTITY["greeting_reply"][lang])]))
            else:
                convs.append((lang, [msg("user", rng.choice(BASE_IDENTITY["questions"][lang])),
                                     msg("assistant", rng.choice(BASE_IDENTITY["answers"][lang]))]))
    return convs


def _instruction_conversations(train_people, rng) -> list:
    convs = []
    for lang in LANGS:
        for a in range(1, 10):
            for b in range(1, 10):
                k = rng.randrange(2)
                convs.append((lang, [msg("user", ADDITION_QUESTIONS[lang][k].format(a=a, b=b)),
                                     msg("assistant", ADDITION_ANSWERS[lang][k].format(a=a, b=b, c=a + b))]))
        for zh, en in CITIES:
            convs.append((lang, [msg("user", TRANSLATE_TO_EN[lang].format(zh=zh)),
                                 msg("assistant", TRANSLATE_TO_EN_ANSWER[lang].format(zh=zh, en=en))]))
            convs.append((lang, [msg("user", TRANSLATE_TO_ZH[lang].format(en=en)),
                                 msg("assistant", TRANSLATE_TO_ZH_ANSWER[lang].format(zh=zh, en=en))]))
        for person in train_people:
            request = rng.choice(LIST_FACTS_REQUESTS[lang]).format(n=person_name(person, lang))
            convs.append((lang, [msg("user", request), msg("assistant", facts_paragraph(person, lang))]))
    return convs


def build_sft(people, seed, copies, n_identity_per_lang, system_prob, greeting_prob, choice_per_person=2
              ) -> list[dict]:
    rng = seeded_rng(seed, "sft")
    train_people = [p for p in people if p["split"] == "train"]
    convs = (_people_qa_conversations(train_people, rng, copies) + _identity_conversations(rng, n_identity_per_lang)
             + _instruction_conversations(train_people, rng)
             + [(lang, [msg("user", prompt), msg("assistant", letter)]) for lang, prompt, letter in
                choice_items(train_people, people, seeded_rng(seed, "sft:choice"), choice_per_person)])
    rows = []
    for lang, msgs in convs:
        # A few conversations open with a greeting turn or carry a system prompt, so both formats are seen.
        if msgs[0]["content"] not in GREETINGS[lang] and rng.random() < greeting_prob:
            msgs = [msg("user", rng.choice(GREETINGS[lang])),
                    msg("assistant", BASE_IDENTITY["greeting_reply"][lang])] + msgs
        if rng.random() < system_prob:
            msgs = [msg("system", rng.choice(SYSTEM_PROMPTS[lang]))] + msgs
        rows.append({"conversations": msgs})
    rng.shuffle(rows)
    return rows
