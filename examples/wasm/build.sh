#!/bin/sh
# Rebuilds the example modules with Debian's clang and lld (apt-get install clang lld).
# The built .wasm files are committed, so trying the examples needs no toolchain.
set -eu
cd "$(dirname "$0")"
FLAGS="--target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export=farm_run"
clang $FLAGS -o primes.wasm primes.c
clang $FLAGS -ffp-contract=off -o pi.wasm pi.c
clang $FLAGS -o squares.wasm squares.c
echo "built primes.wasm pi.wasm squares.wasm"
