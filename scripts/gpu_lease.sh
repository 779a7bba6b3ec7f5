#!/usr/bin/env bash
# One short GPU lease on a host without a package index: scripts/gpu_e2e.sh, then the stages of
# scripts/gpu_profile.sh, each under its own time limit, so one stage's failure leaves the others'
# results. Everything comes back as OUT_DIR/lease.log and OUT_DIR/results.tgz.
#
#   scripts/gpu_lease.sh OUT_DIR WHEEL_DIR
#
# WHEEL_DIR: the whole wheel set gpu_e2e.sh installs (igniter-opt's dependencies the host lacks,
# tritonclient[grpc] and its pins, nvidia-pytriton); the profile stages run on the host's python3
# (torch, torchvision, nvidia-ml-py) with pyomo/highspy/pydantic from WHEEL_DIR in a private folder.
# Env: STAGES ("e2e run fit validate", run in the order given), E2E_S (150), RUN_S (300),
#      VALIDATE_S (240), SAMPLES (6), BUDGET (240: profile run's --budget-s), DURATION (15: e2e load
#      seconds), E2E_PROFILE (a profile name: the e2e instance is INSTANCE planned with that profile
#      when igniter_opt/profiles/NAME.json exists by then, e.g. after this lease's fit; else INSTANCE as it is).
set -uo pipefail
OUT=$(mkdir -p "${1:?usage: scripts/gpu_lease.sh OUT_DIR WHEEL_DIR}" && cd "$1" && pwd)
WHEELS=$(cd "${2:?usage: scripts/gpu_lease.sh OUT_DIR WHEEL_DIR}" && pwd)
cd "$(dirname "$0")/.."
exec > >(tee "$OUT/lease.log") 2>&1
STAGES=" ${STAGES:-e2e run fit validate} "
WORK=/tmp/igniter-lease-work
mkdir -p "$WORK" "$OUT/results"
SECONDS=0

echo "== host $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,memory.total,compute_mode --format=csv
python3 -V
LIBDIR=$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
echo "python LIBDIR $LIBDIR:"; ls "$LIBDIR"/libpython3* 2>&1 | head -3
ldconfig -p | grep libpython3 || echo "no libpython3 in ldconfig"
python3 -m pip list 2>/dev/null | grep -i -E '^(torch|torchvision|numpy|grpcio|protobuf|ml.dtypes|typer|rich|pydantic|scipy|numba|nvidia-ml-py|setuptools) '
if ! command -v ncu >/dev/null; then
  for d in /opt/nvidia/nsight-compute/*/ /usr/local/cuda/bin/; do [ -x "$d/ncu" ] && PATH="$d:$PATH" && break; done
fi
command -v ncu nvidia-cuda-mps-control || true
L2=${L2:-$(command -v ncu >/dev/null && echo ncu || echo none)}
echo "L2 source: $L2"

# igniter-opt's own needs for the profile stages, next to the host's torch (nothing else changes).
python3 -m pip install -q --no-index --no-deps --target /tmp/igniter-site \
  "$WHEELS"/{pyomo,highspy,pydantic,pydantic_core,annotated_types,typing_inspection}-*.whl
export PYTHONPATH="/tmp/igniter-site:$PWD"

stage() {  # stage NAME LIMIT_S COMMAND...: run under a time limit, log the exit code and the time
  local name=$1 limit=$2; shift 2
  echo "== stage $name (limit $limit s, at $SECONDS s): $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@"
  echo "== stage $name: exit $? after $((SECONDS - t0)) s"
}

e2e_instance() {  # the instance the e2e stage plans: INSTANCE, or INSTANCE under E2E_PROFILE once it is fitted
  local inst=${INSTANCE:-instances/paper/motivation.json} prof=${E2E_PROFILE:-}
  if [ -n "$prof" ] && [ -f "igniter_opt/profiles/$prof.json" ]; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["profile"]=sys.argv[2]; d["name"]+="-"+sys.argv[2]; json.dump(d,open(sys.argv[3],"w"),indent=1)' \
      "$inst" "$prof" "$WORK/e2e-instance.json" && inst=$WORK/e2e-instance.json
  fi
  echo "$inst"
}

for s in $STAGES; do
  case $s in
    e2e) stage e2e "${E2E_S:-150}" env DURATION="${DURATION:-15}" LOADGEN=0 INSTANCE="$(e2e_instance)" \
           scripts/gpu_e2e.sh "$OUT/results/e2e" "$WHEELS" ;;
    run) stage run "${RUN_S:-300}" env PROFILE_STAGES=run WORK="$WORK" L2="$L2" scripts/gpu_profile.sh "${SAMPLES:-6}" "${BUDGET:-240}" ;;
    fit) stage fit 60 env PROFILE_STAGES=fit WORK="$WORK" L2="$L2" scripts/gpu_profile.sh "${SAMPLES:-6}" "${BUDGET:-240}" ;;
    validate) stage validate "${VALIDATE_S:-240}" env PROFILE_STAGES=validate WORK="$WORK" L2="$L2" \
           VAL_BUDGET=$(( ${VALIDATE_S:-240} * 2 / 3 )) scripts/gpu_profile.sh "${SAMPLES:-6}" "${BUDGET:-240}" ;;
    *) echo "== unknown stage $s" ;;
  esac
done

echo "== left running after the stages:"
pgrep -af 'tritonserver|igniter_opt|nvidia-cuda-mps' || echo "nothing"
pkill -f 'igniter_opt.profiling.worker' 2>/dev/null
echo quit | nvidia-cuda-mps-control 2>/dev/null
cp igniter_opt/profiles/*h200* igniter_opt/profiles/*h100* docs/validation-* "$OUT/results/" 2>/dev/null
rsync -a --exclude '*.ncu-rep' "$WORK/" "$OUT/results/work/" 2>/dev/null || cp -r "$WORK" "$OUT/results/work"
find "$OUT/results/work" -name '*.ncu-rep' -delete 2>/dev/null
tar czf "$OUT/results.tgz" -C "$OUT" results && rm -rf "$OUT/results"
echo "== done in $SECONDS s"
