/* squares.c: a list kernel: emits the decimal square of each index, one item per index.
 * Build: clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export=farm_run \
 *          -o squares.wasm squares.c
 * Run:   farm run wasm --module squares.wasm --range 0..5   (prints 0 1 4 9 16) */
#include "farm.h"

uint64_t farm_run(uint64_t lo, uint64_t hi) {
    char line[32];
    for (uint64_t i = lo; i < hi; i++) {
        int n = 0;
        uint64_t sq = i * i;
        char digits[24];
        do { digits[n++] = '0' + sq % 10; sq /= 10; } while (sq);
        for (int k = 0; k < n; k++) line[k] = digits[n - 1 - k];
        farm_emit(line, n);
    }
    return 0;
}
