"""Reading multiple-choice exams: C-Eval's layout, DATA_DIR/{dev,val,test}/{subject}_{split}.csv with columns
id,question,A,B,C,D,answer[,explanation] (the test split has no answer column), and CMMLU's,
DATA_DIR/{dev,test}/{subject}.csv with columns ,Question,A,B,C,D,Answer."""
import csv
import glob
import os

REQUIRED = ("question", "A", "B", "C", "D")


def detect_format(data_dir: str) -> str:
    """'ceval' when files are named {subject}_{split}.csv, else 'cmmlu'."""
    for split in ("val", "dev", "test"):
        names = glob.glob(os.path.join(data_dir, split, "*.csv"))
        if names:
            return "ceval" if all(os.path.basename(n).endswith(f"_{split}.csv") for n in names) else "cmmlu"
    raise FileNotFoundError(f"no dev/val/test folders with .csv files in {data_dir}")


def read_split(data_dir: str, split: str, subjects=None, fmt: str = "auto") -> list[dict]:
    fmt = detect_format(data_dir) if fmt == "auto" else fmt
    return read_ceval_split(data_dir, split, subjects, cmmlu=fmt == "cmmlu")


def read_ceval_split(data_dir: str, split: str, subjects=None, cmmlu: bool = False) -> list[dict]:
    """Rows as {subject, id, question, options, answer (None on test)}, with errors that name the file."""
    folder = os.path.join(data_dir, split)
    suffix = ".csv" if cmmlu else f"_{split}.csv"
    files = sorted(glob.glob(os.path.join(folder, f"*{suffix}")))
    if not files:
        raise FileNotFoundError(f"no *{suffix} files in {folder}")
    rows = []
    for path in files:
        subject = os.path.basename(path)[: -len(suffix)]
        if subjects and subject not in subjects:
            continue
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            if cmmlu:  # CMMLU capitalizes question/answer and leaves the id column unnamed
                reader.fieldnames = [{"Question": "question", "Answer": "answer", "": "id"}.get(c, c)
                                     for c in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (have {reader.fieldnames})")
            for line, r in enumerate(reader, start=2):
                answer = (r.get("answer") or "").strip() or None
                if (split != "test" or cmmlu) and answer not in ("A", "B", "C", "D"):
                    raise ValueError(f"{path}:{line}: answer must be one of A/B/C/D, got {r.get('answer')!r}")
                rows.append({"subject": subject, "id": r.get("id", str(line - 2)), "question": r["question"],
                             "options": [r[k] for k in "ABCD"], "answer": answer})
    if subjects and not rows:
        raise ValueError(f"none of the subjects {subjects} found in {folder}")
    return rows
