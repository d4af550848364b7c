#!/usr/bin/env bash
# Installs what the tests need (Python packages; Debian packages for the browser test) and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements-dev.txt
export WANDB_MODE=offline WANDB_SILENT=true
python -m pytest -q "$@"
