"""Reading multiple-choice exams in C-Eval's layout: DATA_DIR/{dev,val,test}/{subject}_{split}.csv with columns
id,question,A,B,C,D,answer[,explanation] (the test split has no answer column)."""
import csv
import glob
import os

REQUIRED = ("question", "A", "B", "C", "D")


def read_ceval_split(data_dir: str, split: str, subjects=None) -> list[dict]:
    """Rows as {subject, id, question, options, answer (None on test)}, with errors that name the file."""
    folder = os.path.join(data_dir, split)
    files = sorted(glob.glob(os.path.join(folder, f"*_{split}.csv")))
    if not files:
        raise FileNotFoundError(f"no *_{split}.csv files in {folder}")
    rows = []
    for path in files:
        subject = os.path.basename(path)[: -len(f"_{split}.csv")]
        if subjects and subject not in subjects:
            continue
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (have {reader.fieldnames})")
            for line, r in enumerate(reader, start=2):
                answer = (r.get("answer") or "").strip() or None
                if split != "test" and answer not in ("A", "B", "C", "D"):
                    raise ValueError(f"{path}:{line}: answer must be one of A/B/C/D, got {r.get('answer')!r}")
                rows.append({"subject": subject, "id": r.get("id", str(line - 2)), "question": r["question"],
                             "options": [r[k] for k in "ABCD"], "answer": answer})
    if subjects and not rows:
        raise ValueError(f"none of the subjects {subjects} found in {folder}")
    return rows
