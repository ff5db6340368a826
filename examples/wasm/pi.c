/* pi.c: Monte Carlo pi with the same points as farm's built-in `pi` kernel. Each index i seeds
 * a SplitMix64 stream and draws `samples` points (param, default 1000000); a point (x, y) with
 * x*x + y*y <= 1 is a hit. A fraction kernel: farm_run returns the hits and reports the samples
 * with farm_samples, so the job's result is the built-in pi's {"hits", "samples", "estimate"}
 * with estimate = 4 * hits / samples.
 *
 * Build: clang --target=wasm32 -O2 -ffp-contract=off -nostdlib -Wl,--no-entry \
 *          -Wl,--export=farm_run -o pi.wasm pi.c
 * Run:   farm run wasm --module pi.wasm --range 0..100 --param samples=1000000 */
#include "farm.h"

FARM_SCALE("4");

static uint64_t next(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ull;
    uint64_t z = *state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *state) {
    return (double)(next(state) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t farm_run(uint64_t lo, uint64_t hi) {
    uint64_t samples = farm_param_u64("samples", 1000000);
    if (samples == 0) farm_fail("samples must be at least 1", 26);
    uint64_t hits = 0;
    for (uint64_t i = lo; i < hi; i++) {
        farm_samples(samples);
        uint64_t state = i;
        for (uint64_t s = 0; s < samples; s++) {
            double x = unit(&state);
            double y = unit(&state);
            hits += x * x + y * y <= 1.0;
        }
    }
    return hits;
}
