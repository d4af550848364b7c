"""How the torchrun workers of the multi-process tests end (ddp_check.py, grpo_check.py)."""
import os
import sys
import traceback


def run_and_exit(main):
    """Run main(), print a failure's traceback, then leave WITHOUT interpreter shutdown: gloo's threads can race
    Python's teardown and abort (~20% of runs), which would turn a passing worker into a failing one."""
    code = 0
    try:
        main()
    except BaseException:  # noqa: BLE001 -- report, then leave
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
