#!/usr/bin/env bash
# Profile this host's GPU, fit the model, validate it against measured co-locations.
# Writes igniter_opt/profiles/<gpu>-raw.jsonl, igniter_opt/profiles/<gpu>.json and
# docs/validation-<gpu>.md (exact commands, GPU, error table, "median error: X%").
# Needs: an NVIDIA GPU, torch + torchvision + nvidia-ml-py, nvidia-cuda-mps-control, ncu (or L2=none).
# Usage: scripts/gpu_profile.sh [SAMPLES] [BUDGET_S]
#   env: PYTHON, DTYPE, L2, EXTRA_RUN_ARGS, VAL_BUDGET (validate's --budget-s, 540), WORK (worker logs, ncu CSVs), PROFILE_STAGES ("run fit validate":
#   a short lease can measure in one call and validate in the next; the report then reads the run's
#   duration from the raw file's profile_seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SAMPLES=${1:-20}
BUDGET=${2:-360}
DTYPE=${DTYPE:-float32}
L2=${L2:-ncu}
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
SLUG=$($PY -c "import sys; from igniter_opt.profiling.run import gpu_slug; print(gpu_slug(sys.argv[1]))" "$GPU_NAME")
RAW=igniter_opt/profiles/$SLUG-raw.jsonl
PROFILE=igniter_opt/profiles/$SLUG.json
REPORT=docs/validation-$SLUG.md
JSON=docs/validation-$SLUG.json
WORK=${WORK:-$(mktemp -d /tmp/igniter-gpu-XXXX)}
mkdir -p "$WORK"
STAGES=" ${PROFILE_STAGES:-run fit validate} "

RUN_CMD="$PY -m igniter_opt profile run --models alexnet,resnet50,vgg19,ssd --out $RAW --budget-s $BUDGET --dtype $DTYPE --l2 $L2 --work-dir $WORK ${EXTRA_RUN_ARGS:-}"
FIT_CMD="$PY -m igniter_opt profile fit $RAW -o $PROFILE --name $SLUG --gpu \"$GPU_NAME\""
VAL_CMD="$PY -m igniter_opt validate --profile $PROFILE --samples $SAMPLES --seed 0 --dtype $DTYPE --budget-s ${VAL_BUDGET:-540} -o $JSON"

T0=$(date +%s)
if [[ $STAGES == *" run "* ]]; then echo "== $RUN_CMD"; eval "$RUN_CMD"; fi
T1=$(date +%s)
if [[ $STAGES == *" fit "* ]]; then echo "== $FIT_CMD"; eval "$FIT_CMD"; fi
[[ $STAGES == *" validate "* ]] || { echo "raw $RAW, profile $PROFILE (stages:$STAGES)"; exit 0; }
if [[ $STAGES != *" run "* ]]; then
  T1=$(date +%s); T0=$((T1 - $($PY -c "import json,sys; print(round(max((v.get('profile_seconds', 0) for d in map(json.loads, filter(str.strip, open(sys.argv[1]))) for v in d.values() if isinstance(v, dict)), default=0)))" "$RAW")))
fi
echo "== $VAL_CMD"; eval "$VAL_CMD" | tee "$WORK/validate.txt"
T2=$(date +%s)

$PY - "$JSON" "$REPORT" "$GPU_NAME" "$RUN_CMD" "$FIT_CMD" "$VAL_CMD" "$((T1 - T0))" "$((T2 - T1))" <<'PYEOF'
import json, subprocess, sys
src, out, gpu, run_cmd, fit_cmd, val_cmd, t_run, t_val = sys.argv[1:]
rep = json.load(open(src))
smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,power.limit",
                      "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
lines = [f"# Validation on {gpu}", "", f"GPU (nvidia-smi): {smi}", "",
         f"Profile run took {t_run} s; validation took {t_val} s "
         f"({rep['measured']} of {rep['samples']} co-locations measured, {rep['seconds']} s each, "
         f"dtype {rep['dtype']}, CUDA graphs {rep['cuda_graphs']}).", "", "Commands:", "", "```",
         run_cmd, fit_cmd, val_cmd, "```", "",
         "Relative error |predicted - measured| / measured, per model (latency = input H2D + DNN + output D2H; "
         "throughput = achieved requests/s):", "",
         "| model | n | latency median | p90 | max | throughput median | p90 | max |",
         "|---|---|---|---|---|---|---|---|"]
for name, s in rep["errors"].items():
    l, t = s["latency"], s["throughput"]
    lines.append(f"| {name} | {l['n']} | " + " | ".join(f"{100 * x[k]:.1f}%" for x in (l, t)
                                                    for k in ("median", "p90", "max")) + " |")
med = rep["median_latency_error"]
lines += ["", f"median error: {100 * med:.1f}%" if med is not None else "median error: n/a (nothing measured)", "",
          f"Raw measurements: {src}."]
open(out, "w").write("\n".join(lines) + "\n")
print(f"wrote {out}")
PYEOF
echo "raw $RAW, profile $PROFILE, report $REPORT (worker logs and ncu reports in $WORK)"
