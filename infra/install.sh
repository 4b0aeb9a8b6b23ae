#!/usr/bin/env bash
# Create .venv and install Tailor. Idempotent and quick when nothing changed.
# torch is installed first, then the project under infra/constraints.txt, so the resolver can
# never replace the CPU build with a multi-GB CUDA one (see docs/getting-started/install.md, "GPU hosts").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
if ! .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
  echo "setup: installing torch 2.13.0"
  .venv/bin/pip install --quiet --progress-bar off "torch==2.13.0" -c infra/constraints.txt
fi
echo "setup: installing tailor and its dependencies"
.venv/bin/pip install --quiet --progress-bar off -e '.[all,test,serve-onnx,docs]' -c infra/constraints.txt
.venv/bin/pip check
# tests/integration/project/test_extras.py installs each extra into a fresh venv with uv, offline (UV_OFFLINE=1), from
# uv's cache (UV_CACHE_DIR, default ~/.cache/uv) through hard links: seconds per venv. Fill that cache now, while
# the indexes are reachable, by installing each extra the test checks once into a throwaway venv.
echo "setup: filling uv's cache for the extras test"
fill=$(mktemp -d)
.venv/bin/pip wheel --quiet --no-deps --no-build-isolation -w "$fill/dist" . >/dev/null
mapfile -t index_args < <(.venv/bin/python infra/uv_index_args.py)
for extra in serve train orchestrate; do  # one at a time, as the test resolves them (alone, versions can differ)
  .venv/bin/uv venv --quiet --python "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" "$fill/$extra"
  .venv/bin/uv pip install --quiet --python "$fill/$extra/bin/python" --link-mode hardlink "${index_args[@]}" \
    -c infra/constraints.txt "tailor[$extra] @ file://$(ls "$fill"/dist/tailor-*.whl)"
done
rm -rf "$fill"
# The console's browser tests drive Debian's Chromium (Playwright cannot download its own browser
# here), and its charts and the report set Japanese labels in Noto CJK: installed when missing.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get (the console's browser tests and Japanese chart labels)"
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
