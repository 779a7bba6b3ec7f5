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
# Env: PYTHON (default python3), INSTANCE (default instances/paper/motivation.json), DURATION (20).
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
PIP=("$VENV/bin/python" -m pip install -q)
[ -n "$WHEELS" ] && PIP+=(--no-index --find-links "$WHEELS")
# nvidia-pytriton is only needed for its tritonserver binary: --no-deps keeps the host's numpy 2.
"${PIP[@]}" --no-deps nvidia-pytriton
"${PIP[@]}" -e '.[deploy]'
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
# The load generator's capacity on this (bigger) host: trivial model, loopback, all CPUs (~40 s).
timeout 120 "$VENV/bin/python" benchmarks/bench_loadgen.py --rates 2500,5000,7500 --workloads 2 --cache \
    --duration 4 2>&1 | tee "$OUT/bench_loadgen.txt" || true
echo "exit code $rc, $(( $(date +%s) - start )) s in all; report: $OUT/report.json"
if pgrep -f "$RUN_DIR" >/dev/null; then echo "LEFT BEHIND:"; pgrep -af "$RUN_DIR"; exit 1; fi
exit "$rc"
