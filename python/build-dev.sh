#!/usr/bin/env bash
# Builds farm's Python package and installs it into a virtual environment, for tests and
# benchmarks: python/build-dev.sh VENV [--release]
#
# VENV is created (with the python3 on PATH, or $PYTHON) if it does not exist; maturin and
# cloudpickle are installed into it when missing. The crate builds into the workspace's
# target/ (CARGO_TARGET_DIR), so a test run after `cargo build` reuses every compiled
# dependency: only farm-py itself compiles and links. The default is cargo's dev profile (the
# one `cargo build` uses); --release builds the optimized wheel the benchmarks need.
# `pip install ./python` builds the release wheel in an isolated build, for users.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv=${1:?usage: python/build-dev.sh VENV [--release]}
profile=dev
case "${2:-}" in
    "") ;;
    --release) profile=release ;;
    *) echo "build-dev.sh: unknown option ${2}; the only one is --release" >&2; exit 2 ;;
esac
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
if ! "$py" -c 'import maturin, cloudpickle' 2>/dev/null; then
    "$py" -m pip install --quiet 'maturin>=1.9,<2' 'cloudpickle>=2.2'
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CARGO_TARGET_DIR="$root/target" "$venv/bin/maturin" build --quiet \
    --manifest-path "$here/Cargo.toml" --profile "$profile" --interpreter "$py" --out "$out"
"$py" -m pip install --quiet --no-deps --force-reinstall "$out"/*.whl
