# Run on the GPU machine from the repo root after bench/gpu/prepare.sh (device tool: carry [".gpu"]):
# the CUDA check (bench/train_gpu_check.py), `tailor train --device cuda`, then the F1 tuning sweep.
# Results land in $OUT; bench/gpu/results/ holds those of 2026-11-28 (H200; the bench on CUDA in cuda_bench.json).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site TAILOR_BASE_MODEL=/tmp/base TAILOR_HOME=/tmp/th HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
python3 bench/gpu/cast_weights.py .gpu/base16 /tmp/base float32 || exit 1
nvidia-smi -L; python3 -c "import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)"
python3 bench/train_gpu_check.py --data .gpu/b77 --per-class 16 --classes 77 > $OUT/gpu_check.json 2> $OUT/gpu_check.err; echo "gpu_check rc=$?"; cat $OUT/gpu_check.json; tail -3 $OUT/gpu_check.err
python3 -c "import sys; from pipelines.cli.main import run; run(sys.argv[1:])" train --data data/sample/train.csv --out /tmp/cli_adapter --device cuda --json > $OUT/cli_train.json 2> $OUT/cli_train.err; echo "cli rc=$?"; head -c 900 $OUT/cli_train.json; tail -2 $OUT/cli_train.err
SWEEP_SECONDS=${SWEEP_SECONDS:-300} bash bench/gpu/sweep.sh
