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
# PyPI ships these two only as source. uv builds a new copy of each into its cache on every install that reaches
# the index and keeps them all: unidic-lite (a 250 MB dictionary) cost hundreds of MB a build, three builds of it
# and two of antlr4 a setup, until a CI run on a nearly full disk failed. pip builds each once into its own wheel
# cache; the extras' uv installs below take the wheels from .venv/wheelhouse and are told --no-build: a new
# source-only dependency stops them, or uv falls back to an older version of it that has a wheel.
wheelhouse=.venv/wheelhouse
for name in unidic-lite antlr4-python3-runtime; do
  # the version installed in .venv, which the extras must match; one no longer installed needs no wheel
  version=$(.venv/bin/python -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$name" \
    2>/dev/null) || continue
  .venv/bin/pip wheel --quiet --no-deps -w "$wheelhouse" "$name==$version"
done
mapfile -t index_args < <(.venv/bin/python infra/uv_index_args.py)
index_args+=(--find-links "$wheelhouse" --no-build)
# tests/integration/project/test_extras.py installs each extra into a fresh venv with uv, offline (UV_OFFLINE=1), from
# uv's cache (UV_CACHE_DIR, default ~/.cache/uv) through hard links: seconds per venv. Fill that cache now, while
# the indexes are reachable, by installing each extra the test checks once into a throwaway venv.
echo "setup: filling uv's cache for the extras test"
fill=$(mktemp -d)
.venv/bin/pip wheel --quiet --no-deps --no-build-isolation -w "$fill/dist" . >/dev/null
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
# Python 3.12 and 3.13: PyPI's torch 2.13.0 for them is a CUDA build that does not import without GBs of
# nvidia-* libraries, so each gets a torch-free environment (infra/torch-free-excludes.txt) in which
# tests/integration/project/test_python_versions.py runs registry/'s unit tests. An interpreter that is not
# here is skipped, and said so; the folder then holds only the reason, which that test reports as its skip.
python_for() {  # python3.X on PATH, else pyenv's (its shims fail for versions not selected in pyenv)
  local candidate
  for candidate in "python$1" "$(pyenv root 2>/dev/null)/versions/$1".*/bin/python; do
    if "$candidate" -c 'import sys; sys.exit(f"{sys.version_info[0]}.{sys.version_info[1]}" != sys.argv[1])' "$1" 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}
for version in 3.12 3.13; do
  venv=.venv-py$version
  rm -rf "$venv"
  if ! python=$(python_for "$version"); then
    echo "setup: no python$version here, skipped: $venv holds only the reason"
    mkdir "$venv"
    echo "make setup found no python$version (on PATH or under pyenv)" > "$venv/ABSENT"
    continue
  fi
  echo "setup: $venv with $("$python" --version) (torch-free: registry/ and its unit tests)"
  .venv/bin/uv venv --quiet --python "$python" "$venv"
  .venv/bin/uv pip install --quiet --python "$venv/bin/python" -r pyproject.toml --extra test \
    --excludes infra/torch-free-excludes.txt -c infra/constraints.txt
done
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
