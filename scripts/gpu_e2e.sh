#!/usr/bin/env bash
# The whole deploy path on an NVIDIA H100/H200 host, in under 5 minutes:
#   solve a small instance -> plan; start MPS; one tritonserver per workload (torchvision models,
#   fp16, python backend) with its MPS share; 20 s of open-loop load after a 5 s warm-up; report;
#   then the load generator benchmark (bench_loadgen.txt).
#
#   scripts/gpu_e2e.sh OUT_DIR [WHEEL_DIR]
#
# OUT_DIR receives plan.json, report.json, run.txt (the predicted-vs-measured table), nvidia-smi.txt,
# bench_loadgen.txt and the servers' logs. WHEEL_DIR (optional) holds wheels for hosts without a package index:
# igniter-opt's dependencies, tritonclient[grpc], nvidia-ml-py and nvidia-pytriton. torch and
# torchvision come from the host's python3 (the venv sees the system site-packages).
# Env: PYTHON (default python3), INSTANCE (default instances/paper/motivation.json), DURATION (20), LOADGEN (1).
# With WHEEL_DIR every wheel there is installed as it is (--no-deps): bring the whole set.
set -euo pipefail
OUT=${1:?usage: scripts/gpu_e2e.sh OUT_DIR [WHEEL_DIR]}
WHEELS=${2:-}
PYTHON=${PYTHON:-python3}
INSTANCE=${INSTANCE:-instances/paper/motivation.json}
DURATION=${DURATION:-20}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
start=$(date +%s)

nvidia-smi --query-gpu=name,clocks.max.sm,power.limit,memory.total,compute_mode --format=csv | tee "$OUT/nvidia-smi.txt"
command -v nvidia-cuda-mps-control >/dev/null || { echo "nvidia-cuda-mps-control not on PATH" >&2; exit 1; }
"$PYTHON" -c "import torch, torchvision; assert torch.cuda.is_available(); print('torch', torch.__version__, 'torchvision', torchvision.__version__)"

VENV=.venv-gpu
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV"
# A host python that is itself a venv (uv, conda) keeps torch in its own site-packages, which
# --system-site-packages does not reach (that is the base interpreter's): a .pth file does.
HOST_SITE=$("$PYTHON" -c "import site; print(':'.join(site.getsitepackages()))")
VENV_SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
tr ':' '\n' <<<"$HOST_SITE" > "$VENV_SITE/igniter-host-site.pth"
PIP=("$VENV/bin/python" -m pip install -q)
if [ -n "$WHEELS" ]; then
  # No package index: the wheel set is the environment; nothing is resolved against the index.
  "${PIP[@]}" --no-index --no-deps "$WHEELS"/*.whl
  "${PIP[@]}" --no-index --no-deps --no-build-isolation -e .
else
  # nvidia-pytriton is only needed for its tritonserver binary: --no-deps keeps the host's numpy 2.
  "${PIP[@]}" --no-deps nvidia-pytriton
  "${PIP[@]}" -e '.[deploy]'
fi
IGNITER=("$VENV/bin/python" -m igniter_opt)

"${IGNITER[@]}" solve "$INSTANCE" -o "$OUT/plan.json" || true   # exit 1 only flags predicted SLO breaks
test -s "$OUT/plan.json"
RUN_DIR=$(mktemp -d /tmp/igniter-gpu-e2e.XXXXXX)
set +e
timeout 240 "${IGNITER[@]}" run "$OUT/plan.json" --backend local --device gpu --fp16 \
    --duration "$DURATION" --warmup 5 --run-dir "$RUN_DIR" -o "$OUT/report.json" 2>&1 | tee "$OUT/run.txt"
rc=${PIPESTATUS[0]}
set -e
cp -r "$RUN_DIR/logs" "$OUT/logs" 2>/dev/null || true
cp -r "$RUN_DIR/mps/log" "$OUT/mps-log" 2>/dev/null || true
# The load generator's capacity on this (bigger) host: trivial model, loopback, all CPUs (~40 s; LOADGEN=0 skips).
[ "${LOADGEN:-1}" = 0 ] || timeout 120 "$VENV/bin/python" benchmarks/bench_loadgen.py --rates 2500,5000,7500 --workloads 2 --cache \
    --duration 4 2>&1 | tee "$OUT/bench_loadgen.txt" || true
echo "exit code $rc, $(( $(date +%s) - start )) s in all; report: $OUT/report.json"
if pgrep -f "$RUN_DIR" >/dev/null; then echo "LEFT BEHIND:"; pgrep -af "$RUN_DIR"; exit 1; fi
exit "$rc"
