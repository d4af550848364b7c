"""The world generator's command line: every keyword of make_world is a flag with the same name, type and default.

    python -m dataset.world --out_dir out/world --seed 0 --n_people 200
"""
import argparse
import inspect
import json

import dataset.world
from dataset.world.files import make_world


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m dataset.world", description=dataset.world.__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out_dir", default="out/world")
    # Every keyword of make_world becomes a flag with the same name, type and default.
    for name, param in inspect.signature(make_world).parameters.items():
        if name != "out_dir":
            parser.add_argument("--" + name, type=type(param.default), default=param.default)
    args = vars(parser.parse_args(argv))
    stats = make_world(args.pop("out_dir"), **args)
    print(json.dumps(stats, ensure_ascii=False, indent=1))
    return stats


if __name__ == "__main__":
    main()
