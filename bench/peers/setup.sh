#!/bin/sh
# Makes the venv of `farm-bench peers`: Dask, Ray, loky and gRPC from PyPI, into target/peers-venv
# (or the folder given). Python's own multiprocessing and concurrent.futures need nothing.
# Run from anywhere; prints the venv's python on success. Safe to run again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-$here/../../target/peers-venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" -c 'import dask.distributed, ray, loky, grpc, grpc_tools' >/dev/null
echo "$venv/bin/python"
