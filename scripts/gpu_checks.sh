#!/usr/bin/env bash
# Every check that needs a GPU, in one go (measured: see benchmarks/README.md, "On a GPU"):
#   1. conformance of the PyTorch built-ins under --device cuda (TF32 off): every check on the GPU,
#      and device_parity (the same module on the CPU and the GPU, forward and backward, 5e-5);
#   2. the speed benchmarks of the PyTorch built-ins on the GPU and, side by side, on this CPU;
#   3. one behaviour row per PyTorch built-in (count_steps, smoke tier) trained on the GPU.
# It needs a CUDA build of torch in the Python it runs (PYTHON, default python3) beside the
# suite's packages; the lock's torch is the CPU build, so install one in another environment:
#   PYTHON=/path/to/cuda-env/bin/python scripts/gpu_checks.sh [report dir, default reports/gpu]
# Keras rows are left out: tensorflow-cpu has no GPU. Exit status 1 when any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DIR=${1:-reports/gpu}
"$PY" - <<'EOF' || exit 2
import sys

import torch

if not torch.cuda.is_available():
    sys.exit(f"gpu_checks: torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"{torch.cuda.get_device_name(0)}")
EOF
failed=()
step() {
	local name=$1
	shift
	echo "== $name: $*"
	local start=$SECONDS
	"$PY" -m pytest "$@" || failed+=("$name")
	echo "== $name took $((SECONDS - start)) s"
}
step conformance benchmarks/test_conformance.py --device cuda -k "torch-" -q --report-dir "$DIR/conformance"
step speed-gpu benchmarks/test_speed.py --device cuda -k "torch-" -q --report-dir "$DIR/speed-gpu"
step speed-cpu benchmarks/test_speed.py --device cpu -k "torch-" -q --report-dir "$DIR/speed-cpu"
step behaviour benchmarks/test_behaviour.py --device cuda --tier smoke -k "torch- and count_steps" -q \
	--report-dir "$DIR/behaviour"
if ((${#failed[@]})); then
	echo "gpu_checks: failed: ${failed[*]} (reports under $DIR)"
	exit 1
fi
echo "gpu_checks: all passed (reports under $DIR)"
