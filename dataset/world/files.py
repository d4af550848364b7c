"""make_world: build every world file and write it into one folder, plus world.json (the world itself).

Files are written byte-for-byte reproducibly (fixed key order, "\n" line ends, UTF-8 without escapes), and every
writer reports lines and approximate tokens so a caller can size a training budget.
"""
import csv
import json
import re
from pathlib import Path

from dataset.jsonl_files import read_jsonl
from dataset.world.choice_reason import build_choice_reason
from dataset.world.common import seeded_rng
from dataset.world.dpo import build_dpo
from dataset.world.exam import EXAM_HEADER, EXAM_SUBJECTS, build_exam
from dataset.world.identity import BASE_IDENTITY, LORA_IDENTITY
from dataset.world.lora import build_lora_identity
from dataset.world.people import ATTRIBUTE_VALUES, ATTRIBUTES, make_people
from dataset.world.pretrain import build_pretrain, build_pretrain_heldout
from dataset.world.qa_eval import build_qa_eval
from dataset.world.reasoning import build_reason
from dataset.world.sft import build_sft
from dataset.world.templates import BIO_TEMPLATES, ECHO_QUESTIONS, PARAPHRASE_QUESTIONS, QA_TEXT_FORMAT
from dataset.world.tools import build_directory, build_tool_data

_CJK_RE = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u201c\u201d]")  # CJK chars + CJK punctuation
_WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_DIGIT_RE = re.compile(r"[0-9]")


# The files some training stage reads; the rest are held out or for evaluation only.
TRAINING_FILES = ("pretrain.jsonl", "sft.jsonl", "dpo.jsonl", "lora_identity.jsonl", "reason.jsonl",
                  "reason_direct.jsonl", "rlaif.jsonl", "rlaif_facts.jsonl", "choice_reason.jsonl",
                  "rlaif_choice.jsonl", "tool_sft.jsonl", "agent_rl.jsonl")


def training_chars(world_dir) -> str:
    """Every non-ASCII character of the world's training files, in code-point order: the quickstart's tokenizer
    learns its merges on pretraining and chat text, and makes each of these one token even where that text lacks it
    (the arithmetic problems' and weekdays' characters, the option marks)."""
    chars = {ch for name in TRAINING_FILES for row in read_jsonl(Path(world_dir) / name)
             for ch in json.dumps(row, ensure_ascii=False) if ord(ch) > 127}
    return "".join(sorted(chars))


def approx_tokens(text: str) -> int:
    """Rough token count for our tokenizer: 1 per CJK char (and CJK punctuation), 1.3 per English word, 1 per digit."""
    return round(len(_CJK_RE.findall(text)) + 1.3 * len(_WORD_RE.findall(text)) + len(_DIGIT_RE.findall(text)))


def _row_texts(row: dict) -> list[str]:
    texts = [row["text"]] if "text" in row else []
    for key in ("conversations", "chosen", "rejected"):
        texts += [m["content"] for m in row.get(key, [])]
    return texts


def write_jsonl(path: Path, rows: list[dict]) -> dict:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"lines": len(rows), "approx_tokens": sum(approx_tokens(t) for r in rows for t in _row_texts(r))}


def write_csv(path: Path, rows: list[dict], header: list[str]) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([row[h] for h in header])
    tokens = sum(approx_tokens(" ".join(str(row[h]) for h in header[1:6])) for row in rows)
    return {"lines": len(rows), "approx_tokens": tokens}


def world_summary(people, seed, directory=()) -> dict:
    return {
        "seed": seed,
        "attributes": list(ATTRIBUTES),
        "attribute_values": {a: [{"zh": zh, "en": en} for zh, en in t] for a, t in ATTRIBUTE_VALUES.items()},
        "people": people,
        "templates": {"bio": BIO_TEMPLATES, "question_echo": ECHO_QUESTIONS,
                      "question_paraphrase": PARAPHRASE_QUESTIONS, "qa_text": QA_TEXT_FORMAT},
        "identity": {"base": BASE_IDENTITY["name"],
                     "lora": {"name": LORA_IDENTITY["name"], "maker": LORA_IDENTITY["maker"]}},
        "exam_subjects": list(EXAM_SUBJECTS),
        "directory": list(directory),  # people only the lookup_person tool knows (dataset/world/tools.py)
    }


def make_world(
    out_dir,
    seed: int = 0,
    n_people: int = 200,
    bios_per_person: int = 5,
    qa_copies: int = 1,
    qa_chat_copies: int = 0,
    choice_copies: int = 2,
    general_copies: int = 2,
    pronoun_prob: float = 0.3,
    heldout_bios_per_person: int = 1,
    sft_copies: int = 2,
    n_identity_per_lang: int = 60,
    sft_system_prob: float = 0.1,
    sft_greeting_prob: float = 0.05,
    n_qa_heldout: int = 320,
    n_qa_train_sample: int = 200,
    n_dpo: int = 1200,
    n_dpo_heldout: int = 200,
    n_reason: int = 2000,
    n_reason_heldout: int = 200,
    n_rlaif: int = 2000,
    n_rlaif_facts: int = 720,
    n_choice_reason: int = 3000,
    n_rlaif_choice: int = 2000,
    n_tool_sft: int = 3000,
    n_tool_heldout: int = 320,
    n_agent_rl: int = 1000,
    n_directory: int = 1000,
    n_agent_directory: int = 300,
    n_exam_val: int = 200,
    n_exam_test: int = 200,
    train_fraction: float = 0.5,
) -> dict:
    """Write every world file into out_dir and return stats {"files": {relpath: {"lines", "approx_tokens"}}, ...}.

    Size knobs (per language): bios_per_person bios of every person and qa_copies Q&A documents per train-half person
    go into pretrain.jsonl, so one pass over it shows each fact bios_per_person (+ qa_copies) times.  sft_copies is how
    often each train-half fact is asked in sft.jsonl."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    people = make_people(seed, n_people, train_fraction)
    files = {}

    pretrain = build_pretrain(people, seed, bios_per_person, qa_copies, general_copies, pronoun_prob, choice_copies,
                              qa_chat_copies)
    files["pretrain.jsonl"] = write_jsonl(out / "pretrain.jsonl", pretrain)
    seen = {row["text"] for row in pretrain}
    heldout_bios = build_pretrain_heldout(people, seed, heldout_bios_per_person, pronoun_prob, seen)
    files["pretrain_heldout.jsonl"] = write_jsonl(out / "pretrain_heldout.jsonl", heldout_bios)

    sft = build_sft(people, seed, sft_copies, n_identity_per_lang, sft_system_prob, sft_greeting_prob)
    files["sft.jsonl"] = write_jsonl(out / "sft.jsonl", sft)

    test_half = [p for p in people if p["split"] == "test"]
    train_half = [p for p in people if p["split"] == "train"]
    files["qa_heldout.jsonl"] = write_jsonl(
        out / "qa_heldout.jsonl", build_qa_eval(test_half, seeded_rng(seed, "qa_heldout"), n_qa_heldout))
    files["qa_train_sample.jsonl"] = write_jsonl(
        out / "qa_train_sample.jsonl", build_qa_eval(train_half, seeded_rng(seed, "qa_train"), n_qa_train_sample))
    # RL prompts about train-half people, echo and paraphrase wording (judged on qa_heldout.jsonl's people)
    files["rlaif_facts.jsonl"] = write_jsonl(
        out / "rlaif_facts.jsonl", build_qa_eval(train_half, seeded_rng(seed, "rlaif_facts"), n_rlaif_facts))

    files["dpo.jsonl"] = write_jsonl(
        out / "dpo.jsonl", build_dpo(people, seeded_rng(seed, "dpo"), n_dpo, heldout=False))
    files["dpo_heldout.jsonl"] = write_jsonl(
        out / "dpo_heldout.jsonl", build_dpo(people, seeded_rng(seed, "dpo_heldout"), n_dpo_heldout, heldout=True))

    lora_train, lora_heldout = build_lora_identity(seed, replay=sft)
    files["lora_identity.jsonl"] = write_jsonl(out / "lora_identity.jsonl", lora_train)
    files["lora_identity_heldout.jsonl"] = write_jsonl(out / "lora_identity_heldout.jsonl", lora_heldout)

    reason, direct, reason_heldout, rlaif = build_reason(seed, n_reason, n_reason_heldout, n_rlaif)
    files["reason.jsonl"] = write_jsonl(out / "reason.jsonl", reason)
    files["reason_direct.jsonl"] = write_jsonl(out / "reason_direct.jsonl", direct)
    files["reason_heldout.jsonl"] = write_jsonl(out / "reason_heldout.jsonl", reason_heldout)
    files["rlaif.jsonl"] = write_jsonl(out / "rlaif.jsonl", rlaif)  # RL prompts; judged on reason_heldout.jsonl

    choice_sft, choice_rl = build_choice_reason(people, seed, n_choice_reason, n_rlaif_choice)
    files["choice_reason.jsonl"] = write_jsonl(out / "choice_reason.jsonl", choice_sft)  # recall, then the letter
    files["rlaif_choice.jsonl"] = write_jsonl(out / "rlaif_choice.jsonl", choice_rl)  # judged on exam/val

    directory = build_directory(people, seed, n_directory)  # people only lookup_person knows
    # more of them, named by agent_rl.jsonl only: RL copies names that no tool_sft call has shown
    agent_directory = build_directory(people, seed, n_agent_directory, exclude=directory, label="agent_directory")
    tool_sft, tool_heldout, agent_rl = build_tool_data(people, seed, n_tool_sft, n_tool_heldout, n_agent_rl,
                                                       directory, agent_directory)
    files["tool_sft.jsonl"] = write_jsonl(out / "tool_sft.jsonl", tool_sft)  # questions answered through tools
    files["tool_heldout.jsonl"] = write_jsonl(out / "tool_heldout.jsonl", tool_heldout)  # chains on held-out people
    files["agent_rl.jsonl"] = write_jsonl(out / "agent_rl.jsonl", agent_rl)  # chains on RL-only people, with gt

    for subject, splits in build_exam(people, seed, n_exam_val, n_exam_test).items():
        for split, rows in splits.items():
            header = EXAM_HEADER if split != "test" else EXAM_HEADER[:-1]
            rel = f"exam/{split}/{subject}_{split}.csv"
            files[rel] = write_csv(out / rel, rows, header)

    with open(out / "world.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(world_summary(people, seed, directory + agent_directory), f, ensure_ascii=False, indent=1)
        f.write("\n")
    files["world.json"] = {"lines": 1, "approx_tokens": 0}

    return {
        "out_dir": str(out),
        "seed": seed,
        "n_people": n_people,
        "n_train_people": len(train_half),
        "n_test_people": len(test_half),
        # How often one pass over pretrain.jsonl shows each fact, per language, and what a token budget buys:
        # sightings per fact per language ~= bios_per_person * budget_tokens / pretrain_tokens.
        # Counted in REAL tokens: if the trainer pads every line to max_seq_len, pack the lines instead.
        "pretrain_sightings_per_pass": {"bios": bios_per_person, "qa_text_train_half": qa_copies,
                                        "qa_chat_train_half": qa_chat_copies},
        "pretrain_bio_sightings_per_million_tokens":
            round(bios_per_person * 1e6 / max(1, files["pretrain.jsonl"]["approx_tokens"]), 1),
        "files": files,
    }
