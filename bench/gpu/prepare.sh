#!/usr/bin/env bash
# Builds .gpu/, the payload that bench/gpu/device.sh needs on a bare GPU machine with no network
# (its image has torch but not our other dependencies, the base model or Banking77).
# The device tool carries at most 64 MiB, so the base model travels as fp16 and
# bench/gpu/cast_weights.py widens it back to fp32 safetensors there.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p .gpu/whl .gpu/base16 .gpu/b77
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl \
  pydantic==2.14.4 pydantic_core==2.50.5 pydantic-settings==2.16.3 python-dotenv typing-inspection annotated-types \
  cleanlab==2.9.0 termcolor peft==0.21.2 pydot transformers==5.24.0
cp "${BANKING77:-../shared/datasets/banking77}"/{train,test}.csv .gpu/b77/
.venv/bin/python bench/gpu/cast_weights.py "$(.venv/bin/python -c 'from pipelines.settings import load_settings; print(load_settings().base_model_dir)')" .gpu/base16 float16
du -sh .gpu
