#!/usr/bin/env bash
# The wheel set scripts/gpu_lease.sh needs on an index-less GPU host (Python 3.12, x86-64), built
# here from PyPI: igniter-opt's dependencies the host image lacks, tritonclient[grpc] with the
# versions it pins, and nvidia-pytriton slimmed to fit a 64 MiB transfer (its tritonserver, python
# backend and 3.12 stub; libpython3.13 and the other stubs dropped; the two largest binaries
# stripped: 36 MB instead of 55).
#
#   scripts/gpu_wheels.sh [DIR]      (default .whl, which .git/info/exclude should name)
set -euo pipefail
DIR=${1:-.whl}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
download() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_35_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$1" "${@:2}"
}
download "$DIR" pyomo highspy pydantic pydantic-core annotated-types typing-inspection tritonclient \
  python-rapidjson docker setuptools wheel 'ml-dtypes==0.5.4' 'grpcio>=1.81.1' 'protobuf>=6.30,<7' 'urllib3>=2.0.7'
download "$TMP" nvidia-pytriton==0.7.0
mkdir "$TMP/x" && (cd "$TMP/x" && unzip -q "$TMP"/nvidia_pytriton-*.whl)
rm -f "$TMP"/x/nvidia_pytriton.libs/libpython3-*.13.so.1.0
find "$TMP/x/pytriton/tritonserver/python_backend_stubs" -mindepth 1 -maxdepth 1 ! -name 3.12 -exec rm -rf {} +
strip --strip-unneeded "$TMP"/x/nvidia_pytriton.libs/libtritonserver-*.so "$TMP/x/pytriton/tritonserver/bin/tritonserver"
rm -f "$DIR"/nvidia_pytriton-*.whl
(cd "$TMP/x" && zip -q -r -9 "$DIR/$(basename "$TMP"/nvidia_pytriton-*.whl)" .)
du -ch "$DIR"/*.whl | tail -1
