#!/usr/bin/env bash
# Installs what the tests need (Python packages; Debian packages for the browser test) and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements-dev.txt
# The browser test drives headless Chromium (CJK font so the screenshot shows the Chinese UI). Installed only where
# it is missing and we may: as root with apt-get; elsewhere that test skips and says why.
DEBS="chromium chromium-driver fonts-wqy-microhei"
if ! dpkg -s $DEBS >/dev/null 2>&1 && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $DEBS; } >/dev/null 2>&1 \
        || echo "warning: could not install $DEBS; the browser test will skip" >&2
fi
export WANDB_MODE=offline WANDB_SILENT=true
python -m pytest -q "$@"
