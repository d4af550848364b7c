"""Opening a stage's data file, with directions when it is missing."""
import os

UPSTREAM_HINT = ("Download upstream MiniMind's {name} (see its README: the ModelScope / Hugging Face dataset "
                 "'minimind_dataset') into dataset/, or train on the embedded synthetic world instead: "
                 "`python -m dataset.embedded_world --out_dir out/world` then pass --data_path out/world/{world}.")


def require_data(path: str, world_name: str):
    if not os.path.isfile(path):
        raise SystemExit(f"data file {path} not found.\n" + UPSTREAM_HINT.format(name=os.path.basename(path),
                                                                               world=world_name))
