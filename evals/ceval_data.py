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


# C-Eval's grouping of its 52 subjects (the benchmark reports averages per group; Huang et al. 2023, arXiv:2305.08322).
CEVAL_CATEGORIES = {
    "STEM": ["computer_network", "operating_system", "computer_architecture", "college_programming",
             "college_physics", "college_chemistry", "advanced_mathematics", "probability_and_statistics",
             "discrete_mathematics", "electrical_engineer", "metrology_engineer", "high_school_mathematics",
             "high_school_physics", "high_school_chemistry", "high_school_biology", "middle_school_mathematics",
             "middle_school_biology", "middle_school_physics", "middle_school_chemistry", "veterinary_medicine"],
    "Social Science": ["college_economics", "business_administration", "marxism", "mao_zedong_thought",
                       "education_science", "teacher_qualification", "high_school_politics", "high_school_geography",
                       "middle_school_politics", "middle_school_geography"],
    "Humanities": ["modern_chinese_history", "ideological_and_moral_cultivation", "logic", "law",
                   "chinese_language_and_literature", "art_studies", "professional_tour_guide", "legal_professional",
                   "high_school_chinese", "high_school_history", "middle_school_history"],
    "Other": ["civil_servant", "sports_science", "plant_protection", "basic_medicine", "clinical_medicine",
              "urban_and_rural_planner", "accountant", "fire_engineer", "environmental_impact_assessment_engineer",
              "tax_accountant", "physician"],
}
SUBJECT_CATEGORY = {s: c for c, subjects in CEVAL_CATEGORIES.items() for s in subjects}


def category_of(subject: str) -> str:
    return SUBJECT_CATEGORY.get(subject, "Uncategorized")
