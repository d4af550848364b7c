"""Deterministic generator for the small synthetic bilingual "world" used by the CPU quickstart.

The world is a few hundred invented people.  Each person has a Chinese name, a pinyin English name and six
attributes (birth date, birth city, university, major, employer, work city).  Every value exists in a Chinese and an
English form.  From that world we render every file the MiniMind training stages need, in upstream MiniMind's jsonl
layouts, plus held-out files that measure what the model really learned:

    pretrain.jsonl              {"text"}  bios of everybody + plain-text Q&A about the TRAIN half + some general text
                                          + the sums, differences and products the reasoning problems' solutions write
    pretrain_heldout.jsonl      {"text"}  fresh bio renderings (held-out LM loss)
    sft.jsonl                   {"conversations"}  chat QA about the train half, identity, greetings, small instructions
    qa_heldout.jsonl            one question about a TEST-half person per line, with "answer"/"lang"/"kind"/...
    qa_train_sample.jsonl       the same schema for train-half people (measures fitting)
    dpo.jsonl / dpo_heldout.jsonl             {"chosen", "rejected"}
    lora_identity.jsonl / lora_identity_heldout.jsonl   a NEW identity (小溪 / Xiaoxi from 青石实验室 / Bluestone Lab)
    reason.jsonl / reason_direct.jsonl / reason_heldout.jsonl   small multi-step arithmetic with and without <think>
    rlaif.jsonl / rlaif_facts.jsonl / choice_reason.jsonl / rlaif_choice.jsonl   RL prompts (and the letter format)
    tool_sft.jsonl / tool_heldout.jsonl / agent_rl.jsonl   questions answered through the world's tools
    exam/{dev,val,test}/{subject}_{split}.csv  a C-Eval-layout multiple-choice exam
    world.json                  the world itself (people, values, templates) for evaluation and debugging

Why it looks the way it does:
  * a small model needs many sightings of each fact, so the pretrain corpus is kept small (it is seen many times);
  * Q&A text for the train half inside the pretrain corpus teaches answering from facts read in bios, which carries
    over to the held-out half;
  * "echo" questions reuse the bio wording (name first), "paraphrase" questions do not -- both are reported; the
    words a paraphrase leans on (故乡, hired, …) do occur in the bios, since no model understands a word it never read;
  * answers are full sentences worded like the bios, so a model that stored the fact can answer by continuing.

Everything is deterministic: all randomness comes from random.Random objects seeded with "{seed}:{purpose}" strings
(string seeds are hashed with SHA-512, independent of PYTHONHASHSEED), and we never iterate over sets.
All text here is produced by our own name lists and templates.

Modules: people (name/value tables, rendering a person), templates and identity (the wording), one builder per file
family (pretrain, sft, qa_eval, dpo, lora, reasoning, choice_reason, tools, exam), files (make_world and the writers).

CLI:  python -m dataset.world --out_dir out/world --seed 0 --n_people 200
"""
from dataset.world.files import approx_tokens, make_world, write_csv, write_jsonl
from dataset.world.people import ATTRIBUTES, LANGS, make_people

__all__ = ["ATTRIBUTES", "LANGS", "approx_tokens", "make_people", "make_world", "write_csv", "write_jsonl"]
