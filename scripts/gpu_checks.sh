#!/usr/bin/env bash
# Every check that needs a GPU, in one go: `rnn-behaviour gpu` (rnn_behaviour/gpu.py), which is
# what to run where the suite is installed into an environment with a CUDA torch:
#   pip install path/to/checkout && rnn-behaviour gpu
# From a checkout without installing, in that environment's Python:
#   PYTHON=/path/to/cuda-env/bin/python scripts/gpu_checks.sh [report dir, default reports/gpu]
set -uo pipefail
cd "$(dirname "$0")/.."
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" -m rnn_behaviour gpu \
	--report-dir "${1:-reports/gpu}"
