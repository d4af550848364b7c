"""Opening a stage's data file: directions when it is missing, one clear line when it is malformed."""
import os

UPSTREAM_HINT = ("Download upstream MiniMind's {name} (see its README: the ModelScope / Hugging Face dataset "
                 "'minimind_dataset') into dataset/, or train on the embedded synthetic world instead: "
                 "`python -m dataset.world --out_dir out/world` then pass --data_path out/world/{world}.")


def require_data(args, world_name: str):
    """Checked first thing, so a missing file is reported before minutes of setup."""
    if not os.path.isfile(args.data_path):
        raise SystemExit(f"data file {args.data_path} not found.\n" + UPSTREAM_HINT.format(
            name=os.path.basename(args.data_path), world=world_name))


def tokenizer_for(args):
    from model.tokenizer import load_tokenizer
    try:
        return load_tokenizer(args.tokenizer_dir)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e))


def open_dataset(dataset_cls, args, tokenizer, **kwargs):
    """dataset_cls(args.data_path, tokenizer, args.max_seq_len, skip_bad_lines=..., **kwargs), or SystemExit with
    a message naming the file (and line) instead of a traceback."""
    path = args.data_path
    try:
        return dataset_cls(path, tokenizer, args.max_seq_len, skip_bad_lines=args.skip_bad_lines, **kwargs)
    except ValueError as e:  # the datasets validate every line up front and name file:line
        raise SystemExit(f"{e}\n(fix the line, or pass --skip_bad_lines to skip bad lines and count them)")
