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

SMI=$(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -n1)
$PY -m igniter_opt profile report "$JSON" --raw "$RAW" --profile "$PROFILE" -o "$REPORT" --gpu "$GPU_NAME" \
  --smi "$SMI" --command "$RUN_CMD" --command "$FIT_CMD" --command "$VAL_CMD" \
  --run-seconds "$((T1 - T0))" --validate-seconds "$((T2 - T1))"
echo "raw $RAW, profile $PROFILE, report $REPORT (worker logs and ncu reports in $WORK)"
