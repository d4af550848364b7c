#!/usr/bin/env bash
# Installs what the tests need (Python packages; Debian packages for the browser test) and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements-dev.txt
# --llama-cpp: also check that llama.cpp runs our GGUF exports (tests/evals/test_gguf_parity.py). llama-cpp-python
# builds llama.cpp from source: about 20 minutes on 2 cores, once (pip caches the wheel). Without it those tests skip.
if [ "${1:-}" = "--llama-cpp" ]; then
    shift
    if ! python -c "import llama_cpp" 2>/dev/null; then
        echo "building llama-cpp-python (llama.cpp from source, ~20 min on 2 cores)…" >&2
        CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" python -m pip install -q "llama-cpp-python==0.3.36"
    fi
fi
# The browser test drives headless Chromium (CJK font so the screenshot shows the Chinese UI). Installed only where
# it is missing and we may: as root with apt-get; elsewhere that test skips and says why.
DEBS="chromium chromium-driver fonts-wqy-microhei"
if ! dpkg -s $DEBS >/dev/null 2>&1 && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $DEBS; } >/dev/null 2>&1 \
        || echo "warning: could not install $DEBS; the browser test will skip" >&2
fi
export WANDB_MODE=offline WANDB_SILENT=true
python -m pytest -q "$@"
